"""The benchmark's reorder section (`dve_teach.cli.order_bench`), in fast mode: its structure, finite
values, and a table that says whether the targets were met (never asserting timings)."""
from __future__ import annotations

import math

from dve_teach.cli.order_bench import format_order_section, run_order_section


def test_order_section_structure():
    r = run_order_section(seeds=(1,), datasets=("moons",))
    (row,) = r["runs"]
    assert row["dataset"] == "moons" and row["seed"] == 1 and row["fit_seconds"] > 0
    for kind, n in (("moves", r["moves"]), ("swaps", r["swaps"]), ("shuffles", r["shuffles"])):
        c = row[kind]
        assert c["n"] == n and 0 <= c["sign_agreement"] <= 1 and c["median_prediction_ms"] > 0
        assert math.isfinite(c["median_relative_error"])
    assert -1 <= row["moves"]["spearman"] <= 1
    text = format_order_section(r)
    assert "(j) reorder prediction" in text and ("met" in text)


def test_bench_runs_the_reorder_section_alone():
    from dve_teach.cli.bench import format_bench, run_bench
    r = run_bench("cpu", sections=("reorder",), seeds=(0,))
    assert "reorder" in r and "problem" not in r and "optimizers" not in r
    assert "(j) reorder prediction" in format_bench(r)


def test_version_docs_and_the_epochs_ceiling(tmp_path, capsys):
    import pytest
    import dve_teach
    from dve_teach.cli.main import MAX_EPOCHS, main
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and dve_teach.__version__ in capsys.readouterr().out
    assert main(["demo", "--epochs", str(MAX_EPOCHS + 1)]) == 2
    assert "at most" in capsys.readouterr().err
    pytest.importorskip("pdoc")
    assert main(["docs", "--out", str(tmp_path / "api")]) == 0
    assert (tmp_path / "api" / "dve_teach" / "training" / "optim.html").exists()
