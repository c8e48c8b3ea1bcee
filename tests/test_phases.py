"""Per-step views (`Influence.by_step`) against loops over the occurrences, and the helpers of
`dt.phases` against exact replay and direct computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dve_teach as dt
from dve_teach.influence import phases


def _influence(drop_step=None):
    gen = torch.Generator().manual_seed(0)
    sched = dt.Schedule.shuffled(7, 3, epochs=2, seed=1)        # 6 steps, short last batches
    points, steps = sched.occurrence_pairs()
    if drop_step is not None:                                    # an Influence missing one step
        keep = [k for k, t in enumerate(steps) if t != drop_step]
        points, steps = [points[k] for k in keep], [steps[k] for k in keep]
    scores = torch.randn(len(points), 4, generator=gen, dtype=torch.float64)
    return dt.Influence(scores, points, steps, n_train=9), points, steps, scores


def _loop(points, steps, scores, T, reduce, test, lrs=None):
    out = torch.full((T, scores.shape[1] if test == "each" else 1), math.nan, dtype=torch.float64)
    for t in range(T):
        rows = [r for r, s in enumerate(steps) if s == t]
        vals = [scores[r] if test == "each" else scores[r].mean().reshape(1) for r in rows]
        if reduce == "sum":
            out[t] = sum(vals) if vals else 0.0
        elif vals:
            out[t] = sum(v.abs() if reduce == "mean_abs" else v for v in vals) / len(vals)
        if lrs is not None:
            out[t] /= lrs[t]
    return out if test == "each" else out[:, 0]


@pytest.mark.parametrize("reduce", ["sum", "mean", "mean_abs"])
@pytest.mark.parametrize("test", ["each", "mean"])
@pytest.mark.parametrize("per_lr", [False, True])
def test_by_step_equals_a_loop_over_occurrences(reduce, test, per_lr):
    inf, points, steps, scores = _influence()
    lrs = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15, 0.05], dtype=torch.float64)
    got = inf.by_step(reduce, per_lr, lrs=lrs if per_lr else None, test=test)
    want = _loop(points, steps, scores, 6, reduce, test, lrs if per_lr else None)
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-13, atol=0)


def test_default_is_the_per_step_sum():
    inf, points, steps, scores = _influence()
    assert torch.equal(inf.by_step(), inf.by_step("sum"))
    assert inf.by_step().shape == (6, 4)


def test_a_step_without_occurrences():
    inf, points, steps, scores = _influence(drop_step=2)
    lrs = torch.full((6,), 0.1, dtype=torch.float64)
    assert torch.isnan(inf.by_step("mean", lrs=lrs, test="mean")[2])
    assert float(inf.by_step("sum", lrs=lrs, test="mean")[2]) == 0.0
    want = _loop(points, steps, scores, 6, "mean_abs", "each")
    got = inf.by_step("mean_abs", T=6)
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    assert torch.allclose(got.nan_to_num(), want.nan_to_num())


def test_by_step_errors():
    inf, *_ = _influence()
    with pytest.raises(ValueError, match="reduce must be"):
        inf.by_step("median")
    with pytest.raises(ValueError, match="test must be 'each'"):
        inf.by_step(test="all")
    with pytest.raises(ValueError, match="carries no learning rates; pass lrs=traj.lrs"):
        inf.by_step("mean", per_lr=True)
    with pytest.raises(ValueError, match="lrs has 3 values but there are T=6"):
        inf.by_step("mean", per_lr=True, lrs=[0.1] * 3, T=6)
    with pytest.raises(ValueError, match="T must be at least 6"):
        inf.by_step(T=4)
    with pytest.raises(ValueError, match="η_t > 0"):
        inf.by_step("mean", per_lr=True, lrs=[0.1, 0, 0.1, 0.1, 0.1, 0.1])


def test_sample_occurrences(blobs_mlp):
    sched = blobs_mlp.schedule
    pts, sts = phases.sample_occurrences(sched, [0, 3, 7], 2, seed=4)
    assert sts == [0, 0, 3, 3, 7, 7]
    assert all(p in sched.batches[t] for p, t in zip(pts, sts))
    assert len(set(zip(pts, sts))) == 6
    assert (pts, sts) == phases.sample_occurrences(sched, [0, 3, 7], 2, seed=4)
    whole = phases.sample_occurrences(sched, [3], 100)          # more than the batch: all of it
    assert sorted(whole[0]) == sorted(sched.batches[3])
    with pytest.raises(IndexError, match="out of range"):
        phases.sample_occurrences(sched, [len(sched)], 1)
    with pytest.raises(ValueError, match="per_step must be an integer >= 1"):
        phases.sample_occurrences(sched, [0], 0)


def test_exact_influence_is_exact_loo_per_step(blobs_mlp):
    traj, test = blobs_mlp.traj, blobs_mlp.test
    pts, sts = phases.sample_occurrences(traj.schedule, range(traj.T), 2, seed=0)
    ex = phases.exact_influence(traj, test, pts, sts, progress=False)
    assert ex.method == "exact" and ex.n_train == traj.schedule.n
    assert torch.equal(ex.per_occurrence, dt.exact_loo(traj, test, pts, sts, progress=False))
    curve = ex.by_step("mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
    for t in range(traj.T):                                      # one step by hand
        rows = [r for r, s in enumerate(sts) if s == t]
        want = ex.per_occurrence[rows].mean(1).abs().mean() / traj.lrs[t]
        assert float(curve[t]) == pytest.approx(float(want), rel=1e-12)


def test_gradient_norms_against_autograd(blobs_mlp):
    traj = blobs_mlp.traj
    got = phases.gradient_norms(traj)
    pts, sts = traj.schedule.occurrence_pairs()
    for r in [0, 5, len(pts) - 1]:
        theta = traj.params(sts[r]).clone().requires_grad_(True)
        x, y = traj.data.X[[pts[r]]], traj.data.y[[pts[r]]]
        (g,) = torch.autograd.grad(traj.objective.losses(theta, x, y).sum(), theta)
        assert float(got.per_occurrence[r, 0]) == pytest.approx(float(g.norm()), rel=1e-10)
    assert got.by_step("mean", test="mean").shape == (traj.T,)


def test_embedding_norms(blobs_mlp):
    traj = blobs_mlp.traj
    dve = dt.DataValueEmbedding().fit(traj)
    raw = phases.embedding_norms(dve, per_lr=False).per_occurrence[:, 0]
    assert torch.allclose(raw, dve.embeddings_.norm(dim=1))
    scaled = phases.embedding_norms(dve).per_occurrence[:, 0]
    assert torch.allclose(scaled, raw / traj.lrs[dve.steps_])
    # at the last step K = I: ‖DVE‖/η = ‖g‖/b exactly
    last = dve.steps_ == traj.T - 1
    g = phases.gradient_norms(traj).per_occurrence[:, 0]
    assert torch.allclose(scaled[last], g[last] / traj.batch_size)
    with pytest.raises(RuntimeError, match="not fitted"):
        phases.embedding_norms(dt.DataValueEmbedding())


def test_phase_levels():
    curve = torch.tensor([5.0, 4.0, 1.0, 1.0, 0.5, 2.0, 3.0, math.nan, 6.0], dtype=torch.float64)
    lv = phases.phase_levels(curve, bins=3)            # chunks [5,4,1] [1,.5,2] [3,nan,6]
    assert np.allclose(lv["bins"], [10 / 3, 3.5 / 3, 4.5])
    assert lv["basin_bin"] == 1 and lv["start"] == pytest.approx(10 / 3) and lv["end"] == 4.5
    assert lv["start_over_basin"] == pytest.approx(10 / 3.5) and lv["end_over_basin"] == pytest.approx(4.5 * 3 / 3.5)
    with pytest.raises(ValueError, match="bins must be an integer in 3..9"):
        phases.phase_levels(curve, bins=2)
    with pytest.raises(ValueError, match="holds no values"):
        phases.phase_levels(torch.tensor([1.0, math.nan, 2.0]), bins=3)
    with pytest.raises(ValueError, match="1-D"):
        phases.phase_levels(torch.zeros(3, 2))


def test_new_modules_are_public():
    for name in ("lr", "phases", "curation"):
        assert name in dt.__all__ and getattr(dt, name) is not None
    assert dt.phases is phases and dt.curation.select_and_train and dt.lr.warmup_cosine
    assert callable(dt.metrics.roc_auc) and callable(dt.metrics.precision_at_k)


def test_per_lr_uses_the_runs_own_learning_rates(blobs_mlp):
    traj = blobs_mlp.traj
    inf = dt.sgd_influence(traj, blobs_mlp.test)
    assert torch.equal(inf.by_step("mean", per_lr=True), inf.by_step("mean", per_lr=True, lrs=traj.lrs))
    for est in (dt.tracin(traj, blobs_mlp.test), dt.DataValueEmbedding().fit(traj).influence(blobs_mlp.test)):
        assert torch.equal(est.lrs, traj.lrs)
