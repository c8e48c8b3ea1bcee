"""hessian="sampled_fisher": the Fisher at targets drawn from the model, an unbiased GGN estimate.

Oracles: the explicit P×P product with H_t = (1/b)(1/S) Σ g̃ g̃ᵀ, g̃ from a plain autograd loop at
the drawn targets; the identity E_ŷ[∇ℓ(ŷ)∇ℓ(ŷ)ᵀ] = Jᵀ H_out J, checked by enumerating the classes
against `ggn_factors`; and the sampler's distribution against its law (binomial / normal bounds).
"""
from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

import dve_teach as dt
from dve_teach.influence.recursion import ggn_factors, sampled_targets


def close(a, b, rtol=1e-10):
    scale = float(b.abs().max())
    err = float((a - b).abs().max())
    assert err <= rtol * scale, f"max error {err:.3e} vs scale {scale:.3e}"


@functools.lru_cache(maxsize=None)
def _tiny():
    split = dt.datasets.blobs(n_train=18, n_test=5, seed=3)
    sched = dt.Schedule.shuffled(18, 5, epochs=2, seed=0)
    traj = dt.train(dt.models.mlp((2, 4, 3), seed=1), split.train, sched, [0.5 * 0.9 ** t for t in range(8)],
                    weight_decay=0.05)
    return traj, split.test


def loop_grads(model, X, y):
    params = list(model.parameters())
    return torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        F.cross_entropy(model(X[i:i + 1]), y[i:i + 1]), params)]) for i in range(len(X))])


@pytest.mark.parametrize("samples", [1, 3])
def test_equals_explicit_product_at_the_drawn_targets(samples):
    traj, _ = _tiny()
    P, lam, b = traj.flat.P, traj.weight_decay, traj.batch_size
    eye = torch.eye(P, dtype=torch.float64)
    Z, deltas = [], []
    for t in range(traj.T):
        model = traj.model_at(t)
        _, X, y = traj.batch(t)
        lr = float(traj.lrs[t])
        Xs, ys = sampled_targets(traj.objective, traj.params(t), X, samples, seed=7, step=t)
        assert ys.shape == (samples * len(X),) and torch.equal(Xs[:len(X)], X)
        Gs = loop_grads(model, Xs, ys)
        Z.append((1 - lr * lam) * eye - lr / b * Gs.T @ Gs / samples)
        deltas.append(lr / b * loop_grads(model, X, y))
    rows = []
    for t in range(traj.T):
        K = eye.clone()
        for k in range(t + 1, traj.T):
            K = Z[k] @ K
        rows.append(deltas[t] @ K.T)
    dve = dt.DataValueEmbedding(hessian="sampled_fisher", fisher_samples=samples, seed=7).fit(traj)
    close(dve.embeddings_, torch.cat(rows))
    # the seed matters, and segments see the same targets as the sequential run
    other = dt.DataValueEmbedding(hessian="sampled_fisher", fisher_samples=samples, seed=8).fit(traj)
    assert float((other.embeddings_ - dve.embeddings_).abs().max()) > 1e-8
    seg = dt.DataValueEmbedding(hessian="sampled_fisher", fisher_samples=samples, seed=7, segments=[2, 5]).fit(traj)
    close(seg.embeddings_, dve.embeddings_)


def test_expectation_over_classes_is_the_ggn():
    """Σ_c p_c ∇ℓ(c)∇ℓ(c)ᵀ = Jᵀ(diag p − p pᵀ)J for softmax cross-entropy, per point."""
    traj, _ = _tiny()
    theta = traj.params(3)
    _, X, _ = traj.batch(3)
    obj = traj.objective
    p = torch.softmax(traj.flat.forward(theta, X), dim=1)
    expect = torch.zeros(traj.flat.P, traj.flat.P, dtype=torch.float64)
    for c in range(p.shape[1]):
        G = obj.per_sample_grads(theta, X, torch.full((len(X),), c, dtype=torch.int64))
        expect += (G * p[:, c:c + 1]).T @ G
    K, s = ggn_factors(obj, theta, X, torch.zeros(len(X), dtype=torch.int64))
    close(expect, (K * s.unsqueeze(1)).T @ K)


def test_sampler_follows_its_law():
    traj, _ = _tiny()
    theta = traj.params(4)
    _, X, _ = traj.batch(4)
    S = 4000
    _, ys = sampled_targets(traj.objective, theta, X, S, seed=0, step=4)
    p = torch.softmax(traj.flat.forward(theta, X), dim=1)
    freq = torch.stack([torch.bincount(ys.reshape(S, -1)[:, i], minlength=3) for i in range(len(X))]) / S
    bound = 5 * torch.sqrt(p * (1 - p) / S) + 1e-3          # 5 binomial standard deviations
    assert bool(((freq - p).abs() <= bound).all())
    # least squares (mse over K outputs): ŷ = f + √(K/2) ε
    split = dt.datasets.linear_regression(n_train=20, n_test=2, dim=3, seed=0)
    lsq = dt.train(dt.models.linear(3, 2, seed=0), (split.train.X, split.train.X[:, :2]),
                   dt.Schedule.shuffled(20, 5, epochs=1, seed=0), 0.05, loss="mse")
    th = lsq.final
    _, Xl, _ = lsq.batch(0)
    Xs, ys = sampled_targets(lsq.objective, th, Xl, S, seed=1, step=0)
    noise = (ys - lsq.flat.forward(th, Xs)).reshape(-1)
    n = noise.numel()   # K = 2 outputs: variance K/2 = 1; 5 standard errors of the mean and variance
    assert abs(float(noise.var()) - 1.0) <= 5 * math.sqrt(2 / n) and abs(float(noise.mean())) <= 5 / math.sqrt(n)


def test_bad_settings_are_refused():
    traj, _ = _tiny()
    with pytest.raises(ValueError, match="fisher_samples must be a positive int"):
        dt.DataValueEmbedding(hessian="sampled_fisher", fisher_samples=0).fit(traj)
    with pytest.raises(ValueError, match="'sampled_fisher'"):
        dt.DataValueEmbedding(hessian="hutchinson").fit(traj)
    split = dt.datasets.linear_regression(n_train=10, n_test=2, dim=2, seed=0)
    custom = dt.train(dt.models.linear(2, 1, seed=0), split.train, dt.Schedule.shuffled(10, 5, epochs=1, seed=0),
                      0.1, loss=lambda o, t: ((o - t.reshape(o.shape)) ** 2).sum(1))
    with pytest.raises(ValueError, match="custom loss use hessian='fisher'"):
        dt.DataValueEmbedding(hessian="sampled_fisher").fit(custom)
