"""TracIn, grad_dot and the influence function against brute-force formulas and closed forms."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, hessian

import dve_teach as dt

# the explicit P×P oracle and its MLP run live in test_unroll.py; load it by path (any import mode)
_spec = importlib.util.spec_from_file_location("_dve_unroll_oracles", Path(__file__).with_name("test_unroll.py"))
_unroll = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_unroll)
explicit_scores, mlp_run = _unroll.explicit_scores, _unroll.mlp_run  # mlp_run: a fixture, reused here


def _loss_fn(traj):
    loss = F.cross_entropy if traj.loss == "cross_entropy" else F.mse_loss
    return lambda out, tgt: loss(out, tgt)


def _grad_at(model, theta_dict_fn, theta, X, y, loss):
    """∇_θ of loss(model(X), y) for one example (plain autograd through functional_call)."""
    th = theta.detach().requires_grad_(True)
    out = functional_call(model, theta_dict_fn(th), (X,))
    g, = torch.autograd.grad(loss(out, y), th)
    return g


def _brute(traj, test, at_final: bool):
    """(η_t/b) ∇ℓ(θ_s, z_test)·∇ℓ(θ_t, z_i) with s = T (grad_dot) or s = t (TracIn), loops only."""
    loss, model = _loss_fn(traj), traj.model
    unflat = traj.flat.unflatten
    rows = []
    for t in range(traj.T):
        th_t = traj.params(t)
        th_s = traj.final if at_final else th_t
        u = torch.stack([_grad_at(model, unflat, th_s, test.X[j:j + 1], test.y[j:j + 1], loss)
                         for j in range(len(test))])
        for i in traj.schedule.batches[t]:
            g = _grad_at(model, unflat, th_t, traj.data.X[i:i + 1], traj.data.y[i:i + 1], loss)
            rows.append(float(traj.lrs[t]) / traj.batch_size * (u @ g))
    return torch.stack(rows)


@pytest.mark.parametrize("fn,at_final", [(dt.tracin, False), (dt.grad_dot, True)])
def test_tracin_and_grad_dot_brute_force(blobs_mlp, fn, at_final):
    inf = fn(blobs_mlp.traj, blobs_mlp.test)
    pts, sts = blobs_mlp.schedule.occurrence_pairs()
    assert inf.points.tolist() == pts and inf.steps.tolist() == sts
    ref = _brute(blobs_mlp.traj, blobs_mlp.test, at_final)
    torch.testing.assert_close(inf.per_occurrence, ref, rtol=1e-11, atol=1e-14)


def test_tracin_differs_from_grad_dot(blobs_mlp):
    a = dt.tracin(blobs_mlp.traj, blobs_mlp.test).per_occurrence
    b = dt.grad_dot(blobs_mlp.traj, blobs_mlp.test).per_occurrence
    assert float((a - b).abs().max()) > 1e-3 * float(a.abs().max())


def test_grad_dot_is_unrolling_without_hessians(mlp_run):  # noqa: F811
    """Eq. (1) with every H_k := 0 and λ := 0 (K_t = I) is grad_dot; with λ > 0 kept it is not."""
    est = dt.grad_dot(mlp_run["traj"], mlp_run["split"].test).per_occurrence
    ref = explicit_scores(mlp_run, zero_hessians=True, wd=0.0)
    torch.testing.assert_close(est, ref, rtol=0, atol=1e-10 * float(ref.abs().max()))
    shrunk = explicit_scores(mlp_run, zero_hessians=True)  # the run has λ = 0.01
    assert float((est - shrunk).abs().max()) > 1e-4 * float(ref.abs().max())


# ---------------------------------------------------------------- influence function
def test_ridge_influence_function_closed_form(linear_lsq):
    """Least squares, ℓ = (φᵀθ − y)²: H = (2/n) ΦᵀΦ + λI, IF = (1/n) uᵀ (H + δI)⁻¹ g_i, numpy."""
    traj, test, damping = linear_lsq.traj, linear_lsq.test, 0.02
    th = traj.final.numpy()
    Phi = np.concatenate([traj.data.X.numpy(), np.ones((len(traj.data), 1))], 1)
    Pt = np.concatenate([test.X.numpy(), np.ones((len(test), 1))], 1)
    n = len(Phi)
    G = 2 * (Phi @ th - traj.data.y.numpy()[:, 0])[:, None] * Phi
    U = 2 * (Pt @ th - test.y.numpy()[:, 0])[:, None] * Pt
    H = 2.0 / n * Phi.T @ Phi + traj.weight_decay * np.eye(Phi.shape[1])
    ref = G @ np.linalg.solve(H + damping * np.eye(len(H)), U.T) / n
    for solver in ("exact", "cg", "auto"):
        est = dt.influence_function(traj, test, damping=damping, solver=solver).numpy()
        np.testing.assert_allclose(est, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_exact_and_cg_agree_on_mlp(blobs_mlp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # positive definite with this damping: no warning expected
        a = dt.influence_function(blobs_mlp.traj, blobs_mlp.test, damping=0.5, solver="exact")
        b = dt.influence_function(blobs_mlp.traj, blobs_mlp.test, damping=0.5, solver="cg", chunk_size=16)
    assert a.shape == (len(blobs_mlp.train), len(blobs_mlp.test))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-8 * float(a.abs().max()))


def test_indefinite_hessian_warns():
    split = dt.datasets.blobs(n_train=20, n_test=3, seed=2)
    traj = dt.train(dt.models.mlp((2, 6, 3), seed=1), split.train, dt.Schedule.sequential(20, 10), 0.1)
    X, y = traj.data.X, traj.data.y
    H = hessian(lambda th: F.cross_entropy(traj.flat.forward(th, X), y))(traj.final)
    assert float(torch.linalg.eigvalsh(H)[0]) < -1e-6  # precondition: H is indefinite at θ_T
    with pytest.warns(RuntimeWarning, match="not positive definite"):
        dt.influence_function(traj, split.test, damping=0.0, solver="exact")
    with pytest.warns(RuntimeWarning, match="negative curvature"):
        dt.influence_function(traj, split.test, damping=0.0, solver="cg")


def test_influence_function_bad_arguments(blobs_mlp):
    with pytest.raises(ValueError, match="solver"):
        dt.influence_function(blobs_mlp.traj, blobs_mlp.test, solver="lbfgs")
    with pytest.raises(ValueError, match="damping"):
        dt.influence_function(blobs_mlp.traj, blobs_mlp.test, damping=-1.0)
    with pytest.raises(ValueError, match="feature shape"):
        dt.influence_function(blobs_mlp.traj, (blobs_mlp.test.X[:, :1], blobs_mlp.test.y))


def test_baselines_refuse_bad_test_data(blobs_mlp):
    bad = (blobs_mlp.test.X.float(), blobs_mlp.test.y)
    for fn in (dt.tracin, dt.grad_dot):
        with pytest.raises(TypeError, match="float64"):
            fn(blobs_mlp.traj, bad)


def test_auto_damping_is_the_lessons_rule():
    """damping='auto' = 2|λ_min| of H (+λI) at θ_T when it is indefinite (the rule of lesson 01), found
    from the dense H (exact) or by Lanczos with HVPs (cg): both give the same damping, and no warning."""
    import warnings
    split = dt.datasets.blobs(n_train=20, n_test=3, seed=2)
    traj = dt.train(dt.models.mlp((2, 6, 3), seed=1), split.train, dt.Schedule.sequential(20, 10), 0.1)
    X, y = traj.data.X, traj.data.y
    H = hessian(lambda th: F.cross_entropy(traj.flat.forward(th, X), y))(traj.final)
    lam_min = float(torch.linalg.eigvalsh(H)[0])
    assert lam_min < 0
    mu = dt.influence.baselines.damping_rule(lam_min)
    assert mu == pytest.approx(2 * abs(lam_min))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = dt.influence_function(traj, split.test, damping="auto", solver="exact")
        cg = dt.influence_function(traj, split.test, damping="auto", solver="cg")
    manual = dt.influence_function(traj, split.test, damping=mu, solver="exact")
    assert torch.allclose(auto, manual, rtol=1e-8, atol=1e-14)
    assert torch.allclose(cg, manual, rtol=1e-4, atol=1e-10)
    with pytest.raises(ValueError, match="'auto'"):
        dt.influence_function(traj, split.test, damping="lessons")
    scores, used = dt.influence_function(traj, split.test, damping="auto", solver="exact", return_damping=True)
    assert used == pytest.approx(mu) and torch.allclose(scores, auto)          # the damping 'auto' chose
    _, given = dt.influence_function(traj, split.test, damping=2.0, return_damping=True)
    assert given == 2.0
