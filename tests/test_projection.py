"""Projections for data value embeddings: exactness, (un)biasedness, Kronecker structure, errors."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import dve_teach as dt
from dve_teach.influence.embedding import DataValueEmbedding
from dve_teach.training.functional import FlatModel
from dve_teach.influence.projection import allocate_dims, make_projection


@functools.lru_cache(maxsize=None)
def _mlp_run(weight_decay=0.05):
    split = dt.datasets.blobs(n_train=18, n_test=5, seed=3)
    sched = dt.Schedule.shuffled(18, 5, epochs=2, seed=0)
    traj = dt.train(dt.models.mlp((2, 4, 3), seed=1), split.train, sched, 0.5, weight_decay=weight_decay)
    return traj, split.test


def close(a, b, rtol=1e-10):
    scale, err = float(b.abs().max()), float((a - b).abs().max())
    assert err <= rtol * scale, f"max error {err:.3e} vs scale {scale:.3e}"


def scores(traj, test, **kw):
    return DataValueEmbedding(**kw).fit(traj).influence(test).per_occurrence


# ---- orthogonal: exact when d = P -------------------------------------------------------------


@pytest.mark.parametrize("hessian", ["fisher", "ggn"])
def test_orthogonal_full_dimension_gives_unprojected_scores(hessian):
    traj, test = _mlp_run()
    P = traj.flat.P
    R = make_projection(traj.flat, P, "orthogonal", seed=3).matrix()
    close(R.T @ R, torch.eye(P, dtype=torch.float64), rtol=1e-12)
    assert float((R - torch.eye(P, dtype=torch.float64)).abs().max()) > 0.1   # a real rotation
    close(scores(traj, test, hessian=hessian, proj_dim=P, projection="orthogonal", seed=3),
          scores(traj, test, hessian=hessian))


def test_orthogonal_rows_are_orthonormal():
    traj, _ = _mlp_run()
    for layerwise in (False, True):
        R = make_projection(traj.flat, 9, "orthogonal", layerwise=layerwise, seed=1).matrix()
        close(R @ R.T, torch.eye(9, dtype=torch.float64), rtol=1e-12)


# ---- gaussian: unbiased without M, an O(1/d) bias with M --------------------------------------


def _one_or_two_steps(steps):
    split = dt.datasets.blobs(n_train=12, n_test=4, seed=3)
    sched = dt.Schedule.from_batches([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]][:steps], batch_size=6, n=12)
    return dt.train(dt.models.mlp((2, 4, 3), seed=1), split.train, sched, 2.0), split.test


def _seed_average(traj, test, n, **kw):
    S = torch.stack([scores(traj, test, seed=s, **kw) for s in range(n)])
    return S.mean(0), S.std(0) / n ** 0.5


def test_gaussian_projection_is_unbiased_without_M():
    """One step: M = 0, the score is (R u)ᵀ(R δ) and E[RᵀR] = I, so the seed average converges to
    uᵀδ. The check has power: orthonormal rows with d < P (E[RᵀR] = (d/P) I) fail it."""
    traj, test = _one_or_two_steps(1)
    exact = scores(traj, test)
    mean, se = _seed_average(traj, test, 200, proj_dim=4, projection="gaussian")
    assert float(((mean - exact).abs() / se).max()) < 4.0
    assert float(se.max()) < 0.2 * float(exact.abs().max())        # the average is informative
    mean_o, se_o = _seed_average(traj, test, 40, proj_dim=4, projection="orthogonal")
    assert float(((mean_o - exact).abs() / se_o).max()) > 4.0


def test_gaussian_projection_with_M_has_the_predicted_bias():
    """Two steps: for i in B_0 the score is (η/b) uᵀW(I − (η/b) Σ_j g_j g_jᵀ W) g_i with W = RᵀR,
    and E[W A W] = A + (Aᵀ + tr(A) I)/d (Gaussian fourth moments), so the seed average is
    the unprojected score − (η/b)² (1/d) Σ_{j∈B_1} [(uᵀg_j)(g_jᵀg_i) + |g_j|² uᵀg_i]: biased at O(1/d).
    Points of the last step (M = 0) stay unbiased."""
    traj, test = _one_or_two_steps(2)
    d, lr, b = 4, 2.0, 6
    exact = scores(traj, test)
    mean, se = _seed_average(traj, test, 200, proj_dim=d, projection="gaussian")
    obj = traj.objective
    G0 = obj.per_sample_grads(traj.params(0), *traj.batch(0)[1:])
    G1 = obj.per_sample_grads(traj.params(1), *traj.batch(1)[1:])
    U = obj.measure_grads(traj.final, test)
    bias = -(lr / b) ** 2 / d * ((G0 @ G1.T) @ (G1 @ U.T) + (G1 * G1).sum() * (G0 @ U.T))
    expected = exact.clone()
    expected[:6] += bias
    assert float(((mean - expected).abs() / se).max()) < 4.0
    assert float((bias.abs() / se[:6]).max()) > 6.0            # the bias is resolved, not noise


# ---- layerwise gaussian ----------------------------------------------------------------------


def test_allocate_dims():
    for total, sizes in [(10, [12, 15]), (7, [2080, 330]), (3, [100, 1, 1]), (27, [12, 15]), (5, [1, 1, 1, 1, 50])]:
        k = allocate_dims(total, sizes)
        assert sum(k) == total and all(1 <= a <= s for a, s in zip(k, sizes))
        free = [i for i, (a, s) in enumerate(zip(k, sizes)) if 1 < a < s]
        for i in free:
            assert abs(k[i] - total * sizes[i] / sum(sizes)) < 1 + len(sizes)
    assert allocate_dims(7, [2080, 330]) == [6, 1]
    assert allocate_dims(100, [300, 100]) == [75, 25]
    with pytest.raises(ValueError, match="cannot split"):
        allocate_dims(1, [3, 3])


def test_layerwise_gaussian_is_block_diagonal_and_matches_explicit_product():
    traj, test = _mlp_run()
    proj = make_projection(traj.flat, 10, "gaussian", layerwise=True, seed=2)
    R = proj.matrix()
    mask_in = torch.zeros_like(R)
    for (_, s_in), s_out in zip(traj.flat.layers, proj.blocks):
        mask_in[s_out, s_in] = 1
    assert float((R * (1 - mask_in)).abs().max()) == 0 and float(R[mask_in.bool()].abs().min()) > 0
    assert [s.stop - s.start for s in proj.blocks] == allocate_dims(10, [12, 15])
    dve = DataValueEmbedding(proj_dim=10, layerwise=True, seed=2).fit(traj)
    close(dve.embeddings_, _explicit_layerwise(traj, proj))


def _explicit_layerwise(traj, proj):
    """K = Π ((1 − ηλ) I − η mask ∘ (1/b) G̃ᵀG̃) with G̃ = G Rᵀ and mask the blocks' diagonal."""
    R = proj.matrix()
    d, b, lam = R.shape[0], traj.batch_size, traj.weight_decay
    mask = torch.zeros(d, d, dtype=torch.float64)
    for s in proj.blocks:
        mask[s, s] = 1
    Gt = [traj.objective.per_sample_grads(traj.params(t), *traj.batch(t)[1:]) @ R.T for t in range(traj.T)]
    eye = torch.eye(d, dtype=torch.float64)
    rows = []
    for t in range(traj.T):
        K = eye
        for k in range(t + 1, traj.T):
            K = ((1 - traj.lrs[k] * lam) * eye - traj.lrs[k] * mask * (Gt[k].T @ Gt[k]) / b) @ K
        rows.append(traj.lrs[t] / b * Gt[t] @ K.T)
    return torch.cat(rows)


# ---- kronecker ----------------------------------------------------------------------------------


def _explicit_kronecker(proj, P):
    """R [d, P] assembled from kron(P_out, P_in) of every Linear, placed on θ's coordinates."""
    blocks = []
    for f in proj.factors:
        out, inp = f["out"], f["inp"]
        fan = inp + (f["bias"] is not None)
        cols = torch.empty(out, fan, dtype=torch.int64)                 # θ index of [W | b][o, c]
        cols[:, :inp] = f["weight"].start + torch.arange(out * inp).view(out, inp)
        if f["bias"] is not None:
            cols[:, inp] = f["bias"].start + torch.arange(out)
        Rl = torch.zeros(f["P_out"].shape[0] * f["P_in"].shape[0], P, dtype=torch.float64)
        Rl[:, cols.reshape(-1)] = torch.kron(f["P_out"], f["P_in"])
        blocks.append(Rl)
    return torch.cat(blocks)


def test_kronecker_equals_explicit_kronecker_matrix():
    traj, test = _mlp_run()
    P = traj.flat.P
    proj = make_projection(traj.flat, 10, "kronecker", seed=5)
    R = _explicit_kronecker(proj, P)
    assert proj.dim == R.shape[0] == 10
    for f in proj.factors:
        assert f["P_out"].shape[0] <= f["out"] and f["P_in"].shape[0] <= f["inp"] + 1
    G = traj.objective.per_sample_grads(traj.params(2), *traj.batch(2)[1:])
    close(proj.project(G), G @ R.T, rtol=1e-12)
    kw = dict(proj_dim=10, projection="kronecker", seed=5)
    close(scores(traj, test, **kw), scores(traj, test, projection=R))
    close(DataValueEmbedding(layerwise=True, **kw).fit(traj).embeddings_, _explicit_layerwise(traj, proj))


def test_kronecker_projects_activation_and_output_gradient_factors():
    """Linear layer, MSE: ∇_[W|b] ℓ = δ [x; 1]ᵀ with δ = ∂ℓ/∂f, so the projection is
    (P_out δ) ⊗ (P_in [x; 1]) — the two factors projected separately (LoGra)."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    model = dt.models.linear(5, 3, seed=0)
    flat = FlatModel(model)
    obj = dt.functional.Objective(flat, "mse")
    theta = flat.flatten()
    proj = make_projection(flat, 8, "kronecker", seed=1)
    f = proj.factors[0]
    delta = 2 * (flat.forward(theta, X) - y) / 3                        # ∂ mean_c (f_c − y_c)² / ∂f
    a = torch.cat([X, torch.ones(7, 1, dtype=torch.float64)], 1)
    expected = ((delta @ f["P_out"].T).unsqueeze(2) * (a @ f["P_in"].T).unsqueeze(1)).reshape(7, -1)
    close(proj.project(obj.per_sample_grads(theta, X, y)), expected, rtol=1e-12)


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2, 3, dtype=torch.float64))

    def forward(self, x):
        return x @ self.w


class _LinearPlusScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3, dtype=torch.float64)
        self.gain = nn.Parameter(torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        return self.lin(x) * self.gain


def test_kronecker_errors():
    with pytest.raises(ValueError, match="has none"):
        make_projection(FlatModel(_Scale()), 3, "kronecker")
    with pytest.raises(ValueError, match="gain"):
        make_projection(FlatModel(_LinearPlusScale()), 3, "kronecker")
    with pytest.raises(ValueError, match="needs proj_dim"):
        make_projection(FlatModel(dt.models.linear(2, 3)), None, "kronecker")


# ---- other errors and conventions -------------------------------------------------------------


def test_projection_errors():
    flat = FlatModel(dt.models.mlp((2, 4, 3)))
    P = flat.P
    with pytest.raises(ValueError, match=f"larger than the parameter count P={P}"):
        make_projection(flat, P + 1, "gaussian")
    with pytest.raises(ValueError, match="larger than the parameter count"):
        make_projection(flat, P + 1, "kronecker")
    with pytest.raises(ValueError, match="positive int"):
        make_projection(flat, 0, "gaussian")
    with pytest.raises(ValueError, match="unknown projection"):
        make_projection(flat, 4, "sparse")
    with pytest.raises(ValueError, match="needs proj_dim"):
        make_projection(flat, None, "orthogonal")
    with pytest.raises(ValueError, match=r"Tensor \[d, P\]"):
        make_projection(flat, None, torch.zeros(3, P + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="disagrees"):
        make_projection(flat, 4, torch.zeros(3, P, dtype=torch.float64))
    with pytest.raises(ValueError, match="one dimension per layer"):
        make_projection(flat, 1, "gaussian", layerwise=True)


def test_seeded_and_unprojected():
    flat = FlatModel(dt.models.mlp((2, 4, 3)))
    a = make_projection(flat, 6, "gaussian", seed=1).matrix()
    assert torch.equal(a, make_projection(flat, 6, "gaussian", seed=1).matrix())
    assert not torch.equal(a, make_projection(flat, 6, "gaussian", seed=2).matrix())
    ident = make_projection(flat, None, "gaussian")
    assert ident.dim == flat.P and [s for _, s in flat.layers] == ident.blocks
    V = torch.randn(3, flat.P, dtype=torch.float64)
    assert torch.equal(ident.project(V), V)


class _SharedLinear(nn.Module):
    """The same Linear applied twice: the factor shortcut must fall back to full gradients."""

    def __init__(self):
        super().__init__()
        self.lin = dt.models.linear(3, 3, seed=2)

    def forward(self, x):
        return self.lin(torch.tanh(self.lin(x)))


class _TokenMean(nn.Module):
    """Linear layers applied to every position of [m, S, in] inputs, then averaged over S."""

    def __init__(self):
        super().__init__()
        self.a, self.b = dt.models.linear(4, 6, seed=3), dt.models.linear(6, 3, seed=4)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x))).mean(1)


@pytest.mark.parametrize("case", ["mlp", "shared", "tokens"])
def test_kronecker_factor_gradients_equal_projected_full_gradients(case):
    """The LoGra shortcut (activations x output gradients from one forward/backward pass, no
    [m, P] gradient) equals projecting vmap(grad) per-sample gradients."""
    gen = torch.Generator().manual_seed(0)
    if case == "mlp":
        traj, _ = _mlp_run()
        obj, theta, (_, X, y) = traj.objective, traj.params(3), traj.batch(3)
    else:
        model = _SharedLinear() if case == "shared" else _TokenMean()
        shape = (6, 3) if case == "shared" else (6, 5, 4)
        X = torch.randn(*shape, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 3, (6,), generator=gen)
        obj = dt.functional.Objective(FlatModel(model), "cross_entropy")
        theta = obj.flat.flatten()
    proj = make_projection(obj.flat, 12, "kronecker", seed=7)
    full = proj.project(obj.per_sample_grads(theta, X, y))
    close(proj.per_sample_grads(obj, theta, X, y), full, rtol=1e-12)


# ---- per-sample gradients from Linear-layer factors ------------------------------------------
def _factored_case(model, X, y, loss="cross_entropy"):
    from dve_teach.influence.projection import factored_grads
    from dve_teach.training.functional import FlatModel, Objective
    obj = Objective(FlatModel(model.double()), loss)
    theta = obj.flat.flatten()
    return factored_grads(obj, theta, X, y), obj.per_sample_grads(theta, X, y)


def test_factored_grads_equal_vmap_grads():
    """∇ℓ_i from one forward/backward pass (activation × output gradient) equals vmap(grad), for
    biases on and off and for a layer applied at several positions (S > 1)."""
    torch.manual_seed(0)
    X = torch.randn(7, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (7,))
    for model in (nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)),
                  nn.Sequential(nn.Linear(4, 5, bias=False), nn.Tanh(), nn.Linear(5, 3))):
        got, want = _factored_case(model, X, y)
        assert got is not None
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(6, 3))   # input [m, 2, 2]
    got, want = _factored_case(seq, X.reshape(7, 2, 2), y)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_factored_grads_decline_other_models():
    X = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (5,))
    got, _ = _factored_case(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 3)), X, y)
    assert got is None   # LayerNorm's parameters are not Linear: vmap(grad) is used instead

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.out = nn.Linear(4, 3)

        def forward(self, x):
            return self.out(torch.tanh(self.lin(torch.tanh(self.lin(x)))))
    got, _ = _factored_case(Twice(), X, y)
    assert got is None   # a layer used twice per forward pass
