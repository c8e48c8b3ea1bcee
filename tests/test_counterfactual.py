"""divergence / counterfactual_params against a hand-written replay (the oracle) and exact_loo."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.influence.counterfactual import counterfactual_params, divergence, divergences
from dve_teach.training.trajectory import removal_directions, sgd_update


def hand_replay(traj, point, steps, renormalize):
    """θ'_t, t = 0..T, written out step by step: w_point = 0 (and divisor |B_t| − 1) at `steps`."""
    theta, out = traj.params(0), [traj.params(0)]
    for t in range(traj.T):
        idx, X, y = traj.batch(t)
        w = torch.ones(len(X), dtype=traj.dtype)
        divisor = float(traj.batch_size)
        if t in steps:
            w[idx.tolist().index(point)] = 0.0
            if renormalize:
                divisor = float(len(X) - 1)
        g = traj.objective.batch_grad(theta, X, y, w, torch.tensor(divisor, dtype=traj.dtype))
        theta = sgd_update(theta, g, float(traj.lrs[t]), traj.weight_decay)
        out.append(theta)
    return torch.stack(out)


def _cases(traj, point):
    occ = traj.schedule.occurrences(point)
    assert len(occ) == 2  # the fixtures run 2 epochs
    return [(occ[0], [occ[0]]), (occ[1], [occ[1]]), (None, occ)]


@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("fixture", ["blobs_mlp", "linear_lsq"])
def test_matches_hand_replay(fixture, renormalize, request):
    p = request.getfixturevalue(fixture)
    traj = p.traj
    recorded = torch.stack([traj.params(t) for t in range(traj.T + 1)])
    for point in (3, 11):
        for step, steps in _cases(traj, point):
            hand = hand_replay(traj, point, steps, renormalize)
            cf = counterfactual_params(traj, point, step, renormalize=renormalize)
            assert cf.shape == (traj.T + 1, traj.flat.P)
            torch.testing.assert_close(cf, hand, rtol=0, atol=1e-12)
            div = divergence(traj, point, step, renormalize=renormalize)
            assert div.shape == (traj.T + 1,)
            want = (hand - recorded).norm(dim=1)
            torch.testing.assert_close(div, want, rtol=0, atol=1e-12)
            first = min(steps)
            assert torch.all(div[:first + 1] == 0)  # exactly zero up to the removal step
            assert div[first + 1] > 0


@pytest.mark.parametrize("renormalize", [False, True])
def test_first_jump_is_the_removal_direction(blobs_mlp, renormalize):
    traj = blobs_mlp.traj
    point = 4
    s = traj.schedule.occurrences(point)[1]  # second epoch
    idx, X, y = traj.batch(s)
    G = traj.objective.per_sample_grads(traj.params(s), X, y)
    delta = removal_directions(G, float(traj.lrs[s]), traj.batch_size, renormalize)[idx.tolist().index(point)]
    cf = counterfactual_params(traj, point, s, renormalize=renormalize)
    torch.testing.assert_close(cf[s + 1] - traj.params(s + 1), delta, rtol=0, atol=1e-12)


@pytest.mark.parametrize("renormalize", [False, True])
def test_consistent_with_exact_loo(blobs_mlp, renormalize):
    p = blobs_mlp
    traj = p.traj
    for point in (0, 7):
        for step, _ in _cases(traj, point):
            theta_T = counterfactual_params(traj, point, step, renormalize=renormalize)[-1]
            mine = traj.objective.losses(theta_T, p.test.X, p.test.y) - traj.test_losses(p.test)
            loo = dt.exact_loo(traj, p.test, [point], None if step is None else [step],
                               renormalize=renormalize)[0]
            torch.testing.assert_close(mine, loo, rtol=0, atol=1e-12)


def test_batched_rows_equal_single_calls(blobs_mlp):
    traj = blobs_mlp.traj
    points = [5, 1, 20, 5]
    steps = [traj.schedule.occurrences(i)[k] for i, k in zip(points, [1, 0, 1, 0])]
    rows = divergences(traj, points, steps)
    assert rows.shape == (4, traj.T + 1)
    for k, (i, s) in enumerate(zip(points, steps)):
        torch.testing.assert_close(rows[k], divergence(traj, i, s), rtol=0, atol=1e-12)


def test_point_never_visited_gives_zeros():
    split = dt.datasets.blobs(n_train=12, n_test=2, seed=0)
    sched = dt.Schedule.from_batches([[0, 1, 2], [3, 4, 5]], batch_size=3, n=12)
    traj = dt.train(dt.models.mlp((2, 4, 3), seed=0), split.train, sched, 0.1)
    assert torch.equal(divergence(traj, 9), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(counterfactual_params(traj, 9)[-1], traj.final, rtol=0, atol=0)


def test_checkpointed_trajectory_gives_same_curve(blobs_mlp):
    p = blobs_mlp
    sparse = dt.train(p.model, p.train, p.schedule, p.lr, loss=p.loss, checkpoint_every=3)
    s = p.schedule.occurrences(2)[0]
    torch.testing.assert_close(divergence(sparse, 2, s), divergence(p.traj, 2, s), rtol=0, atol=1e-12)


def test_bad_input_is_refused(blobs_mlp):
    traj = blobs_mlp.traj
    occ = traj.schedule.occurrences(3)
    other = next(t for t in range(traj.T) if t not in occ)
    with pytest.raises(ValueError, match="not in the batch of step"):
        divergence(traj, 3, other)
    with pytest.raises(IndexError, match="outside the training set"):
        divergence(traj, 999)
    with pytest.raises(IndexError, match="out of range"):
        divergence(traj, 3, traj.T + 5)
