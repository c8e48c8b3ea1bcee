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


def test_matrix_numbers(run):
    per_layer = dt.DataValueEmbedding(proj_dim=24, layerwise=True, seed=1).fit(run)
    sizes = [b.stop - b.start for b in per_layer.projection_.blocks]
    assert len(sizes) == 2 and sum(sizes) == 24
    truth = sum(k * k for k in sizes)
    assert ex.check_matrix_numbers(truth, per_layer).ok
    assert ex.check_matrix_numbers(torch.tensor(truth), per_layer).ok
    for mistake, word in [(24 * 24, "full"), (run.flat.P ** 2, "unprojected"), (24, "dimensions")]:
        fb = ex.check_matrix_numbers(mistake, per_layer)
        _not_ok(fb)
        assert word in fb.message and str(truth) not in fb.message
    _not_ok(ex.check_matrix_numbers(truth + 1, per_layer))
    _not_ok(ex.check_matrix_numbers(2.5, per_layer))
    _not_ok(ex.check_matrix_numbers("many", per_layer))     # cannot be compared: feedback, no raise
    _not_ok(ex.check_matrix_numbers(None, per_layer))
    one_m = dt.DataValueEmbedding(proj_dim=24, seed=1).fit(run)
    assert ex.check_matrix_numbers(24 * 24, one_m).ok
    assert not ex.check_matrix_numbers(truth, one_m).ok


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
