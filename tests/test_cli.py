"""The command line (`python -m dve_teach check|demo|bench`) end to end, in fast mode on tiny
problems. Timings are printed by the commands but never asserted."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from dve_teach.cli import main
from dve_teach.cli.bench import format_bench
from dve_teach.cli.demo import METHODS
from dve_teach.cli.scaling import ROWS

FAST_ENV = {**os.environ, "DVE_TEACH_FAST": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dve_teach", *args], capture_output=True, text=True,
                          env=FAST_ENV, timeout=timeout)


def test_check_prints_versions_and_exits_0():
    r = run_cli("check")
    assert r.returncode == 0, r.stderr
    assert "torch" in r.stdout and torch.__version__ in r.stdout
    for pkg in ("dve_teach", "numpy", "device", "ipywidgets", "matplotlib", "seaborn", "jupyterlab"):
        assert pkg in r.stdout


def test_check_json_matches_this_process(capsys):
    assert main(["check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["torch"] == torch.__version__
    assert report["cuda_available"] == torch.cuda.is_available()
    assert set(report["lesson_packages"]) == {"ipywidgets", "matplotlib", "seaborn", "jupyterlab"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One fast demo on moons with 8 points, as JSON and with a plot (shared by the tests below)."""
    png = tmp_path_factory.mktemp("demo") / "scatter.png"
    r = run_cli("demo", "--dataset", "moons", "--points", "8", "--epochs", "2", "--json", "--plot", str(png))
    return r, png


def test_demo_json_has_every_method_with_finite_fidelity(demo_run):
    r, _ = demo_run
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)  # strict JSON: the whole stdout parses
    assert out["dataset"] == "moons" and out["n_points"] == 8 and len(out["points"]) == 8
    assert len(set(out["points"])) == 8 and all(0 <= p < out["n_train"] for p in out["points"])
    assert list(out["methods"]) == list(METHODS)
    for name, row in out["methods"].items():
        assert "error" not in row, f"{name}: {row.get('error')}"
        for key in ("spearman", "pearson", "sign_agreement", "seconds"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), (name, key, row[key])
        assert -1 <= row["spearman"] <= 1 and -1 <= row["pearson"] <= 1 and 0 <= row["sign_agreement"] <= 1
    assert math.isfinite(out["exact_loo"]["seconds"])
    # The rows of estimate and truth must be the same points: a mix-up would destroy this
    # correlation (exact-Hessian unrolling is near exact on this small, smooth problem).
    assert out["methods"]["sgd_influence"]["pearson"] > 0.9


def test_demo_plot_writes_a_png(demo_run):
    r, png = demo_run
    assert r.returncode == 0, r.stderr[-3000:]
    assert png.exists() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_json_reports_the_ratio_fields():
    r = run_cli("bench", "--json", "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    loo = out["exact_loo"]
    assert loo["removals"] >= 2
    for key in ("vmapped_seconds", "one_at_a_time_seconds", "speedup"):
        assert loo[key] > 0
    # vmapped and one-at-a-time replays are the same computation
    assert loo["max_abs_difference"] < 1e-10
    configs = out["fit"]["configs"]
    assert {"fisher", "ggn", "fisher_layerwise"} <= set(configs)
    assert any(k.startswith("fisher_gaussian_") for k in configs)
    for name, c in configs.items():
        assert c["ratio_to_train"] > 0, (name, c)
    mem = out["memory_mib"]
    assert {"train", "exact_loo_vmapped", "exact_loo_one_at_a_time"} <= set(mem)
    assert all(isinstance(v, (int, float)) or v == "n/a" for v in mem.values())
    assert set(out["fidelity"]) == set(METHODS)
    assert "seconds" in out["widget_retrain"]
    # (f)-(h) scaling: every projection at four d, checkpointing equal to sequential, float32
    rows = out["scaling"]["projections"]["rows"]
    assert rows[0]["method"] == "none" and rows[0]["d"] == out["problem"]["parameters"]
    assert {(r["method"], r["proj_dim"]) for r in rows[1:]} == {(m, d) for m in ROWS
                                                                for d in {r["proj_dim"] for r in rows[1:]}}
    assert len({r["proj_dim"] for r in rows[1:]}) == 4
    for r in rows:
        assert "error" not in r, r
        assert r["d"] <= r.get("proj_dim", r["d"]) and -1 <= r["spearman"] <= 1 and r["seconds"] > 0
    ck = out["scaling"]["checkpointing"]
    assert {(r["segments"], r["workers"]) for r in ck} >= {(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)}
    for r in ck:
        assert "error" not in r, r
        assert r["max_rel_difference"] < 1e-10 and r["speedup"] > 0
    assert [len(c["segment_seconds"]) for c in out["scaling"]["checkpointing_critical_path"]] == [2, 4]
    f32 = out["scaling"]["float32"]
    assert f32["max_rel_score_difference"] < 1e-3 and -1 <= f32["spearman_float32"] <= 1
    # (i) update rules: one seed of every rule by default (structure: tests/test_cli_optim.py)
    assert out["sections"] == ["core", "optimizers", "reorder", "foundation"] and out["optimizers"]["seeds"] == [0]
    assert out["reorder"]["runs"] and all("moves" in row for row in out["reorder"]["runs"])
    text = format_bench(out)
    assert "(f) projections" in text and "(g) influence checkpointing" in text and "(h) float32" in text
    assert "(i) update rules" in text and "(k) foundation model" in text
    # every timing target of (a), (b), (e) carries its verdict, judged from the report's own numbers
    from dve_teach.cli.progress import verdict
    words = lambda met: verdict(met, True, out["load_average_end"], out["cpu_count"])   # noqa: E731
    assert f"(target >= 10x: {words(loo['speedup'] >= 10)}" in text
    assert f"target <= 3x (fisher, unprojected): {words(configs['fisher']['ratio_to_train'] <= 3)}" in text


def test_demo_shows_progress_and_no_raw_warning(demo_run):
    """Every step of the demo is announced on stderr (a pipe gets one line per step), and no raw
    Python warning reaches the user (the influence function runs with the lessons' damping rule)."""
    r, _ = demo_run
    steps = [line for line in r.stderr.splitlines() if line.startswith("demo ")]
    assert [s.split(" ")[1] for s in steps] == [f"{k}/{len(METHODS) + 2}" for k in range(1, len(METHODS) + 3)]
    assert "train" in steps[0] and "exact LOO" in steps[1]
    assert f"demo: {len(METHODS) + 2}/{len(METHODS) + 2} steps in" in r.stderr
    assert all(name in r.stderr for name in METHODS)
    assert "Warning" not in r.stderr, r.stderr[-2000:]


def test_verdict_words():
    from dve_teach.cli.progress import verdict
    assert verdict(True) == verdict(True, timing=True) == "met"
    assert verdict(False) == "NOT met"
    busy = verdict(False, timing=True, load=3.5, cpus=2)
    assert busy.startswith("not met on this machine") and "load average 3.5 on 2 CPUs" in busy
    quiet = verdict(False, timing=True, load=0.4, cpus=2)       # the method's cost, not the machine's
    assert quiet.startswith("NOT met (on a quiet machine") and "load average 0.4 on 2 CPUs" in quiet


def test_bad_arguments_give_a_clear_error(capsys):
    assert main(["demo", "--points", "1"]) == 2
    assert "--points" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "mnist"])  # argparse names the choices
    if not torch.cuda.is_available():
        assert main(["demo", "--dataset", "moons", "--device", "cuda"]) == 2
        assert "--device cpu" in capsys.readouterr().err


def test_gpu_check_script(tmp_path):
    """.ci/gpu_check.sh runs the gpu-marked tests and the bench on CUDA; without CUDA it stops
    at once with a clear message (and never reports success)."""
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / ".ci" / "gpu_check.sh"
    text = script.read_text()
    assert os.access(script, os.X_OK)
    assert "pytest -q -m gpu" in text and "bench --device cuda" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if not torch.cuda.is_available():
        r = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True,
                           env=FAST_ENV, timeout=120)
        assert r.returncode != 0 and "no CUDA device" in r.stderr + r.stdout
        assert "GPU checks done" not in r.stdout


def test_demo_bad_plot_path_keeps_the_table(tmp_path):
    bad = tmp_path / "no-such-dir" / "x.png"
    r = run_cli("demo", "--dataset", "moons", "--points", "4", "--epochs", "1", "--plot", str(bad))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "sgd_influence" in r.stdout and "exact LOO (truth)" in r.stdout  # the table came first
    assert "could not save the plot" in r.stderr and "No such file or directory" in r.stderr
    assert "writable path" in r.stderr and "Traceback" not in r.stderr
    assert not bad.exists()
