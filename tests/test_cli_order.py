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
