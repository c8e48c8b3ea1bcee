"""DataValueEmbedding against oracles: explicit P×P products, exact replays on least squares.

Oracles are built independently of the library's gradient code: per-sample gradients by a plain
autograd loop over examples on `traj.model_at(t)`, Hessians / GGNs as explicit P×P matrices,
and parameter changes by a hand-written SGD replay (least squares, closed-form gradients).
"""
from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import dve_teach as dt
from dve_teach.influence.embedding import DataValueEmbedding

# ---- independent oracles -------------------------------------------------------------------


def loop_grads(traj, t, X, y, loss=F.cross_entropy):
    """Per-sample gradients at θ_t by a Python loop with torch.autograd: Tensor[n, P]."""
    model = traj.model_at(t)
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(X)):
        li = loss(model(X[i:i + 1]), y[i:i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(li, params)]))
    return torch.stack(rows).detach()


def removal(G, lr, b, renormalize):
    if not renormalize:
        return lr / b * G
    m = G.shape[0]
    return lr * (G / (m - 1) - G.sum(0, keepdim=True) * (1 / (m - 1) - 1 / b))


def explicit_embeddings(traj, hessians, grads, renormalize=False):
    """Rows K_t δ_{i,t}, K_t = Π_{k>t} ((1 − η_k λ) I − η_k H_k) (later k on the left), in step order."""
    P, lam, b = traj.flat.P, traj.weight_decay, traj.batch_size
    eye = torch.eye(P, dtype=torch.float64)
    rows = []
    for t in range(traj.T):
        K = eye.clone()
        for k in range(t + 1, traj.T):
            lr = float(traj.lrs[k])
            K = ((1 - lr * lam) * eye - lr * hessians[k]) @ K
        rows.append(removal(grads[t], float(traj.lrs[t]), b, renormalize) @ K.T)
    return torch.cat(rows)


def fisher(G, b, mask=None):
    H = G.T @ G / b
    return H if mask is None else H * mask


def close(a, b, rtol=1e-10):
    scale = float(b.abs().max())
    err = float((a - b).abs().max())
    assert err <= rtol * scale, f"max error {err:.3e} vs scale {scale:.3e}"


# ---- a tiny MLP (P = 27), multi-epoch, short last batches ----------------------------------


@functools.lru_cache(maxsize=None)
def _tiny(weight_decay):
    split = dt.datasets.blobs(n_train=18, n_test=5, seed=3)
    model = dt.models.mlp((2, 4, 3), seed=1)
    sched = dt.Schedule.shuffled(18, 5, epochs=2, seed=0)   # batches 5,5,5,3 per epoch: 8 steps
    traj = dt.train(model, split.train, sched, 0.5, weight_decay=weight_decay)
    grads = [loop_grads(traj, t, *traj.batch(t)[1:]) for t in range(traj.T)]
    H = [fisher(G, traj.batch_size) for G in grads]
    explicit = {r: explicit_embeddings(traj, H, grads, r) for r in (False, True)}
    return SimpleNamespace(traj=traj, test=split.test, grads=grads, explicit_fisher=explicit)


@pytest.fixture(params=[0.0, 0.05], ids=["wd0", "wd0.05"])
def tiny_both(request):
    return _tiny(request.param)


@pytest.fixture
def tiny():
    return _tiny(0.05)


@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("block_rank", [0, 12, None, 1000])
def test_fisher_equals_explicit_product(tiny_both, renormalize, block_rank):
    """Zero-weight and renormalized, with and without weight decay, whatever the update batching."""
    traj = tiny_both.traj
    assert traj.flat.P == 27 and traj.T == 8
    dve = DataValueEmbedding(renormalize=renormalize, block_rank=block_rank).fit(traj)
    close(dve.embeddings_, tiny_both.explicit_fisher[renormalize])
    pts, sts = traj.schedule.occurrence_pairs()
    assert dve.points_.tolist() == pts and dve.steps_.tolist() == sts
    assert dve.embedding_dim_ == 27


def test_influence_is_embedding_dot_final_test_gradient(tiny):
    traj, test, grads = tiny.traj, tiny.test, tiny.grads
    dve = DataValueEmbedding().fit(traj)
    U = loop_grads(traj, traj.T, test.X, test.y)          # ∇ℓ(θ_T, z_test), [n_test, P]
    inf = dve.influence(test)
    assert isinstance(inf, dt.Influence) and inf.per_occurrence.shape == (len(dve.points_), len(test))
    close(inf.per_occurrence, dve.embeddings_ @ U.T)
    close(dve.test_gradients(test), U)
    assert inf.total().shape == (traj.schedule.n, len(test))


def test_layerwise_equals_block_diagonal_fisher(tiny):
    traj, grads = tiny.traj, tiny.grads
    P = traj.flat.P
    mask = torch.zeros(P, P, dtype=torch.float64)
    for _, s in traj.flat.layers:
        mask[s, s] = 1
    assert len(traj.flat.layers) == 2
    H = [fisher(G, traj.batch_size, mask) for G in grads]
    for br in (0, 12, None):
        dve = DataValueEmbedding(layerwise=True, block_rank=br).fit(traj)
        close(dve.embeddings_, explicit_embeddings(traj, H, grads))
    # and it is a different estimator from the full-matrix one
    full = DataValueEmbedding().fit(traj).embeddings_
    assert float((full - dve.embeddings_).abs().max()) > 1e-6 * float(full.abs().max())


def test_ggn_equals_explicit_ggn_cross_entropy(tiny):
    """H_k = (1/b) Σ J_iᵀ (diag(p_i) − p_i p_iᵀ) J_i with J_i from autograd (softmax cross-entropy)."""
    traj, grads = tiny.traj, tiny.grads
    H = []
    for t in range(traj.T):
        theta = traj.params(t)
        _, X, _ = traj.batch(t)
        Hk = torch.zeros(traj.flat.P, traj.flat.P, dtype=torch.float64)
        for i in range(len(X)):
            f = lambda th: traj.flat.forward(th, X[i:i + 1])[0]  # noqa: E731
            J = torch.autograd.functional.jacobian(f, theta)
            p = torch.softmax(f(theta), 0)
            Hk += J.T @ (torch.diag(p) - torch.outer(p, p)) @ J
        H.append(Hk / traj.batch_size)
    expected = explicit_embeddings(traj, H, grads)
    for br in (None, 40):   # update each step / keep several steps' factors pending
        close(DataValueEmbedding(hessian="ggn", block_rank=br).fit(traj).embeddings_, expected)


# ---- least squares: SGD is affine in θ, first order is exact --------------------------------


def lsq_grads(theta, X, y):
    """Per-example ∇ of (xᵀw + c − y)² for θ = [w, c]: Tensor[n, P] (closed form)."""
    Xa = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    return 2 * (Xa @ theta - y[:, 0]).unsqueeze(1) * Xa


def replay(traj, t0, point=None, renormalize=False):
    """θ_T of the run from θ_{t0} with `point` dropped at step t0 (hand-written SGD)."""
    theta, b, lam = traj.params(t0).clone(), traj.batch_size, traj.weight_decay
    for s in range(t0, traj.T):
        idx, X, y = traj.batch(s)
        G = lsq_grads(theta, X, y)
        divisor = b
        if s == t0 and point is not None:
            keep = idx != point
            G = G[keep]
            if renormalize:
                divisor = len(G)
        theta = theta - float(traj.lrs[s]) * (G.sum(0) / divisor + lam * theta)
    return theta


def prediction(model, params, data):
    return functional_call(model, params, (data.X,))[:, 0]


def lsq_removals(traj):
    """A few (point, step) pairs: first, middle and last steps, a short batch."""
    pairs = []
    for t in (0, 3, 4, traj.T - 1):
        pairs += [(traj.schedule.batches[t][0], t), (traj.schedule.batches[t][-1], t)]
    return pairs


def test_replay_oracle_reproduces_training(linear_lsq):
    traj = linear_lsq.traj
    assert traj.weight_decay > 0
    close(replay(traj, 0), traj.final, rtol=1e-12)


@pytest.mark.parametrize("renormalize", [False, True])
def test_ggn_is_exact_on_least_squares(linear_lsq, renormalize):
    traj, test = linear_lsq.traj, linear_lsq.test
    dve = DataValueEmbedding(hessian="ggn", renormalize=renormalize).fit(traj)
    pairs = lsq_removals(traj)
    pts, sts = [p for p, _ in pairs], [s for _, s in pairs]
    dtheta = torch.stack([replay(traj, s, p, renormalize) - traj.final for p, s in pairs])
    rows = [int(((dve.points_ == p) & (dve.steps_ == s)).nonzero()) for p, s in pairs]
    close(dve.embeddings_[rows], dtheta, rtol=1e-9)
    # the dot product with a test prediction gradient is the exact change of the prediction
    Xa = torch.cat([test.X, torch.ones(len(test), 1, dtype=torch.float64)], 1)
    exact_change = dtheta @ Xa.T                                       # [n_pairs, n_test]
    close(dve.influence(test, measure=prediction).at(pts, sts), exact_change, rtol=1e-9)
    # the empirical Fisher is not the Hessian here: a clearly nonzero error
    fis = DataValueEmbedding(hessian="fisher", renormalize=renormalize).fit(traj)
    rel = float((fis.embeddings_[rows] - dtheta).norm() / dtheta.norm())
    assert rel > 1e-2, rel


def test_ggn_equals_exact_hessian_product_on_least_squares(linear_lsq):
    traj = linear_lsq.traj
    b = traj.batch_size
    H, grads = [], []
    for t in range(traj.T):
        _, X, y = traj.batch(t)
        theta = traj.params(t)
        H.append(torch.autograd.functional.hessian(lambda th: ((X @ th[:-1] + th[-1] - y[:, 0]) ** 2).sum() / b,
                                                   theta))
        grads.append(lsq_grads(theta, X, y))
    dve = DataValueEmbedding(hessian="ggn").fit(traj)
    close(dve.embeddings_, explicit_embeddings(traj, H, grads))


# ---- error paths ------------------------------------------------------------------------------


def test_influence_before_fit_is_a_clear_error(tiny):
    traj, test = tiny.traj, tiny.test
    with pytest.raises(RuntimeError, match="fit"):
        DataValueEmbedding().influence(test)
    with pytest.raises(RuntimeError, match="fit"):
        DataValueEmbedding().test_gradients(test)


def test_wrong_test_data_is_a_clear_error(tiny):
    traj, test = tiny.traj, tiny.test
    dve = DataValueEmbedding().fit(traj)
    with pytest.raises(ValueError, match="feature shape"):
        dve.influence((torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, dtype=torch.int64)))
    with pytest.raises(TypeError, match="float64"):
        dve.influence((test.X.float(), test.y))


def test_bad_settings_are_clear_errors(tiny):
    traj = tiny.traj
    with pytest.raises(ValueError, match="hessian"):
        DataValueEmbedding(hessian="exact").fit(traj)
    with pytest.raises(ValueError, match="larger than the parameter count"):
        DataValueEmbedding(proj_dim=traj.flat.P + 1).fit(traj)
    with pytest.raises(ValueError, match="layerwise"):
        DataValueEmbedding(projection=torch.eye(traj.flat.P, dtype=torch.float64), layerwise=True).fit(traj)
    with pytest.raises(TypeError, match="Trajectory"):
        DataValueEmbedding().fit("not a trajectory")


def test_renormalized_removal_of_a_lone_point_names_the_step():
    split = dt.datasets.blobs(n_train=5, n_test=2, seed=0)
    sched = dt.Schedule.from_batches([[0, 1, 2], [3, 4], [0]], batch_size=3)
    traj = dt.train(dt.models.mlp((2, 3, 3)), split.train, sched, 0.1)
    with pytest.raises(ValueError, match="step 2"):
        DataValueEmbedding(renormalize=True).fit(traj)


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2, 3, dtype=torch.float64) * 0.1)

    def forward(self, x):
        return x @ self.w


def test_kronecker_without_linear_layers_is_a_clear_error():
    split = dt.datasets.blobs(n_train=6, n_test=2, seed=0)
    traj = dt.train(_Scale(), split.train, dt.Schedule.shuffled(6, 3), 0.1)
    with pytest.raises(ValueError, match="no(ne)?.*Linear|Linear.*none"):
        DataValueEmbedding(projection="kronecker", proj_dim=4).fit(traj)
