"""train_orders / final_test_losses: many orders trained at once must equal dt.train run by run."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.training.orders import final_test_losses, train_orders


def _orders(n, b, epochs=2):
    scheds = [dt.Schedule.shuffled(n, b, epochs=epochs, seed=s) for s in range(4)]
    scheds.append(dt.Schedule.sequential(n, b, epochs=epochs))
    scheds.append(scheds[1].reversed() if epochs == 1 else scheds[1])
    return scheds


def test_equals_train_for_each_order_cross_entropy(blobs_mlp):
    p = blobs_mlp
    scheds = _orders(len(p.train), p.schedule.batch_size)
    lr = [0.3 - 0.02 * t for t in range(len(scheds[0]))]  # a per-step schedule, not just a float
    thetas = train_orders(p.model, p.train, scheds, lr, loss=p.loss)
    assert thetas.shape == (len(scheds), p.traj.flat.P) and thetas.dtype == torch.float64
    for r, s in enumerate(scheds):
        ref = dt.train(p.model, p.train, s, lr, loss=p.loss).final
        torch.testing.assert_close(thetas[r], ref, rtol=0, atol=1e-12)
    # different orders really give different models (the point of lesson 01)
    assert (thetas[0] - thetas[1]).abs().max() > 1e-3


def test_equals_train_with_weight_decay_and_mse(linear_lsq):
    p = linear_lsq
    scheds = [dt.Schedule.shuffled(len(p.train), 5, epochs=2, seed=s) for s in range(3)]
    scheds.append(dt.Schedule.curriculum(p.train.y[:, 0].tolist(), 5, epochs=2))
    thetas = train_orders(p.model, p.train, scheds, p.lr, loss="mse", weight_decay=p.weight_decay)
    for r, s in enumerate(scheds):
        ref = dt.train(p.model, p.train, s, p.lr, loss="mse", weight_decay=p.weight_decay).final
        torch.testing.assert_close(thetas[r], ref, rtol=0, atol=1e-12)


def test_final_test_losses_match_trajectory(blobs_mlp):
    p = blobs_mlp
    scheds = _orders(len(p.train), p.schedule.batch_size)[:3]
    losses = final_test_losses(p.model, p.train, p.test, scheds, p.lr, loss=p.loss)
    assert losses.shape == (3, len(p.test))
    for r, s in enumerate(scheds):
        ref = dt.train(p.model, p.train, s, p.lr, loss=p.loss).test_losses(p.test)
        torch.testing.assert_close(losses[r], ref, rtol=0, atol=1e-12)


def test_model_is_left_untouched(blobs_mlp):
    p = blobs_mlp
    before = [q.detach().clone() for q in p.model.parameters()]
    train_orders(p.model, p.train, [p.schedule], p.lr)
    assert all(torch.equal(a, q) for a, q in zip(before, p.model.parameters()))


def test_unequal_schedules_are_refused(blobs_mlp):
    p = blobs_mlp
    n = len(p.train)
    a = dt.Schedule.shuffled(n, 8, seed=0)
    with pytest.raises(ValueError, match="same number of steps"):
        train_orders(p.model, p.train, [a, dt.Schedule.shuffled(n, 8, epochs=2)], p.lr)
    with pytest.raises(ValueError, match="equal batch sizes per step"):  # 8,8,8,6 vs 6,8,8,8
        train_orders(p.model, p.train, [a, a.reversed()], p.lr)
    other_b = dt.Schedule.from_batches(a.batches, batch_size=10, n=n)
    with pytest.raises(ValueError, match="divisor b"):
        train_orders(p.model, p.train, [a, other_b], p.lr)
    with pytest.raises(ValueError, match="n=30"):
        train_orders(p.model, p.train, [dt.Schedule.shuffled(20, 8)], p.lr)
    with pytest.raises(ValueError, match="empty"):
        train_orders(p.model, p.train, [], p.lr)
    with pytest.raises(TypeError, match=r"\[schedule\]"):
        train_orders(p.model, p.train, a, p.lr)


def test_divergence_names_order_and_step(linear_lsq):
    p = linear_lsq  # least squares with a huge step: |θ| grows geometrically to inf
    with pytest.raises(FloatingPointError, match="order 0 diverged at step"):
        train_orders(p.model, p.train, [p.schedule], 1e100, loss="mse")
