"""Influence checkpointing (paper §4.4): segmented embeddings equal the sequential recursion.

Oracle: the sequential `DataValueEmbedding.fit` (itself checked against explicit P×P products in
test_embedding.py) and, for the propagation matrices, the explicit product of the per-step
updates Z_t = (1 − η_t λ) I − (η_t/b) Σ g gᵀ built from a plain autograd loop.
"""
from __future__ import annotations

import functools
import sys

import pytest
import torch
import torch.nn.functional as F

import dve_teach as dt
from dve_teach.influence.checkpointing import compose_segments, segment_bounds


def close(a, b, rtol=1e-10):
    scale = float(b.abs().max())
    err = float((a - b).abs().max())
    assert err <= rtol * scale, f"max error {err:.3e} vs scale {scale:.3e}"


@functools.lru_cache(maxsize=None)
def _run(weight_decay: float, schedule_lr: bool, checkpoint_every: int = 1):
    split = dt.datasets.blobs(n_train=18, n_test=5, seed=3)
    sched = dt.Schedule.shuffled(18, 5, epochs=2, seed=0)   # batches 5,5,5,3 per epoch: 8 steps
    lr = [0.5 * 0.8 ** t for t in range(len(sched))] if schedule_lr else 0.5
    traj = dt.train(dt.models.mlp((2, 4, 3), seed=1), split.train, sched, lr, weight_decay=weight_decay,
                    checkpoint_every=checkpoint_every)
    return traj, split.test


CASES = {
    "fisher": dict(),
    "ggn": dict(hessian="ggn"),
    "sampled_fisher": dict(hessian="sampled_fisher", fisher_samples=2),
    "layerwise": dict(layerwise=True),
    "renormalize": dict(renormalize=True),
    "gaussian12": dict(proj_dim=12, projection="gaussian"),
    "kronecker12_layerwise": dict(proj_dim=12, projection="kronecker", layerwise=True),
}


@pytest.mark.parametrize("segments", [1, 2, 3, [5], [1, 6], [2, 3, 7]], ids=str)
@pytest.mark.parametrize("weight_decay, schedule_lr", [(0.0, False), (0.05, True)], ids=["plain", "wd+schedule"])
def test_segmented_equals_sequential_fisher(segments, weight_decay, schedule_lr):
    traj, test = _run(weight_decay, schedule_lr)
    seq = dt.DataValueEmbedding().fit(traj)
    seg = dt.DataValueEmbedding(segments=segments).fit(traj)
    close(seg.embeddings_, seq.embeddings_)
    close(seg.influence(test).per_occurrence, seq.influence(test).per_occurrence)
    assert seg.segment_bounds_ == segment_bounds(traj.T, segments)
    assert (seg.propagations_ is None) == (len(seg.segment_bounds_) == 2)


@pytest.mark.parametrize("case", list(CASES))
def test_segmented_equals_sequential_every_mode(case):
    traj, _ = _run(0.05, True)
    kw = CASES[case]
    seq = dt.DataValueEmbedding(**kw).fit(traj).embeddings_
    for segments in (2, 3, [1, 6]):
        close(dt.DataValueEmbedding(segments=segments, **kw).fit(traj).embeddings_, seq)


def test_sparse_checkpoints_are_replayed_inside_segments():
    traj, _ = _run(0.05, True, checkpoint_every=3)
    seq = dt.DataValueEmbedding().fit(traj).embeddings_
    close(dt.DataValueEmbedding(segments=[4, 5]).fit(traj).embeddings_, seq)


def test_propagation_matrices_are_explicit_products():
    """Π_k = Z_{s_{k+1}−1} ··· Z_{s_k} with Z_t from autograd per-sample gradients."""
    traj, _ = _run(0.05, True)
    P, lam, b = traj.flat.P, traj.weight_decay, traj.batch_size
    eye = torch.eye(P, dtype=torch.float64)
    Z = []
    for t in range(traj.T):
        model = traj.model_at(t)
        _, X, y = traj.batch(t)
        params = list(model.parameters())
        G = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            F.cross_entropy(model(X[i:i + 1]), y[i:i + 1]), params)]) for i in range(len(X))])
        lr = float(traj.lrs[t])
        Z.append((1 - lr * lam) * eye - lr / b * G.T @ G)
    dve = dt.DataValueEmbedding(segments=[3, 5]).fit(traj)
    cuts = dve.segment_bounds_
    assert cuts == [0, 3, 5, 8] and len(dve.propagations_) == 3
    for k, (a, c) in enumerate(zip(cuts[:-1], cuts[1:])):
        want = eye.clone()
        for t in range(a, c):
            want = Z[t] @ want
        close(dve.propagations_[k][0], want)


def test_both_composition_orders_agree():
    gen = torch.Generator().manual_seed(0)
    d = 6
    local = [torch.randn(n, d, generator=gen, dtype=torch.float64) for n in (4, 3, 5, 2)]
    props = [[torch.randn(d, d, generator=gen, dtype=torch.float64)] for _ in local]
    want = torch.cat([local[0] @ (props[3][0] @ props[2][0] @ props[1][0]).T,
                      local[1] @ (props[3][0] @ props[2][0]).T, local[2] @ props[3][0].T, local[3]])
    for how in ("products", "chain", "auto"):
        close(compose_segments([x.clone() for x in local], props, [slice(0, d)], how=how), want)


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_workers_give_the_identical_result(start_method):
    traj, _ = _run(0.05, True)
    one = dt.DataValueEmbedding(segments=3, layerwise=True).fit(traj)
    two = dt.DataValueEmbedding(segments=3, layerwise=True, workers=2, start_method=start_method).fit(traj)
    assert torch.equal(one.embeddings_, two.embeddings_)
    for a, b in zip(one.propagations_, two.propagations_):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_bad_settings_are_refused():
    traj, _ = _run(0.0, False)
    for bad, match in [(0, "between 1 and"), (9, "between 1 and"), ([0, 4], "increase strictly"),
                       ([5, 3], "increase strictly"), ([8], "increase strictly")]:
        with pytest.raises(ValueError, match=match):
            dt.DataValueEmbedding(segments=bad).fit(traj)
    for bad in (2.0, True):
        with pytest.raises(TypeError, match="segments must be an int"):
            dt.DataValueEmbedding(segments=bad).fit(traj)
    with pytest.raises(ValueError, match="workers must be a positive int"):
        dt.DataValueEmbedding(segments=2, workers=0).fit(traj)
    with pytest.raises(ValueError, match="start_method"):
        dt.DataValueEmbedding(segments=2, workers=2, start_method="threads").fit(traj)
    split = dt.datasets.linear_regression(n_train=10, n_test=2, dim=2, seed=0)
    lam = dt.train(dt.models.linear(2, 1, seed=0), split.train, dt.Schedule.shuffled(10, 5, epochs=1, seed=0),
                   0.1, loss=lambda o, t: ((o - t.reshape(o.shape)) ** 2).sum(1))   # a lambda does not pickle
    with pytest.raises(TypeError, match="module level"):
        dt.DataValueEmbedding(segments=2, workers=2).fit(lam)
    assert dt.DataValueEmbedding(segments=2).fit(lam).embeddings_.shape == (10, 3)   # in-process is fine


def test_notebook_definitions_are_refused_for_spawned_workers(monkeypatch):
    """In a notebook (a __main__ without a file) a model class defined there cannot reach a spawned
    worker: a clear error, before any process starts. fork and workers=1 are fine."""
    import types

    from torch import nn
    Local = type("NotebookNet", (nn.Module,), {"__module__": "__main__",
                                               "__init__": lambda self: (nn.Module.__init__(self),
                                                                         setattr(self, "lin", nn.Linear(2, 3)))[0],
                                               "forward": lambda self, x: self.lin(x)})
    split = dt.datasets.blobs(n_train=10, n_test=2, seed=0)
    traj = dt.train(Local(), split.train, dt.Schedule.shuffled(10, 5, epochs=1, seed=0), 0.1)
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with pytest.raises(ValueError, match="NotebookNet .* defined in this notebook"):
        dt.DataValueEmbedding(segments=2, workers=2).fit(traj)
    assert dt.DataValueEmbedding(segments=2).fit(traj).embeddings_.shape == (10, 9)
