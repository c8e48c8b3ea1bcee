"""The benchmark's foundation section (issue 13), in fast mode: its structure, the two exact-LOO
paths (vmapped over points and one replay at a time) agreeing, finite Spearman values and the
text. Timings are reported, never asserted."""
from __future__ import annotations

import math

import pytest

from dve_teach.cli.bench import format_bench, run_bench
from dve_teach.cli.foundation_bench import format_foundation_section, run_foundation_section


@pytest.fixture(scope="module")
def section():
    return run_foundation_section(seeds=(1,))


def test_foundation_section_structure(section):
    (row,) = section["runs"]
    assert row["seed"] == 1 and row["boundary"] < row["steps"]
    assert row["loo_paths_agree"] < 1e-10          # vmapped replays = one replay at a time
    for key in ("spearman_unrolled", "spearman_sgd_proxy", "spearman_recorded", "spearman_unrolled_pretraining_only"):
        assert -1 <= row[key] <= 1
    for key in ("plays_loss", "unigram_loss", "sonnet_loss_pretrained", "sonnet_loss_finetuned"):
        assert math.isfinite(row[key]) and row[key] > 0
    text = format_foundation_section(section)
    assert "(k) foundation model in miniature" in text and "targets:" in text


def test_bench_runs_the_foundation_section_alone(section, monkeypatch):
    import dve_teach.cli.foundation_bench as fb
    monkeypatch.setattr(fb, "run_foundation_section", lambda seeds, log: section)
    r = run_bench("cpu", sections=("foundation",), seeds=(1,))
    assert "foundation" in r and "problem" not in r and "reorder" not in r
    assert "(k) foundation model" in format_bench(r)
