"""`sgd_influence` against oracles that do not use dve_teach's own machinery:

- linear least squares, replayed by a hand-written autograd loop: SGD is affine in θ, so a
  one-step removal moves θ_T exactly as first order says (prediction: exact; loss: exact plus the
  closed-form quadratic term; two occurrences: exact plus the closed-form interaction term);
- a small tanh MLP: the explicit product of P×P Jacobians I − η_k(H_k + λI), H_k from
  ``torch.func.hessian`` of each batch loss.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import hessian

import dve_teach as dt

# ---------------------------------------------------------------- linear least squares
DIM, N, B, EPOCHS, WD = 3, 14, 4, 2, 0.05  # batches 4,4,4,2 per epoch: a short batch too


def _phi(X: torch.Tensor) -> torch.Tensor:
    """Features of the affine model θ = (weight, bias): prediction φ(x)ᵀθ."""
    return torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)


def _lsq_replay(theta0, X, y, batches, lrs, b, wd, removals=(), renormalize=False):
    """θ_0..θ_T of SGD on (φᵀθ − y)², weights 0 for the (point, step) pairs in `removals`.

    Plain autograd, one step at a time; the divisor is b, or |B_t| − 1 at a renormalized removal step."""
    theta, out = theta0.clone(), [theta0.clone()]
    for t, batch in enumerate(batches):
        idx = torch.tensor(batch)
        w = torch.tensor([0.0 if (i, t) in removals else 1.0 for i in batch], dtype=theta.dtype)
        div = len(batch) - 1 if (renormalize and (w == 0).any()) else b
        th = theta.detach().requires_grad_(True)
        loss = (w * (_phi(X[idx]) @ th - y[idx, 0]) ** 2).sum() / div
        g, = torch.autograd.grad(loss, th)
        theta = (theta - lrs[t] * (g + wd * theta)).detach()
        out.append(theta)
    return out


def _prediction(model, params, data):
    return torch.func.functional_call(model, params, (data.X,))[:, 0]


@pytest.fixture(scope="module")
def lsq():
    split = dt.datasets.linear_regression(n_train=N, n_test=5, dim=DIM, noise=0.3, seed=3)
    model = dt.models.linear(DIM, 1, seed=1)
    sched = dt.Schedule.shuffled(N, B, epochs=EPOCHS, seed=2)
    lrs = [0.08, 0.05, 0.1, 0.06, 0.09, 0.07, 0.04, 0.1][: len(sched)]
    traj = dt.train(model, split.train, sched, lrs, loss="mse", weight_decay=WD)
    theta0 = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()])
    X, y = split.train.X, split.train.y
    base = _lsq_replay(theta0, X, y, sched.batches, lrs, B, WD)
    return dict(split=split, traj=traj, sched=sched, lrs=lrs, theta0=theta0, base=base,
                phi_test=_phi(split.test.X))


def test_hand_replay_reproduces_training(lsq):
    torch.testing.assert_close(lsq["base"][-1], lsq["traj"].final, rtol=0, atol=1e-12)


def _close_rel(est, exact, rel=1e-9):
    torch.testing.assert_close(est, exact, rtol=0, atol=rel * float(exact.abs().max()))


@pytest.mark.parametrize("renormalize", [False, True])
def test_lsq_single_step_prediction_is_exact(lsq, renormalize):
    tr, sp = lsq["traj"], lsq["split"]
    inf = dt.sgd_influence(tr, sp.test, renormalize=renormalize, measure=_prediction)
    pts, sts = lsq["sched"].occurrence_pairs()
    assert inf.points.tolist() == pts and inf.steps.tolist() == sts
    pred_T = lsq["phi_test"] @ lsq["base"][-1]
    exact = torch.stack([
        lsq["phi_test"] @ _lsq_replay(lsq["theta0"], sp.train.X, sp.train.y, lsq["sched"].batches,
                                      lsq["lrs"], B, WD, {(i, t)}, renormalize)[-1] - pred_T
        for i, t in zip(pts, sts)])
    assert float(exact.abs().max()) > 1e-3  # the removals do move the predictions
    _close_rel(inf.per_occurrence, exact)


def test_lsq_renormalized_differs_from_zero_weight(lsq):
    a = dt.sgd_influence(lsq["traj"], lsq["split"].test, measure=_prediction).per_occurrence
    b = dt.sgd_influence(lsq["traj"], lsq["split"].test, renormalize=True, measure=_prediction).per_occurrence
    assert float((a - b).abs().max()) > 1e-2 * float(a.abs().max())


def test_lsq_loss_residual_is_the_quadratic_term(lsq):
    """ℓ = (φᵀθ − y)² is quadratic: Δℓ = ∇ℓ·Δθ + ½ Δpred ∂²ℓ/∂pred² Δpred, ∂²ℓ/∂pred² = 2."""
    tr, sp = lsq["traj"], lsq["split"]
    first = dt.sgd_influence(tr, sp.test).per_occurrence
    pts, sts = lsq["sched"].occurrence_pairs()
    y = sp.test.y[:, 0]
    loss_T = (lsq["phi_test"] @ lsq["base"][-1] - y) ** 2
    dloss, dpred = [], []
    for i, t in zip(pts, sts):
        th = _lsq_replay(lsq["theta0"], sp.train.X, sp.train.y, lsq["sched"].batches, lsq["lrs"], B, WD,
                         {(i, t)})[-1]
        dloss.append((lsq["phi_test"] @ th - y) ** 2 - loss_T)
        dpred.append(lsq["phi_test"] @ (th - lsq["base"][-1]))
    dloss, dpred = torch.stack(dloss), torch.stack(dpred)
    residual = dloss - first
    quadratic = 0.5 * dpred * 2.0 * dpred
    _close_rel(residual, quadratic, 1e-8)
    assert float(residual.abs().max()) > 1e-3 * float(dloss.abs().max())  # not ~0: second order


def test_lsq_two_occurrences_interact(lsq):
    """Removing i at t1 < t2: the run without it evaluates g_i at θ'_{t2} ≠ θ_{t2}, so the exact
    change is the sum of the two first-order scores plus the closed-form interaction
    φ_testᵀ K_{t2} (η_{t2}/b) ∇²ℓ_i (θ'_{t2} − θ_{t2}),  ∇²ℓ_i = 2 φ_i φ_iᵀ,  (θ' − θ)_{t2} = K_{t1→t2} δ_{t1}."""
    tr, sp, sched, lrs = lsq["traj"], lsq["split"], lsq["sched"], lsq["lrs"]
    X, y = sp.train.X.numpy(), sp.train.y[:, 0].numpy()
    Phi = np.concatenate([X, np.ones((len(X), 1))], 1)
    Pn, T = Phi.shape[1], len(sched)
    thetas = [th.numpy() for th in lsq["base"]]
    A = [np.eye(Pn) - lrs[k] * ((2.0 / B) * Phi[list(bk)].T @ Phi[list(bk)] + WD * np.eye(Pn))
         for k, bk in enumerate(sched.batches)]

    def prod(lo, hi):  # A_{hi−1} ··· A_{lo}
        M = np.eye(Pn)
        for k in range(lo, hi):
            M = A[k] @ M
        return M

    inf = dt.sgd_influence(tr, sp.test, measure=_prediction)
    phi_test = lsq["phi_test"].numpy()
    checked = 0
    for i in range(N):
        t1, t2 = sched.occurrences(i)
        delta1 = (lrs[t1] / B) * 2 * (Phi[i] @ thetas[t1] - y[i]) * Phi[i]
        D2 = prod(t1 + 1, t2) @ delta1
        interaction = phi_test @ prod(t2 + 1, T) @ ((lrs[t2] / B) * 2 * np.outer(Phi[i], Phi[i]) @ D2)
        th = _lsq_replay(lsq["theta0"], sp.train.X, sp.train.y, sched.batches, lrs, B, WD, {(i, t1), (i, t2)})[-1]
        exact = (lsq["phi_test"] @ (th - lsq["base"][-1])).numpy()
        first = inf.at([i, i], [t1, t2]).sum(0).numpy()
        np.testing.assert_allclose(exact - first, interaction, rtol=0, atol=1e-9 * np.abs(exact).max())
        np.testing.assert_allclose(inf.total()[i].numpy(), first, rtol=1e-13, atol=0)
        checked += float(np.abs(interaction).max()) > 1e-4 * float(np.abs(exact).max())
    assert checked >= N // 2  # the interaction is a real, visible second-order effect


# ---------------------------------------------------------------- tanh MLP, explicit P×P products
SIZES, NM, BM, WDM = (2, 4, 3), 12, 5, 0.01  # batches 5,5,2 per epoch


def _mlp_forward(theta, X):
    W1, b1 = theta[:8].view(4, 2), theta[8:12]
    W2, b2 = theta[12:24].view(3, 4), theta[24:27]
    return torch.tanh(X @ W1.T + b1) @ W2.T + b2


@pytest.fixture(scope="module")
def mlp_run():
    split = dt.datasets.blobs(n_train=NM, n_test=4, seed=5)
    model = dt.models.mlp(SIZES, seed=3)
    sched = dt.Schedule.shuffled(NM, BM, epochs=2, seed=4)
    lrs = [0.5, 0.3, 0.4, 0.6, 0.2, 0.45]
    traj = dt.train(model, split.train, sched, lrs, weight_decay=WDM)
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    X, y = split.train.X, split.train.y
    thetas = [theta]
    for t, bt in enumerate(sched.batches):
        bl = lambda th, bt=bt: F.cross_entropy(_mlp_forward(th, X[list(bt)]), y[list(bt)], reduction="sum") / BM
        theta = theta - lrs[t] * (torch.func.grad(bl)(theta) + WDM * theta)
        thetas.append(theta)
    return dict(split=split, traj=traj, sched=sched, lrs=lrs, thetas=thetas)


def explicit_scores(run, renormalize=False, measure_out=None, zero_hessians=False, wd=WDM):
    """Rows u_j(θ_T)ᵀ K_t δ_{i,t} with K_t = Π_{k>t} (I − η_k(H_k + λI)) formed as P×P matrices."""
    X, y = run["split"].train.X, run["split"].train.y
    Xt, yt = run["split"].test.X, run["split"].test.y
    sched, lrs, thetas = run["sched"], run["lrs"], run["thetas"]
    T, Pn = len(sched), thetas[0].numel()
    if measure_out is None:
        m = lambda th: F.cross_entropy(_mlp_forward(th, Xt), yt, reduction="none")  # noqa: E731
    else:
        m = lambda th: _mlp_forward(th, Xt)[:, measure_out]  # noqa: E731
    U = torch.func.jacrev(m)(thetas[T])  # [n_test, P]
    Ks = [None] * T
    K = torch.eye(Pn, dtype=torch.float64)
    for t in range(T - 1, -1, -1):
        Ks[t] = K
        bt = list(sched.batches[t])
        H = hessian(lambda th: F.cross_entropy(_mlp_forward(th, X[bt]), y[bt], reduction="sum") / BM)(thetas[t])
        if zero_hessians:
            H = torch.zeros_like(H)
        K = K @ (torch.eye(Pn, dtype=torch.float64) - lrs[t] * (H + wd * torch.eye(Pn, dtype=torch.float64)))
    rows = []
    for t, bt in enumerate(sched.batches):
        one = lambda th, i: F.cross_entropy(_mlp_forward(th, X[i:i + 1]), y[i:i + 1])  # noqa: E731
        G = torch.stack([torch.func.grad(one)(thetas[t], i) for i in bt])
        m_ = len(bt)
        if renormalize:
            D = lrs[t] * (G / (m_ - 1) - G.sum(0) * (1.0 / (m_ - 1) - 1.0 / BM))
        else:
            D = lrs[t] / BM * G
        rows.append(D @ Ks[t].T @ U.T)
    return torch.cat(rows)


def test_mlp_hand_thetas_match(mlp_run):
    torch.testing.assert_close(mlp_run["thetas"][-1], mlp_run["traj"].final, rtol=0, atol=1e-12)


@pytest.mark.parametrize("renormalize", [False, True])
def test_mlp_matches_explicit_products(mlp_run, renormalize):
    est = dt.sgd_influence(mlp_run["traj"], mlp_run["split"].test, renormalize=renormalize).per_occurrence
    ref = explicit_scores(mlp_run, renormalize=renormalize)
    _close_rel(est, ref, 1e-10)


def test_mlp_custom_measure_matches_explicit(mlp_run):
    measure = lambda model, params, data: torch.func.functional_call(model, params, (data.X,))[:, 1]  # noqa: E731
    est = dt.sgd_influence(mlp_run["traj"], mlp_run["split"].test, measure=measure).per_occurrence
    _close_rel(est, explicit_scores(mlp_run, measure_out=1), 1e-10)


def test_checkpointing_does_not_change_scores(mlp_run):
    r = mlp_run
    traj3 = dt.train(dt.models.mlp(SIZES, seed=3), r["split"].train, r["sched"], r["lrs"], weight_decay=WDM,
                     checkpoint_every=4)
    a = dt.sgd_influence(r["traj"], r["split"].test).per_occurrence
    b = dt.sgd_influence(traj3, r["split"].test).per_occurrence
    torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


# ---------------------------------------------------------------- errors
def test_bad_test_data_is_refused(mlp_run):
    test = mlp_run["split"].test
    with pytest.raises(ValueError, match="feature shape"):
        dt.sgd_influence(mlp_run["traj"], (test.X[:, :1], test.y))
    with pytest.raises(TypeError, match="float64"):
        dt.sgd_influence(mlp_run["traj"], (test.X.float(), test.y))


def test_bad_measure_shape_is_refused(mlp_run):
    measure = lambda model, params, data: torch.func.functional_call(model, params, (data.X,))  # noqa: E731
    with pytest.raises(ValueError, match="one value per test point"):
        dt.sgd_influence(mlp_run["traj"], mlp_run["split"].test, measure=measure)


def test_renormalize_single_point_batch_names_step():
    split = dt.datasets.blobs(n_train=5, n_test=2, seed=0)
    traj = dt.train(dt.models.mlp((2, 3, 3)), split.train, dt.Schedule.sequential(5, 2), 0.1)  # last batch: 1 point
    with pytest.raises(ValueError, match="step 2"):
        dt.sgd_influence(traj, split.test, renormalize=True)
