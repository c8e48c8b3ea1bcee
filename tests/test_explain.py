"""dve_teach.explain against oracles: a second autodiff route for H, the exact replay of least
squares (SGD is affine in θ there, so K_t δ is exactly θ'_T − θ_T), and the reverse sweep."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach import explain
from dve_teach.influence.counterfactual import counterfactual_params


def test_batch_hessian_matches_hvp_and_is_symmetric(blobs_mlp):
    traj = blobs_mlp.traj
    t = 3
    H = explain.batch_hessian(traj, t)
    assert H.shape == (traj.flat.P, traj.flat.P)
    assert torch.allclose(H, H.T, atol=1e-12)
    V = torch.randn(4, traj.flat.P, generator=torch.Generator().manual_seed(0), dtype=traj.dtype)
    _, X, y = traj.batch(t)
    HV = traj.objective.hvp(traj.params(t), X, y, traj.batch_size, V)  # forward-over-reverse
    assert torch.allclose(V @ H.T, HV, rtol=1e-10, atol=1e-12)


def test_batch_hessian_short_batch_keeps_nominal_divisor(blobs_mlp):
    traj = blobs_mlp.traj
    t = 3  # 30 points, b = 8: step 3 is the short last batch of epoch 1 (6 points)
    idx, X, y = traj.batch(t)
    assert len(idx) < traj.batch_size
    theta = traj.params(t)
    full = torch.func.hessian(lambda th: traj.objective.losses(th, X, y).mean())(theta)
    assert torch.allclose(explain.batch_hessian(traj, t), full * len(idx) / traj.batch_size, atol=1e-12)


def test_removal_direction_is_the_exact_first_step(blobs_mlp):
    traj = blobs_mlp.traj
    for renormalize in (False, True):
        t = 1
        i = traj.schedule.batches[t][2]
        cf = counterfactual_params(traj, i, t, renormalize=renormalize)
        delta = explain.removal_direction(traj, i, t, renormalize=renormalize)
        assert torch.allclose(delta, cf[t + 1] - traj.params(t + 1), atol=1e-13)


def test_least_squares_product_times_delta_is_the_exact_change(linear_lsq):
    traj = linear_lsq.traj  # weight decay 0.01: the product includes λ
    for t in (0, 4, traj.T - 1):
        i = traj.schedule.batches[t][0]
        K = explain.unrolled_product(traj, t)
        moved = counterfactual_params(traj, i, t)[-1] - traj.final
        assert torch.allclose(K @ explain.removal_direction(traj, i, t), moved, rtol=1e-9, atol=1e-13)


def test_last_step_product_is_identity(blobs_mlp):
    traj = blobs_mlp.traj
    assert torch.equal(explain.unrolled_product(traj, traj.T - 1), torch.eye(traj.flat.P, dtype=traj.dtype))


def test_explicit_product_equals_reverse_sweep(blobs_mlp):
    traj, test = blobs_mlp.traj, blobs_mlp.test
    t = 2
    i = traj.schedule.batches[t][1]
    U = traj.objective.measure_grads(traj.final, test)  # [n_test, P]
    explicit = U @ (explain.unrolled_product(traj, t) @ explain.removal_direction(traj, i, t))
    sweep = dt.sgd_influence(traj, test).at([i], [t])[0]
    assert torch.allclose(explicit, sweep, rtol=1e-9, atol=1e-14)


def test_with_copies_places_copies_and_trains_like_the_hand_built_run(blobs_mlp):
    data, sched = blobs_mlp.train, blobs_mlp.schedule
    i = sched.batches[0][0]
    new, s2 = explain.with_copies(data, sched, i, [5, 7, 7])
    n = len(data)
    assert len(new) == n + 3 and s2.n == n + 3 and len(s2) == len(sched)
    assert torch.equal(new.X[n:], data.X[[i, i, i]]) and torch.equal(new.y[n:], data.y[[i, i, i]])
    assert s2.batches[5] == sched.batches[5] + (n,) and s2.batches[7] == sched.batches[7] + (n + 1, n + 2)
    assert all(s2.batches[t] == sched.batches[t] for t in range(len(sched)) if t not in (5, 7))
    # oracle: a copy at step 5 adds exactly (η/b) ∇ℓ(θ_5, z_i) to that step's descent
    traj = dt.train(blobs_mlp.model, new, s2, 0.3)
    base = blobs_mlp.traj
    g_i = base.objective.per_sample_grads(base.params(5), data.X[[i]], data.y[[i]])[0]
    assert torch.allclose(traj.params(6), base.params(6) - 0.3 / base.batch_size * g_i, atol=1e-13)


def test_clear_errors(blobs_mlp):
    traj = blobs_mlp.traj
    with pytest.raises(IndexError, match="out of range"):
        explain.batch_hessian(traj, traj.T)
    outside = next(i for i in range(30) if i not in traj.schedule.batches[0])
    with pytest.raises(ValueError, match="not in the batch of step 0"):
        explain.removal_direction(traj, outside, 0)
    with pytest.raises(IndexError, match="out of range"):
        explain.with_copies(blobs_mlp.train, blobs_mlp.schedule, 0, [99])
    with pytest.raises(IndexError, match="outside the training set"):
        explain.with_copies(blobs_mlp.train, blobs_mlp.schedule, 30, [1])


def test_refuses_large_models(monkeypatch, blobs_mlp):
    monkeypatch.setattr(explain, "MAX_EXPLICIT_P", 10)
    with pytest.raises(ValueError, match="sgd_influence"):
        explain.unrolled_product(blobs_mlp.traj, 0)


@pytest.mark.parametrize("rule", [dt.optim.SGD(momentum=0.9, weight_decay=0.01), dt.optim.Adam()], ids=repr)
def test_state_space_product_times_delta_is_first_order_exact(blobs_mlp, rule):
    """For momentum and Adam runs K_t and δ live in state space; their θ rows predict the replayed
    change of θ_T to first order (within 5% here; the rest is second order)."""
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.01, optimizer=rule)
    P, t = traj.flat.P, 2
    J = explain.step_jacobian(traj, t)
    assert J.shape == (traj.checkpoints[0].shape[0],) * 2
    K = explain.unrolled_product(traj, t)
    assert torch.allclose(K, explain.unrolled_product(traj, t + 1) @ explain.step_jacobian(traj, t + 1))
    i = traj.schedule.batches[t][0]
    delta = explain.removal_direction(traj, i, t)
    moved = counterfactual_params(traj, i, t)[-1] - traj.final
    pred = (K @ delta)[:P]
    assert float((pred - moved).norm()) < 0.05 * float(moved.norm())
