"""The exercise checks of lesson 09: a right answer (computed here from the closed forms, not by the
rule the check uses) says ok, typical mistakes say not ok with a hint (never the answer), and the
scaffold's None says "not yet" — none of them raises."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson09 as ex


def _not_ok(feedback) -> None:
    assert not feedback.ok and "Hint:" in feedback.message


@pytest.fixture(scope="module")
def split():
    return dt.datasets.moons(30, 5, seed=4)


def _run(split, rule, lr):
    return dt.train(dt.models.mlp((2, 8, 2), seed=4), split.train, dt.Schedule.shuffled(30, 10, 2, seed=4), lr,
                    optimizer=rule)


def test_first_step(split):
    traj = _run(split, dt.optim.Adam(), 0.05)
    _, X, y = traj.batch(0)
    G = traj.objective.per_sample_grads(traj.params(0), X, y)
    g = G.sum(0) / 10
    step = lambda g: -0.05 * g / (g.abs() + 1e-8)  # noqa: E731   (m̂ = g, v̂ = g² at t = 0)
    batch = list(traj.schedule.batches[0])
    for k in (0, 3):
        right = step(g - G[k] / 10) - step(g)
        assert ex.check_first_step(right, traj, batch[k]).ok
        assert ex.check_first_step(right.tolist(), traj, batch[k]).ok
    right = step(g - G[0] / 10) - step(g)
    if (right.abs() > 0.05).any():                                 # at least one coordinate flips
        _not_ok(ex.check_first_step(-right, traj, batch[0]))
        assert "sign" in ex.check_first_step(-right, traj, batch[0]).message
        assert "bias correction" in ex.check_first_step(right * 0.1 / 0.001 ** 0.5, traj, batch[0]).message
        assert "2η" in ex.check_first_step(right / 2, traj, batch[0]).message
        _not_ok(ex.check_first_step(0.05 / 10 * G[0], traj, batch[0]))
    _not_ok(ex.check_first_step(right[:-1], traj, batch[0]))
    _not_ok(ex.check_first_step(1.0, traj, batch[0]))
    assert not ex.check_first_step("a", traj, batch[0]).ok
    none = ex.check_first_step(None, traj, batch[0])
    assert not none.ok and "replace the None" in none.message
    outside = next(i for i in range(30) if i not in batch)
    assert not ex.check_first_step(right, traj, outside).ok       # refused, as feedback: not in the batch


def test_momentum_carry(split):
    mu = 0.8
    traj = _run(split, dt.optim.SGD(momentum=mu), 0.05)
    T = traj.T
    right = ((1 - mu ** T) / (1 - mu), 1 + mu)                     # Σ_{j=0}^{T-1-t} μ^j for t = 0 and T − 2
    assert ex.check_momentum_carry(right, traj).ok
    assert ex.check_momentum_carry(torch.tensor(right), traj).ok
    assert "endless" in ex.check_momentum_carry((1 / (1 - mu), 1 + mu), traj).message
    assert "second number is right" in ex.check_momentum_carry((T, 1 + mu), traj).message
    assert "first number is right" in ex.check_momentum_carry((right[0], mu), traj).message
    _not_ok(ex.check_momentum_carry((1.0, 1.0), traj))
    _not_ok(ex.check_momentum_carry(3.0, traj))
    _not_ok(ex.check_momentum_carry((1.0, 2.0, 3.0), traj))
    assert not ex.check_momentum_carry(None, traj).ok
    adam = ex.check_momentum_carry(right, _run(split, dt.optim.Adam(), 0.05))
    assert not adam.ok and "needs a run of SGD with momentum" in adam.message
