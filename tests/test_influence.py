"""`Influence`: totals, per-occurrence lookup and per-step sums against brute-force loops."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt


def _influence():
    gen = torch.Generator().manual_seed(0)
    sched = dt.Schedule.shuffled(7, 3, epochs=2, seed=1)        # 6 steps, short last batches
    points, steps = sched.occurrence_pairs()
    scores = torch.randn(len(points), 4, generator=gen, dtype=torch.float64)
    return dt.Influence(scores, points, steps, n_train=9, method="test"), points, steps, scores


def test_total_at_and_by_step_equal_loops():
    inf, points, steps, scores = _influence()
    total = torch.zeros(9, 4, dtype=torch.float64)
    per_step = torch.zeros(max(steps) + 1, 4, dtype=torch.float64)
    for r, (p, t) in enumerate(zip(points, steps)):
        total[p] += scores[r]
        per_step[t] += scores[r]
    assert torch.allclose(inf.total(), total)
    assert torch.equal(inf.total()[7:], torch.zeros(2, 4, dtype=torch.float64))   # never seen
    assert torch.allclose(inf.by_step(), per_step)
    rows = [5, 0, 9]
    assert torch.equal(inf.at([points[r] for r in rows], [steps[r] for r in rows]), scores[rows])


def test_influence_errors():
    inf, points, steps, scores = _influence()
    absent = next(t for t in range(6) if points[0] not in [p for p, s in zip(points, steps) if s == t])
    with pytest.raises(KeyError, match=f"point {points[0]} was not in the batch of step {absent}"):
        inf.at([points[0]], [absent])
    with pytest.raises(ValueError, match="one point and step per row"):
        dt.Influence(scores[:-1], points, steps, n_train=9)
