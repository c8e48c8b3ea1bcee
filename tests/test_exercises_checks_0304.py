"""The exercise checks of lessons 03 and 04: a right answer (computed here from the formula, not by
the library function the check uses) says ok, a wrong one (a typical mistake, and noise) says not
ok with a hint, and the scaffold's None says "not yet" — none of them raises."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach.exercises import HISTORY
from dve_teach.teach.exercises import lesson03 as ex3
from dve_teach.teach.exercises import lesson04 as ex4


def _not_ok(feedback) -> None:
    assert not feedback.ok and "Hint:" in feedback.message


@pytest.fixture(scope="module")
def moons_run():
    split = dt.datasets.moons(n_train=24, n_test=6, seed=3)
    traj = dt.train(dt.models.mlp((2, 5, 2), seed=3), split.train, dt.Schedule.shuffled(24, 6, epochs=2, seed=3), lr=0.5)
    return traj, split


@pytest.fixture(scope="module")
def digits_run():
    s = dt.datasets.digits(n_train=40, n_test=5, seed=3)
    traj = dt.train(dt.models.mlp((64, 4, 10), seed=3), s.train, dt.Schedule.shuffled(40, 8, epochs=2, seed=3), lr=0.3)
    return traj, s


def test_removal_direction(moons_run):
    traj, split = moons_run
    t = 3
    i = traj.schedule.batches[t][1]
    g = torch.func.grad(lambda th: traj.objective.losses(th, split.train.X[[i]], split.train.y[[i]])[0])(traj.params(t))
    delta = float(traj.lrs[t]) / traj.batch_size * g
    assert ex3.check_removal_direction(delta, traj, i, t).ok
    _not_ok(ex3.check_removal_direction(delta * traj.batch_size, traj, i, t))
    assert "1/b" in ex3.check_removal_direction(delta * traj.batch_size, traj, i, t).message
    _not_ok(ex3.check_removal_direction(-delta, traj, i, t))
    _not_ok(ex3.check_removal_direction(torch.zeros(3), traj, i, t))      # wrong shape: feedback, no raise
    _not_ok(ex3.check_removal_direction(None, traj, i, t))


def test_hvp(moons_run):
    traj, _ = moons_run
    t = 2
    v = torch.randn(traj.flat.P, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, X, y = traj.batch(t)
    H = torch.func.hessian(lambda th: traj.objective.losses(th, X, y).sum() / traj.batch_size)(traj.params(t))
    assert ex3.check_hvp(H @ v, traj, t, v).ok
    _not_ok(ex3.check_hvp(2 * H @ v, traj, t, v))
    _not_ok(ex3.check_hvp(H @ v + 1e-3 * v.norm() * torch.ones_like(v), traj, t, v))
    _not_ok(ex3.check_hvp(None, traj, t, v))


def test_largest_error(moons_run):
    traj, split = moons_run
    pts, sts = traj.schedule.occurrence_pairs()
    exact = torch.stack([dt.exact_loo(traj, split.test, [p], [s])[0] for p, s in zip(pts, sts)]).mean(1)  # one by one
    est = dt.sgd_influence(traj, split.test).per_occurrence.mean(1)
    order = torch.argsort((est - exact).abs(), descending=True).tolist()
    assert ex3.check_largest_error((pts[order[0]], sts[order[0]]), traj, split.test).ok
    _not_ok(ex3.check_largest_error((pts[order[1]], sts[order[1]]), traj, split.test))
    absent = next(s for s in range(traj.T) if pts[0] not in traj.schedule.batches[s])
    _not_ok(ex3.check_largest_error((pts[0], absent), traj, split.test))
    _not_ok(ex3.check_largest_error(None, traj, split.test))
    # wrong-but-close answers are not right: a fractional index is no index
    _not_ok(ex3.check_largest_error((pts[order[0]] + 0.9, sts[order[0]]), traj, split.test))
    _not_ok(ex3.check_largest_error((pts[order[0]], sts[order[0]] + 0.5), traj, split.test))
    _not_ok(ex3.check_largest_error((pts[order[0]], sts[order[0]], 0), traj, split.test))


def test_second_to_last_step(digits_run):
    traj, _ = digits_run
    dve = dt.DataValueEmbedding().fit(traj)
    T, b = traj.T, traj.batch_size
    # oracle: the first-order definition DVE = (η/b) K_t g with K_t = I − (η/b) Σ_j g_j g_jᵀ (Fisher)
    _, X1, y1 = traj.batch(T - 1)
    G1 = traj.objective.per_sample_grads(traj.params(T - 1), X1, y1)
    K = torch.eye(traj.flat.P, dtype=torch.float64) - float(traj.lrs[T - 1]) / b * G1.T @ G1
    _, X2, y2 = traj.batch(T - 2)
    G2 = traj.objective.per_sample_grads(traj.params(T - 2), X2, y2)
    answer = float(traj.lrs[T - 2]) / b * G2 @ K.T
    assert ex4.check_second_to_last_step(answer, dve, traj).ok
    missing = ex4.check_second_to_last_step(float(traj.lrs[T - 2]) / b * G2, dve, traj)
    _not_ok(missing)
    assert "missing" in missing.message
    _not_ok(ex4.check_second_to_last_step(answer[:2], dve, traj))
    _not_ok(ex4.check_second_to_last_step(None, dve, traj))


def test_query(digits_run):
    traj, s = digits_run
    dve = dt.DataValueEmbedding().fit(traj)
    p = traj.schedule.batches[0][0]
    g = torch.func.grad(lambda th: traj.objective.losses(th, s.test.X[:1], s.test.y[:1])[0])(traj.final)
    rows = [r for r, q in enumerate(dve.points_.tolist()) if q == p]
    value = sum(float(dve.embeddings_[r] @ g) for r in rows)
    assert len(rows) == 2 and ex4.check_query(value, dve, s.test, p).ok
    _not_ok(ex4.check_query(-value, dve, s.test, p))
    assert "one occurrence" in ex4.check_query(float(dve.embeddings_[rows[0]] @ g), dve, s.test, p).message
    _not_ok(ex4.check_query(None, dve, s.test, p))


def test_confirmed(digits_run):
    traj, s = digits_run
    model = dt.widgets.DigitModel(traj, s.test)
    ex, ggn = model.methods["exact LOO"][:, 2], model.methods["DVE (GGN)"][:, 2]
    top = lambda x: set(sorted(range(len(x)), key=lambda i: -float(x[i]))[:5])   # noqa: E731
    count = len(top(ex) & top(ggn))
    assert ex4.check_confirmed(count, model, test_index=2).ok
    _not_ok(ex4.check_confirmed((count + 1) % 6, model, test_index=2))
    _not_ok(ex4.check_confirmed(7, model, test_index=2))
    _not_ok(ex4.check_confirmed(None, model, test_index=2))


def test_checks_record_their_verdicts(moons_run):
    traj, split = moons_run
    HISTORY.clear()
    ex3.check_removal_direction(None, traj, traj.schedule.batches[0][0], 0)
    assert HISTORY == [("check_removal_direction", False)]
