"""Predicting an edited training order without retraining (`dt.predict_order`, `dt.OrderPredictor`).
Oracles: a finite difference of an inserted point's weight, exact replays of the edited order
(equal where the run is linear in its state and the measure linear in θ), and identities."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import dve_teach as dt


def _prediction(model, params, data):
    return torch.func.functional_call(model, params, (data.X,))[:, 0]


def weighted_insertion(traj, test, point, t, w, measure=None):
    """m(θ_T) of the recorded run with `point` added to step t's batch with weight w (exact replay)."""
    eng, rule = traj.engine, traj.optimizer
    s = traj.state(t)
    idx, X, y = traj.batch(t)
    Xi, yi = traj.data.X[[point]], traj.data.y[[point]]
    W, D = eng.unit(s, len(X) + 1)
    W[-1] = w
    s = eng.step(s, t, torch.cat([X, Xi]), torch.cat([y, yi]), W, D)[0]
    for u in range(t + 1, traj.T):
        s = eng.step(s, u, *traj.batch(u)[1:])[0]
    return traj.objective.measure_fn(measure)(rule.theta(s), dt.as_data(test))


@pytest.mark.parametrize("rule", [dt.optim.SGD(weight_decay=0.01), dt.optim.SGD(momentum=0.9),
                                  dt.optim.Adam(), dt.optim.AdamW()], ids=repr)
def test_insertion_curve_is_the_derivative_of_the_insertion_weight(blobs_mlp, rule):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.02, optimizer=rule)
    pred = dt.OrderPredictor(traj, p.test).fit()
    point = 5
    curve = pred.insertion_curve(point)
    assert curve.shape == (traj.T, len(p.test))
    eps = 1e-5
    for t in (0, 3, traj.T - 1):
        if point in traj.schedule.batches[t]:
            continue
        fd = (weighted_insertion(traj, p.test, point, t, eps) - weighted_insertion(traj, p.test, point, t, -eps)) / (2 * eps)
        assert torch.allclose(curve[t], fd, rtol=1e-5, atol=1e-9 * float(fd.abs().max())), (t, curve[t], fd)


@pytest.mark.parametrize("rule", [dt.optim.SGD(weight_decay=0.01), dt.optim.SGD(momentum=0.8, nesterov=True)], ids=repr)
def test_one_insertion_on_least_squares_is_exact_for_predictions(linear_lsq, rule):
    """SGD (with or without momentum) on least squares is linear in its state and a prediction is linear
    in θ: one added occurrence is predicted exactly, by the sweep and by the GGN embedding."""
    p = linear_lsq
    traj = dt.train(p.model, p.train, p.schedule, 0.05, loss="mse", optimizer=rule)
    t = 4
    point = next(i for i in range(24) if i not in traj.schedule.batches[t])
    batches = [list(b) for b in traj.schedule.batches]
    batches[t].append(point)
    new = dt.Schedule(batches, traj.batch_size, 24)
    exact = dt.exact_order_change(traj, p.test, new, measure=_prediction)
    assert float(exact.abs().max()) > 1e-5
    unrolled = dt.predict_order(traj, p.test, new, measure=_prediction)
    assert torch.allclose(unrolled, exact, rtol=1e-8, atol=1e-13)
    emb = dt.predict_order(traj, p.test, new, "embedding", measure=_prediction,
                           dve=dt.DataValueEmbedding(hessian="ggn"))
    assert torch.allclose(emb, exact, rtol=1e-8, atol=1e-13)


def test_identities(blobs_mlp):
    p = blobs_mlp
    traj = p.traj
    pred = dt.OrderPredictor(traj, p.test).fit()
    assert torch.equal(pred.predict(traj.schedule), torch.zeros(len(p.test), dtype=traj.dtype))
    i, t1 = traj.schedule.batches[2][1], 2
    t2 = next(t for t in range(traj.T) if i not in traj.schedule.batches[t])
    curve = pred.insertion_curve(i)
    moved = pred.predict(traj.schedule.move(i, t1, t2))
    assert torch.allclose(moved, curve[t2] - curve[t1], rtol=1e-10, atol=1e-15)
    # the removal term is minus the insertion curve at the point's own step; for plain SGD that is the
    # unrolled (SGD-influence) score of the occurrence
    row = dt.unrolled_influence(traj, p.test).at([i], [t1])[0]
    assert torch.allclose(-curve[t1], row, rtol=1e-9, atol=1e-15)
    mean = dt.OrderPredictor(traj, p.test, mean=True).fit()
    assert torch.allclose(mean.predict(traj.schedule.swap(0, 5)), pred.predict(traj.schedule.swap(0, 5)).mean(),
                          rtol=1e-10)


@pytest.mark.parametrize("rule,lr", [(dt.optim.SGD(), 0.2), (dt.optim.Adam(), 0.01)], ids=["sgd", "adam"])
def test_moves_are_ranked_like_exact_replays(rule, lr):
    split = dt.datasets.moons(n_train=80, n_test=30, seed=0)
    traj = dt.train(dt.models.mlp((2, 16, 2), seed=0), split.train, dt.Schedule.shuffled(80, 16, epochs=3, seed=0),
                    lr, optimizer=rule)
    pred = dt.OrderPredictor(traj, split.test, mean=True).fit()
    rng = np.random.default_rng(1)
    P, E = [], []
    while len(P) < 20:
        i = int(rng.integers(80))
        t1, t2 = int(rng.choice(traj.schedule.occurrences(i))), int(rng.integers(traj.T))
        if i in traj.schedule.batches[t2]:
            continue
        s = traj.schedule.move(i, t1, t2)
        P.append(float(pred.predict(s)))
        E.append(float(dt.exact_order_change(traj, split.test, s).mean()))
    assert spearmanr(P, E)[0] > 0.95 and np.mean(np.sign(P) == np.sign(E)) >= 0.85


def test_bad_schedules_and_settings_are_refused(blobs_mlp):
    p = blobs_mlp
    traj = p.traj
    with pytest.raises(TypeError, match="schedule must be a dt.Schedule"):
        dt.predict_order(traj, p.test, traj.schedule.batches)
    with pytest.raises(ValueError, match="same.*n = 30|n = 30, T = 8"):
        dt.predict_order(traj, p.test, dt.Schedule.shuffled(30, 8, epochs=3, seed=0))
    with pytest.raises(ValueError, match="method must be"):
        dt.predict_order(traj, p.test, traj.schedule, method="exact")
    with pytest.raises(RuntimeError, match="not fitted"):
        dt.OrderPredictor(traj, p.test).predict(traj.schedule)
    with pytest.raises(IndexError, match="outside the training set"):
        dt.OrderPredictor(traj, p.test).fit().insertion_curve(99)


def test_embedding_method_follows_the_dve_settings(blobs_mlp):
    """The embedding method honours the frozen preconditioner (a different answer, still finite) and
    refuses the SGD proxy, which would not follow the run's rule."""
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.02, optimizer=dt.optim.Adam())
    new = traj.schedule.swap(1, 5)
    rec = dt.predict_order(traj, p.test, new, "embedding")
    frozen = dt.predict_order(traj, p.test, new, "embedding",
                              dve=dt.DataValueEmbedding(optimizer="frozen_preconditioner"))
    assert torch.isfinite(frozen).all() and not torch.allclose(rec, frozen)
    with pytest.raises(ValueError, match="follows the run's own update rule"):
        dt.predict_order(traj, p.test, new, "embedding", dve=dt.DataValueEmbedding(optimizer="sgd_proxy"))
    with pytest.raises(ValueError, match="holds Adam's v"):
        dt.predict_order(p.traj, p.test, p.traj.schedule.swap(1, 5), "embedding",
                         dve=dt.DataValueEmbedding(optimizer="frozen_preconditioner"))
