"""Learning-rate schedules (`dt.lr`) against their formulas, as `lr=` of `dt.train`, and their errors."""
from __future__ import annotations

import math

import pytest
import torch

import dve_teach as dt


def test_constant():
    s = dt.lr.constant(0.3)
    assert [s(t) for t in range(4)] == [0.3] * 4
    assert torch.equal(s.values(5), torch.full((5,), 0.3, dtype=torch.float64))


def test_warmup_cosine_formula():
    peak, T, w, final = 0.5, 20, 4, 0.05
    s = dt.lr.warmup_cosine(peak, T, warmup=w, final=final)
    for t in range(T):
        want = (peak * (t + 1) / w if t < w else
                final + (peak - final) * 0.5 * (1 + math.cos(math.pi * (t - w) / (T - w))))
        assert s(t) == pytest.approx(want, rel=1e-15)
    assert s(w) == pytest.approx(peak) and s(w - 1) == pytest.approx(peak)   # the top is reached at t = w-1, w
    assert all(s(t + 1) <= s(t) for t in range(w, T - 1))                     # decays after the warm-up
    assert s(T - 1) > final


def test_linear_decay_formula():
    start, T, end, w = 0.4, 10, 0.1, 2
    s = dt.lr.linear_decay(start, T, end=end, warmup=w)
    for t in range(T):
        want = start * (t + 1) / w if t < w else start + (end - start) * (t - w) / (T - w)
        assert s(t) == pytest.approx(want, rel=1e-15)
    steps = [s(t + 1) - s(t) for t in range(w, T - 1)]
    assert all(d == pytest.approx(steps[0]) for d in steps)                   # a straight line


def test_step_decay_formula():
    s = dt.lr.step_decay(1.0, 3, gamma=0.5)
    assert [s(t) for t in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_schedule_is_the_lr_of_train(blobs_mlp):
    T = len(blobs_mlp.schedule)
    s = dt.lr.warmup_cosine(0.3, T, warmup=2)
    traj = dt.train(blobs_mlp.model, blobs_mlp.train, blobs_mlp.schedule, s)
    assert torch.equal(traj.lrs, s.values())
    same = dt.train(blobs_mlp.model, blobs_mlp.train, blobs_mlp.schedule, [s(t) for t in range(T)])
    assert torch.equal(traj.final, same.final)


def test_too_long_a_run_is_refused(blobs_mlp):
    with pytest.raises(ValueError, match="total_steps=len\\(schedule\\)"):
        dt.train(blobs_mlp.model, blobs_mlp.train, blobs_mlp.schedule, dt.lr.linear_decay(0.3, 3))


@pytest.mark.parametrize("make, match", [
    (lambda: dt.lr.constant(-1), "lr must be a finite number >= 0"),
    (lambda: dt.lr.warmup_cosine(0.0, 10), "peak must be a finite number > 0"),
    (lambda: dt.lr.warmup_cosine(0.1, 10, warmup=10), "warmup=10 must be smaller than total_steps=10"),
    (lambda: dt.lr.warmup_cosine(0.1, 10, final=0.2), "final=0.2 is above peak"),
    (lambda: dt.lr.warmup_cosine(0.1, 2.5), "total_steps must be an integer"),
    (lambda: dt.lr.linear_decay(float("nan"), 10), "start must be a finite number"),
    (lambda: dt.lr.linear_decay(0.1, 10, warmup=-1), "warmup must be an integer >= 0"),
    (lambda: dt.lr.step_decay(0.1, 0), "step_size must be an integer >= 1"),
    (lambda: dt.lr.step_decay(0.1, 2, gamma=0), "gamma must be a finite number > 0"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_steps_and_lengths():
    s = dt.lr.constant(0.1)
    with pytest.raises(ValueError, match="integer >= 0"):
        s(-1)
    with pytest.raises(ValueError, match="integer >= 0"):
        s(1.5)
    with pytest.raises(ValueError, match="no total_steps: pass the number of steps"):
        s.values()
    with pytest.raises(ValueError, match="step 10 is past"):
        dt.lr.linear_decay(0.1, 10)(10)


def test_plot_draws_the_values():
    pytest.importorskip("matplotlib")
    s = dt.lr.step_decay(0.2, 4)
    ax = s.plot(10)
    x, y = ax.lines[0].get_data()
    assert list(x) == list(range(10)) and list(y) == s.values(10).tolist()
    from matplotlib.figure import Figure
    ax2 = Figure().subplots()
    assert dt.lr.warmup_cosine(0.2, 8, 2).plot(ax=ax2) is ax2 and len(ax2.lines) == 1
