"""The exercise checks of lesson 08: a right answer (computed here from explicit matrices, not by
the library path the check uses) says ok, typical mistakes and noise say not ok with a hint (never
the answer), and the scaffold's None says "not yet" — none of them raises."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson08 as ex


def _not_ok(feedback) -> None:
    assert not feedback.ok and "Hint:" in feedback.message


@pytest.fixture(scope="module")
def run():
    s = dt.datasets.digits(n_train=40, n_test=5, seed=3)
    return dt.train(dt.models.mlp((64, 4, 10), seed=3), s.train, dt.Schedule.shuffled(40, 8, epochs=2, seed=3), lr=0.3)


def _brute_force_embeddings(traj) -> torch.Tensor:
    """DVE(i, t) = (η_t/b) Π_{k>t} (I − η_k (1/b) Σ_{j∈B_k} g_j g_jᵀ) g_i with explicit P×P matrices,
    rows in (step, position in batch) order."""
    P, b = traj.flat.P, traj.batch_size
    grads, Z = [], []
    for t in range(traj.T):
        _, X, y = traj.batch(t)
        G = traj.objective.per_sample_grads(traj.params(t), X, y).detach()
        grads.append(G)
        Z.append(torch.eye(P, dtype=G.dtype) - float(traj.lrs[t]) / b * G.T @ G)
    rows, K = [None] * traj.T, torch.eye(P, dtype=torch.float64)
    for t in range(traj.T - 1, -1, -1):
        rows[t] = float(traj.lrs[t]) / b * grads[t] @ K.T
        K = K @ Z[t]
    return torch.cat(rows)


def test_layer_split(run):
    # the truth read from the fitted projection (the library path), not from the check's rule
    for d, samples in ((24, 30), (24, 4), (40, 40)):
        fit = dt.DataValueEmbedding(proj_dim=d, projection="pca", layerwise=True, pca_samples=samples).fit(run)
        truth = tuple(b.stop - b.start for b in fit.projection_.blocks)
        assert len(truth) == 2 and sum(truth) == d
        assert ex.check_layer_split(truth, run, d, samples).ok
        assert ex.check_layer_split(list(truth), run, d, samples).ok
        assert ex.check_layer_split(tuple(torch.tensor(truth)), run, d, samples).ok
        _not_ok(ex.check_layer_split((truth[0] + 1, truth[1] - 1), run, d, samples))
        _not_ok(ex.check_layer_split((truth[0] + 1, truth[1]), run, d, samples))
    # 120 points, 100 sampled: the caps (100, 50) differ from the layer sizes (260, 50): uncapped is a named mistake
    s = dt.datasets.digits(n_train=120, n_test=5, seed=4)
    big = dt.train(dt.models.mlp((64, 4, 10), seed=4), s.train, dt.Schedule.shuffled(120, 40, epochs=1, seed=4), lr=0.3)
    sizes = [sl.stop - sl.start for _, sl in big.flat.layers]
    assert sizes == [260, 50]
    fit = dt.DataValueEmbedding(proj_dim=24, projection="pca", layerwise=True, pca_samples=100).fit(big)
    truth = tuple(b.stop - b.start for b in fit.projection_.blocks)
    assert truth == (16, 8) and ex.check_layer_split(truth, big, 24, 100).ok          # 24·100/150, 24·50/150
    for mistake, word in [((20, 4), "parameter counts"), ((12, 12), "equal"), ((24, 24), "sum"),
                          ((24,), "layers")]:
        fb = ex.check_layer_split(mistake, big, 24, 100)
        _not_ok(fb)
        assert word in fb.message and str(truth) not in fb.message
    _not_ok(ex.check_layer_split(2.5, run, 24, 4))
    _not_ok(ex.check_layer_split("many", run, 24, 4))      # cannot be compared: feedback, no raise
    _not_ok(ex.check_layer_split((2.5, 21.5), run, 24, 4))
    _not_ok(ex.check_layer_split(None, run, 24, 4))


def test_composed(run):
    seg = dt.DataValueEmbedding(segments=3).fit(run)
    s1 = seg.segment_bounds_[1]
    rows = sum(len(b) for b in run.schedule.batches[:s1])
    truth = _brute_force_embeddings(run)[:rows]
    assert ex.check_composed(truth, seg, run).ok
    local = dt.DataValueEmbedding().fit(run.prefix(s1)).embeddings_
    P1, P2 = seg.propagations_[1][0], seg.propagations_[2][0]
    assert ex.check_composed(local @ (P2 @ P1).T, seg, run).ok
    fb = ex.check_composed(local, seg, run)
    _not_ok(fb)
    assert "local" in fb.message
    if not torch.allclose(P1 @ P2, P2 @ P1):
        _not_ok(ex.check_composed(local @ (P1 @ P2).T, seg, run))     # earlier segment on the left
    _not_ok(ex.check_composed(local @ P2.T, seg, run))                  # one segment forgotten
    _not_ok(ex.check_composed(truth[:-1], seg, run))                    # wrong shape
    _not_ok(ex.check_composed(None, seg, run))
