"""Data-fitted projections ("pca", "kronecker_pca") against closed forms.

- Orthonormal rows: R Rᵀ = I_d.
- Span: on least squares whose inputs lie in a k-dim subspace, every gradient of the run (training
  and test) lies in a known 2(k+1)-dim space; with proj_dim = that rank the projected embeddings are
  R·(unprojected ones) and the scores equal the unprojected scores.
- Eckart–Young: on the sampled gradients, PCA's residual ‖G − G RᵀR‖ is at most that of any other
  rank-d orthogonal projection, and zero when d = the number of samples.
"""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.influence.pca import kronecker_pca_projection, pca_projection
from dve_teach.influence.projection import make_projection


def close(a, b, rtol=1e-10):
    scale = float(b.abs().max())
    err = float((a - b).abs().max())
    assert err <= rtol * scale, f"max error {err:.3e} vs scale {scale:.3e}"


def _subspace_lsq(k=2, D=3, n=24, n_test=6, weight_decay=0.02):
    gen = torch.Generator().manual_seed(0)
    B = torch.randn(k, D, generator=gen, dtype=torch.float64)
    Z = torch.randn(n + n_test, k, generator=gen, dtype=torch.float64)
    X = Z @ B
    Y = X @ torch.randn(D, 2, generator=gen, dtype=torch.float64) + 0.1 * torch.randn(n + n_test, 2, generator=gen,
                                                                                       dtype=torch.float64)
    train, test = dt.Data(X[:n], Y[:n]), dt.Data(X[n:], Y[n:])
    traj = dt.train(dt.models.linear(D, 2, seed=0), train, dt.Schedule.shuffled(n, 5, epochs=2, seed=0), 0.05,
                    loss="mse", weight_decay=weight_decay)
    return traj, test, 2 * (k + 1)


@pytest.fixture(scope="module")
def blobs():
    split = dt.datasets.blobs(n_train=30, n_test=7, seed=1)
    traj = dt.train(dt.models.mlp((2, 8, 3), seed=0), split.train, dt.Schedule.shuffled(30, 8, epochs=2, seed=0), 0.3)
    return traj, split.test


@pytest.mark.parametrize("kind, layerwise", [("pca", False), ("pca", True), ("kronecker_pca", False)])
def test_rows_are_orthonormal(blobs, kind, layerwise):
    traj, _ = blobs
    dve = dt.DataValueEmbedding(proj_dim=12, projection=kind, layerwise=layerwise, pca_samples=20).fit(traj)
    R = dve.projection_.matrix()
    assert R.shape[1] == traj.flat.P and R.shape[0] == dve.embedding_dim_ <= 12
    close(R @ R.T, torch.eye(R.shape[0], dtype=torch.float64), rtol=1e-12)
    if layerwise or kind == "kronecker_pca":
        assert dve.projection_.blocks is not None


@pytest.mark.parametrize("kind", ["pca", "kronecker_pca"])
@pytest.mark.parametrize("hessian", ["fisher", "ggn"])
def test_rank_dimensions_reproduce_unprojected_scores(kind, hessian):
    traj, test, rank = _subspace_lsq()
    full = dt.DataValueEmbedding(hessian=hessian).fit(traj)
    proj = dt.DataValueEmbedding(hessian=hessian, proj_dim=rank, projection=kind, pca_samples=12).fit(traj)
    assert proj.embedding_dim_ == rank < traj.flat.P
    R = proj.projection_.matrix()
    close(proj.embeddings_, full.embeddings_ @ R.T)
    close(proj.influence(test).per_occurrence, full.influence(test).per_occurrence)
    # one dimension fewer loses part of the span, and the scores move
    short = dt.DataValueEmbedding(hessian=hessian, proj_dim=rank - 1, projection="pca", pca_samples=12).fit(traj)
    diff = (short.influence(test).per_occurrence - full.influence(test).per_occurrence).abs().max()
    assert float(diff) > 1e-6 * float(full.influence(test).per_occurrence.abs().max())


def test_eckart_young_on_the_sampled_gradients(blobs):
    traj, _ = blobs
    samples, d = 16, 6
    proj = pca_projection(traj, d, samples=samples, step=3, seed=2)
    idx = torch.randperm(len(traj.data), generator=torch.Generator().manual_seed(2))[:samples].sort().values
    G = traj.objective.per_sample_grads(traj.params(3), traj.data.X[idx], traj.data.y[idx])
    R = proj.matrix()
    resid = float((G - G @ R.T @ R).norm())
    for seed in range(3):
        Q = make_projection(traj.flat, d, "orthogonal", seed=seed).matrix()
        assert resid <= float((G - G @ Q.T @ Q).norm()) + 1e-12
    Rall = pca_projection(traj, samples, samples=samples, step=3, seed=2).matrix()
    assert float((G - G @ Rall.T @ Rall).norm()) <= 1e-10 * float(G.norm())


def test_seeded_determinism_and_arguments(blobs):
    traj, _ = blobs
    a = pca_projection(traj, 8, samples=12, step=0, seed=5).matrix()
    assert torch.equal(a, pca_projection(traj, 8, samples=12, step=0, seed=5).matrix())
    for other in (pca_projection(traj, 8, samples=12, step=0, seed=6),
                  pca_projection(traj, 8, samples=12, step=4, seed=5),
                  pca_projection(traj, 8, samples=20, step=0, seed=5)):
        assert float((other.matrix() - a).abs().max()) > 1e-6
    k1 = kronecker_pca_projection(traj, 12, samples=12, seed=5).matrix()
    assert torch.equal(k1, kronecker_pca_projection(traj, 12, samples=12, seed=5).matrix())


def test_kronecker_pca_factored_gradients_equal_projected_full_gradients(blobs):
    traj, _ = blobs
    proj = kronecker_pca_projection(traj, 12, samples=15, step=2, seed=0)
    _, X, y = traj.batch(5)
    theta = traj.params(5)
    close(proj.per_sample_grads(traj.objective, theta, X, y),
          proj.project(traj.objective.per_sample_grads(theta, X, y)))


def test_bad_settings_are_refused(blobs):
    traj, _ = blobs
    cases = [(dict(proj_dim=None, projection="pca"), "needs proj_dim"),
             (dict(proj_dim=4, projection="pca", pca_step=99), "pca_step=99"),
             (dict(proj_dim=4, projection="pca", pca_samples=0), "pca_samples must be"),
             (dict(proj_dim=1, projection="kronecker_pca"), "at least one dimension per layer"),
             (dict(proj_dim=10 ** 6, projection="pca"), "larger than the parameter count")]
    for kw, match in cases:
        with pytest.raises(ValueError, match=match):
            dt.DataValueEmbedding(**kw).fit(traj)


def test_more_directions_than_samples_draw_more_samples(blobs):
    """proj_dim above pca_samples draws proj_dim points instead of refusing (while the set has them)."""
    traj, _ = blobs
    big = dt.DataValueEmbedding(proj_dim=20, projection="pca", pca_samples=10).fit(traj)
    assert big.embedding_dim_ == 20
    same = dt.DataValueEmbedding(proj_dim=20, projection="pca", pca_samples=20).fit(traj)
    assert torch.equal(big.embeddings_, same.embeddings_)
    with pytest.raises(ValueError, match="lower proj_dim"):
        dt.DataValueEmbedding(proj_dim=len(traj.data) + 1, projection="pca").fit(traj)
