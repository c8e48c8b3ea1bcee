"""`dt.curation`: label flips, mislabel detection scores against direct computations, and the
online selection loop against plain `dt.train` (bitwise) and a brute-force alignment ranking."""
from __future__ import annotations

import pytest
import torch
from torch.func import hessian

import dve_teach as dt
from dve_teach.influence import curation


def test_flip_labels(blobs_mlp):
    data = blobs_mlp.train
    noisy, flipped = curation.flip_labels(data, 0.2, seed=3)
    assert len(flipped) == 6 and torch.equal(flipped, flipped.sort().values)
    changed = (noisy.y != data.y).nonzero().flatten()
    assert torch.equal(changed, flipped)                         # every flipped label changed, no other
    assert int(noisy.y.max()) <= int(data.y.max()) and torch.equal(noisy.X, data.X)
    again, f2 = curation.flip_labels(data, 0.2, seed=3)
    assert torch.equal(again.y, noisy.y) and torch.equal(f2, flipped)
    assert torch.equal(data.y, blobs_mlp.train.y)               # the input is not modified
    assert len(curation.flip_labels(data, 0.0)[1]) == 0


def test_flip_labels_errors(linear_lsq, blobs_mlp):
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        curation.flip_labels(blobs_mlp.train, 1.5)
    with pytest.raises(TypeError, match="integer class labels"):
        curation.flip_labels(linear_lsq.train, 0.1)


@pytest.fixture(scope="module")
def fitted(blobs_mlp):
    return dt.DataValueEmbedding().fit(blobs_mlp.traj)


def test_dve_scores(blobs_mlp, fitted):
    traj, val = blobs_mlp.traj, blobs_mlp.test
    own = fitted.influence(traj.data).total().diagonal()        # Σ_t DVE(i,t)·∇ℓ(θ_T, z_i)
    got = curation.detection_scores(traj, method="dve_self", dve=fitted)
    assert torch.allclose(got, own.double())
    value = curation.detection_scores(traj, val, "dve_value", dve=fitted)
    assert torch.allclose(value, -fitted.influence(val).total().mean(1))
    assert torch.allclose(curation.detection_scores(traj, method="dve_self"), got)   # fitted inside


def test_tracin_self_against_autograd(blobs_mlp):
    traj = blobs_mlp.traj
    got = curation.detection_scores(traj, method="tracin_self")
    want = torch.zeros(traj.schedule.n, dtype=torch.float64)
    for t in range(traj.T):
        for i in traj.schedule.batches[t]:
            theta = traj.params(t).clone().requires_grad_(True)
            (g,) = torch.autograd.grad(traj.objective.losses(theta, traj.data.X[[i]], traj.data.y[[i]]).sum(), theta)
            want[i] += float(traj.lrs[t]) / traj.batch_size * float(g @ g)
    assert torch.allclose(got, want, rtol=1e-10)


def test_influence_function_self_against_dense_solve(blobs_mlp):
    traj, n, damping = blobs_mlp.traj, blobs_mlp.traj.schedule.n, 0.5
    theta, X, y = traj.final, traj.data.X, traj.data.y
    H = hessian(lambda th: traj.objective.losses(th, X, y).mean())(theta)
    H = H + damping * torch.eye(len(theta), dtype=theta.dtype)
    G = traj.objective.per_sample_grads(theta, X, y)
    want = torch.einsum("ip,ip->i", G, torch.linalg.solve(H, G.T).T) / n
    assert torch.allclose(curation.detection_scores(traj, method="if_self", damping=damping), want, rtol=1e-8)
    iv = curation.detection_scores(traj, blobs_mlp.test, "if_value", damping=damping)
    assert torch.allclose(iv, -dt.influence_function(traj, blobs_mlp.test, damping=damping).mean(1))


def test_loss_random_and_tracin_value(blobs_mlp):
    traj, val = blobs_mlp.traj, blobs_mlp.test
    assert torch.equal(curation.detection_scores(traj, method="loss"), traj.test_losses(traj.data).double())
    r = curation.detection_scores(traj, method="random", seed=5)
    assert r.shape == (traj.schedule.n,) and torch.equal(r, curation.detection_scores(traj, method="random", seed=5))
    assert not torch.equal(r, curation.detection_scores(traj, method="random", seed=6))
    tv = curation.detection_scores(traj, val, "tracin_value")
    assert torch.allclose(tv, -dt.tracin(traj, val).total().mean(1))


def test_detection_errors(blobs_mlp, linear_lsq):
    traj = blobs_mlp.traj
    with pytest.raises(ValueError, match="unknown method"):
        curation.detection_scores(traj, method="magic")
    with pytest.raises(ValueError, match="pass validation="):
        curation.detection_scores(traj, method="dve_value")
    other = dt.DataValueEmbedding().fit(linear_lsq.traj)
    with pytest.raises(ValueError, match="fitted on this trajectory"):
        curation.detection_scores(traj, method="dve_self", dve=other)


def _plain(p):
    return dt.train(p.model, p.train, p.schedule, p.lr)


def test_no_windows_is_plain_training_bitwise(blobs_mlp):
    p = blobs_mlp
    ref = _plain(p)
    sel = curation.select_and_train(p.model, p.train, p.test, p.schedule, p.lr, windows=[], ratio=3, test=p.test)
    traj = sel.trajectory
    assert traj.schedule == p.schedule and sel.selected_steps == [] and sel.extra_gradients == 0
    assert sel.relative_cost == 1.0
    assert all(torch.equal(traj.params(t), ref.params(t)) for t in range(ref.T + 1))
    assert torch.equal(traj.batch_losses, ref.batch_losses)
    assert sel.test_loss == float(ref.test_losses(p.test).mean())


def test_ratio_one_selects_the_batch_itself(blobs_mlp):
    p = blobs_mlp
    sel = curation.select_and_train(p.model, p.train, p.test, p.schedule, p.lr, windows=[(0, p.schedule.__len__())],
                                    ratio=1)
    assert torch.equal(sel.trajectory.final, _plain(p).final)
    assert sel.extra_gradients == len(p.schedule) * len(p.test)


def test_selection_keeps_the_best_aligned_candidates(blobs_mlp):
    p = blobs_mlp
    sched, b, ratio = p.schedule, p.schedule.batch_size, 2
    sel = curation.select_and_train(p.model, p.train, p.test, sched, p.lr, windows=[(1, 3), (6, 7)],
                                    ratio=ratio, seed=2)         # validation batch = all of p.test
    traj, obj = sel.trajectory, sel.trajectory.objective
    assert sel.selected_steps == [1, 2, 6]
    assert sel.extra_gradients == 3 * ((ratio - 1) * b + len(p.test))
    plain = sum(len(x) for x in sched.batches)
    assert sel.relative_cost == pytest.approx((plain + sel.extra_gradients) / plain)
    for t in range(traj.T):
        used = list(traj.schedule.batches[t])
        if t not in sel.selected_steps:
            assert used == list(sched.batches[t])
            continue
        cand = sel.candidates[t]
        assert len(cand) == len(sched.batches[t]) + (ratio - 1) * b and len(set(cand)) == len(cand)
        assert list(cand[:len(sched.batches[t])]) == list(sched.batches[t])
        theta = traj.params(t)

        def grad_of(X, y):
            th = theta.clone().requires_grad_(True)
            return torch.autograd.grad(obj.losses(th, X, y).mean(), th)[0]
        gv = grad_of(p.test.X, p.test.y)                         # mean validation gradient at θ_t
        align = {i: float(grad_of(p.train.X[[i]], p.train.y[[i]]) @ gv) for i in cand}
        top = sorted(cand, key=lambda i: -align[i])[:b]          # brute force, one autograd call each
        assert sorted(top) == sorted(used)
        assert used == [i for i in cand if i in used]              # kept in candidate order
    # the step itself is the plain SGD step on the batch used
    t = sel.selected_steps[0]
    again = dt.train(p.model, p.train, traj.schedule, p.lr)
    assert torch.equal(again.final, traj.final) and torch.equal(again.params(t + 1), traj.params(t + 1))


def test_validation_batches_cost(blobs_mlp):
    p = blobs_mlp
    sel = curation.select_and_train(p.model, p.train, p.test, p.schedule, p.lr, windows=[(0, 2)], ratio=2,
                                    val_batch_size=4)
    assert sel.extra_gradients == 2 * (p.schedule.batch_size + 4)
    assert not torch.equal(sel.trajectory.final, _plain(p).final)


def test_selection_errors(blobs_mlp):
    p = blobs_mlp
    call = lambda **kw: curation.select_and_train(p.model, p.train, p.test, p.schedule, p.lr,  # noqa: E731
                                                  **{"windows": [(0, 2)], "ratio": 2, **kw})
    with pytest.raises(ValueError, match="ratio must be an integer >= 1"):
        call(ratio=0)
    with pytest.raises(ValueError, match="exceed the pool"):
        call(ratio=10)
    with pytest.raises(ValueError, match="0 <= start <= stop <= T"):
        call(windows=[(3, 100)])
    with pytest.raises(ValueError, match="pair \\(start, stop\\)"):
        call(windows=[5])
    with pytest.raises(ValueError, match="val_batch_size must be in"):
        call(val_batch_size=0)
    with pytest.raises(ValueError, match="build it with n="):
        curation.select_and_train(p.model, p.train[list(range(10))], p.test, p.schedule, p.lr)
