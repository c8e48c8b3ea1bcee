"""exact_loo against an independent oracle: retraining with plain torch autograd (no torch.func,
no dve_teach stepping) and the point's weight set to 0 at the chosen step(s)."""
from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

import dve_teach as dt

TOL = dict(atol=1e-12, rtol=0.0)


# ---- the oracle ---------------------------------------------------------------------------
def _per_example_loss(name, out, y):
    if name == "cross_entropy":
        return F.cross_entropy(out, y, reduction="none")
    return ((out - y) ** 2).mean(1)


def _test_loss(p):
    return lambda net, X, y: _per_example_loss(p.loss, net(X), y)


def _logit_of_label(net, X, y):  # oracle form of `_logit_measure`
    return net(X).gather(1, y[:, None]).squeeze(1)


def retrain(p, drop=(), renormalize=False, measure=None):
    """Measure on p.test after SGD along p.schedule with w_i = 0 for every (i, t) in `drop`."""
    measure = measure or _test_loss(p)
    net = copy.deepcopy(p.model)
    b, T = p.schedule.batch_size, len(p.schedule)
    lrs = [p.lr(t) for t in range(T)] if callable(p.lr) else (
        list(p.lr) if isinstance(p.lr, (list, tuple)) else [p.lr] * T)
    drop = set(drop)
    for t, batch in enumerate(p.schedule.batches):
        idx = torch.tensor(batch)
        w = torch.tensor([0.0 if (i, t) in drop else 1.0 for i in batch], dtype=torch.float64)
        n_removed = int((w == 0).sum())
        div = len(batch) - n_removed if (renormalize and n_removed) else b
        loss = (w * _per_example_loss(p.loss, net(p.train.X[idx]), p.train.y[idx])).sum() / div
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for q in net.parameters():
                q -= lrs[t] * (q.grad + p.weight_decay * q)
    with torch.no_grad():
        return measure(net, p.test.X, p.test.y)


def oracle(p, points, steps=None, renormalize=False, measure=None):
    base = retrain(p, (), measure=measure)
    rows = []
    for k, i in enumerate(points):
        ts = p.schedule.occurrences(i) if steps is None else [steps[k]]
        rows.append(retrain(p, {(i, t) for t in ts}, renormalize, measure) - base)
    return torch.stack(rows)


def variant(p, **changes):
    """The same problem with other settings (lr, weight_decay, schedule), freshly trained."""
    q = SimpleNamespace(**{**vars(p), **changes})
    q.traj = dt.train(q.model, q.train, q.schedule, q.lr, loss=q.loss, weight_decay=q.weight_decay)
    return q


def _occurrences(p, k):
    """k (point, step) occurrences spread evenly over the whole schedule."""
    pts, sts = p.schedule.occurrence_pairs()
    stride = max(1, len(pts) // k)
    return pts[::stride][:k], sts[::stride][:k]


# ---- exact values ------------------------------------------------------------------------
def test_oracle_is_not_trivial(blobs_mlp):
    # the oracle's unmodified run is the recorded one, and removals change the test loss
    assert torch.allclose(retrain(blobs_mlp), blobs_mlp.traj.test_losses(blobs_mlp.test), atol=1e-12, rtol=0)
    pts, sts = _occurrences(blobs_mlp, 4)
    assert oracle(blobs_mlp, pts, sts).abs().min() > 1e-8


@pytest.mark.parametrize("fixture", ["blobs_mlp", "linear_lsq"])
def test_single_step_removal(fixture, request):
    p = request.getfixturevalue(fixture)
    pts, sts = _occurrences(p, 9)
    got = dt.exact_loo(p.traj, p.test, pts, sts)
    assert got.shape == (len(pts), len(p.test)) and got.dtype == torch.float64
    torch.testing.assert_close(got, oracle(p, pts, sts), **TOL)


@pytest.mark.parametrize("fixture", ["blobs_mlp", "linear_lsq"])
def test_all_occurrences(fixture, request):
    p = request.getfixturevalue(fixture)
    pts = [5, 0, 17, 3, 22]
    assert all(len(p.schedule.occurrences(i)) == 2 for i in pts)
    got = dt.exact_loo(p.traj, p.test, torch.tensor(pts))
    torch.testing.assert_close(got, oracle(p, pts), **TOL)


@pytest.mark.parametrize("steps", [None, "single"])
def test_renormalized(blobs_mlp, steps):
    p = blobs_mlp
    pts, sts = _occurrences(p, 8)
    sts = sts if steps == "single" else None
    if steps == "single":  # a short last batch (|B_t| < b) is among the removal steps
        assert any(len(p.schedule.batches[t]) < p.schedule.batch_size for t in sts)
    got = dt.exact_loo(p.traj, p.test, pts, sts, renormalize=True)
    torch.testing.assert_close(got, oracle(p, pts, sts, renormalize=True), **TOL)
    # renormalizing is a different counterfactual than zero-weight
    assert (got - dt.exact_loo(p.traj, p.test, pts, sts)).abs().max() > 1e-6


def test_weight_decay_mlp(blobs_mlp):
    p = variant(blobs_mlp, weight_decay=0.05)
    pts, sts = _occurrences(p, 6)
    torch.testing.assert_close(dt.exact_loo(p.traj, p.test, pts, sts), oracle(p, pts, sts), **TOL)
    torch.testing.assert_close(dt.exact_loo(p.traj, p.test, pts), oracle(p, pts), **TOL)


def test_lr_schedule_list(blobs_mlp):
    lrs = [0.4 / (1 + 0.5 * t) for t in range(len(blobs_mlp.schedule))]
    p = variant(blobs_mlp, lr=lrs)
    pts, sts = _occurrences(p, 6)
    torch.testing.assert_close(dt.exact_loo(p.traj, p.test, pts, sts), oracle(p, pts, sts), **TOL)


def _logit_measure(model, params, data):
    return functional_call(model, params, (data.X,)).gather(1, data.y[:, None]).squeeze(1)


def _prediction(model, params, data):
    return functional_call(model, params, (data.X,))[:, 0]


def test_custom_measure_logit(blobs_mlp):
    p = blobs_mlp
    pts, sts = _occurrences(p, 6)
    got = dt.exact_loo(p.traj, p.test, pts, sts, measure=_logit_measure)
    torch.testing.assert_close(got, oracle(p, pts, sts, measure=_logit_of_label), **TOL)


def test_custom_measure_prediction_lsq(linear_lsq):
    p = linear_lsq
    got = dt.exact_loo(p.traj, p.test, [1, 2, 3], measure=_prediction)
    torch.testing.assert_close(got, oracle(p, [1, 2, 3], measure=lambda net, X, y: net(X)[:, 0]), **TOL)


def test_measure_that_cannot_be_vmapped_falls_back_to_a_loop(blobs_mlp):
    def via_python(model, params, data):  # .tolist() is not allowed under vmap
        vals = _logit_measure(model, params, data).tolist()
        return torch.tensor(vals, dtype=torch.float64)

    p = blobs_mlp
    pts, sts = _occurrences(p, 3)
    torch.testing.assert_close(dt.exact_loo(p.traj, p.test, pts, sts, measure=via_python),
                               dt.exact_loo(p.traj, p.test, pts, sts, measure=_logit_measure), **TOL)


def test_point_never_visited_gives_zero_row(blobs_mlp):
    p = blobs_mlp
    sched = dt.Schedule([b for b in p.schedule.batches if 4 not in b] + [[0, 1]], 8, 30)
    q = variant(p, schedule=sched)
    got = dt.exact_loo(q.traj, q.test, [4, 1])
    assert torch.equal(got[0], torch.zeros(len(q.test), dtype=torch.float64))
    torch.testing.assert_close(got[1], oracle(q, [1])[0], **TOL)


def test_checkpointed_trajectory(blobs_mlp):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, p.lr, loss=p.loss, checkpoint_every=3)
    pts, sts = _occurrences(p, 6)
    torch.testing.assert_close(dt.exact_loo(traj, p.test, pts, sts), oracle(p, pts, sts), **TOL)


# ---- batching does not change the answer --------------------------------------------------
def test_vmapped_equals_one_at_a_time(blobs_mlp):
    p = blobs_mlp
    pts, sts = p.schedule.occurrence_pairs()
    order = torch.randperm(len(pts), generator=torch.Generator().manual_seed(0))[:20].tolist()
    pts, sts = [pts[k] for k in order], [sts[k] for k in order]  # unsorted by step
    one = dt.exact_loo(p.traj, p.test, pts, sts, chunk_size=1)
    torch.testing.assert_close(dt.exact_loo(p.traj, p.test, pts, sts, chunk_size=64), one, **TOL)
    torch.testing.assert_close(dt.exact_loo(p.traj, p.test, pts, sts, chunk_size=3), one, **TOL)
    many = dt.exact_loo(p.traj, p.test, pts[:5], chunk_size=64)
    torch.testing.assert_close(many, dt.exact_loo(p.traj, p.test, pts[:5], chunk_size=1), **TOL)


def test_accepts_tuple_test_data_and_progress_flag(linear_lsq, capsys):
    p = linear_lsq
    a = dt.exact_loo(p.traj, (p.test.X, p.test.y), [0], progress=True)
    b = dt.exact_loo(p.traj, p.test, [0], progress=False)
    torch.testing.assert_close(a, b, **TOL)
    assert dt.exact_loo(p.traj, p.test, []).shape == (0, len(p.test))


# ---- errors ------------------------------------------------------------------------------
def test_point_not_in_batch(blobs_mlp):
    p = blobs_mlp
    occ = p.schedule.occurrences(0)
    other = next(t for t in range(len(p.schedule)) if t not in occ)
    with pytest.raises(ValueError, match=re.escape(f"point 0 is not in the batch of step {other}; "
                                                   f"it is in steps {occ}")):
        dt.exact_loo(p.traj, p.test, [0], [other])


def test_index_errors(blobs_mlp):
    p = blobs_mlp
    with pytest.raises(IndexError, match="point 30 is outside"):
        dt.exact_loo(p.traj, p.test, [30])
    with pytest.raises(IndexError, match="point -1 is outside"):
        dt.exact_loo(p.traj, p.test, [-1])
    with pytest.raises(IndexError, match="step 8 is out of range"):
        dt.exact_loo(p.traj, p.test, [0], [8])
    with pytest.raises(TypeError, match="sequence of integers"):
        dt.exact_loo(p.traj, p.test, 3)
    with pytest.raises(TypeError, match="integers"):
        dt.exact_loo(p.traj, p.test, [1.5])


def test_lengths_mismatch(blobs_mlp):
    with pytest.raises(ValueError, match="steps has 1 entries but points has 2"):
        dt.exact_loo(blobs_mlp.traj, blobs_mlp.test, [0, 1], [0])


def test_wrong_test_data(blobs_mlp):
    p = blobs_mlp
    with pytest.raises(ValueError, match="feature shape"):
        dt.exact_loo(p.traj, (torch.zeros(3, 5, dtype=torch.float64), p.test.y[:3]), [0])
    with pytest.raises(TypeError, match="float32"):
        dt.exact_loo(p.traj, (p.test.X.float(), p.test.y), [0])
    with pytest.raises(TypeError, match="test.y"):
        dt.exact_loo(p.traj, (p.test.X, p.test.y.double()), [0])


def test_renormalize_batch_of_one(linear_lsq):
    p = linear_lsq
    sched = dt.Schedule([[0, 1, 2], [3], [4, 5]], 3, 24)
    q = variant(p, schedule=sched)
    with pytest.raises(ValueError, match="only member of the batch of step 1.*renormalize=False"):
        dt.exact_loo(q.traj, q.test, [3], renormalize=True)
    dt.exact_loo(q.traj, q.test, [3])  # zero-weight removal is fine


def test_bad_measure_shape_and_chunk_size(blobs_mlp):
    p = blobs_mlp
    with pytest.raises(ValueError, match="one value per test point"):
        dt.exact_loo(p.traj, p.test, [0], measure=lambda m, prm, d: functional_call(m, prm, (d.X,)))
    with pytest.raises(ValueError, match="chunk_size"):
        dt.exact_loo(p.traj, p.test, [0], chunk_size=0)


def test_divergent_replay_names_the_step(linear_lsq):
    p = linear_lsq
    traj = dt.train(p.model, p.train, p.schedule, p.lr, loss=p.loss, weight_decay=p.weight_decay)
    traj.lrs = traj.lrs.clone()
    traj.lrs[7:] = 1e300  # a replay now explodes after step 7 (the stored θ_T is untouched)
    i = p.schedule.batches[6][0]
    with pytest.raises(FloatingPointError, match=r"diverged at step (7|8|9).*smaller lr"):
        dt.exact_loo(traj, p.test, [i], [6])
