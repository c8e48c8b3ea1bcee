"""`unrolled_influence`: the reverse sweep through the whole optimizer state, derived from the rule.
Oracles: the closed-form SGD sweep, explicit products of step Jacobians, one-step replays, and exact
LOO (equal where the run is linear in its state and the measure linear in θ)."""
from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

import dve_teach as dt
from dve_teach.training.linearize import removal_deltas, step_jacobian
from dve_teach.training.trajectory import removal_directions

RULES = [dt.optim.SGD(momentum=0.9, weight_decay=0.01), dt.optim.SGD(momentum=0.5, nesterov=True),
         dt.optim.Adam(weight_decay=0.01), dt.optim.AdamW(betas=(0.8, 0.9), weight_decay=0.05)]


def closed_form_sgd_sweep(traj, test, renormalize=False):
    """Hara et al.'s sweep written out for plain SGD: U ← U − η(HU + λU), score = δ·U."""
    obj, b, lam = traj.objective, traj.batch_size, traj.weight_decay
    U = obj.measure_grads(traj.final, test).detach()
    rows = [None] * traj.T
    for t, theta in traj.iter_params(reverse=True):
        _, X, y = traj.batch(t)
        lr = float(traj.lrs[t])
        rows[t] = removal_directions(obj.per_sample_grads(theta, X, y), lr, b, renormalize) @ U.T
        U = U - lr * (obj.hvp(theta, X, y, b, U) + lam * U)
    return torch.cat(rows)


@pytest.mark.parametrize("renormalize", [False, True])
def test_sweep_equals_the_closed_form_on_sgd(blobs_mlp, linear_lsq, renormalize):
    for p in (blobs_mlp, linear_lsq):
        want = closed_form_sgd_sweep(p.traj, p.test, renormalize)
        got = dt.unrolled_influence(p.traj, p.test, renormalize=renormalize).per_occurrence
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-15 * float(want.abs().max()))
        assert torch.equal(dt.sgd_influence(p.traj, p.test, renormalize=renormalize).per_occurrence, got)


@pytest.mark.parametrize("rule", RULES, ids=repr)
def test_removal_deltas_are_one_step_replays(blobs_mlp, rule):
    """δ_{i,t} = s'_{t+1} − s_{t+1}: the rule stepped with the point's weight set to 0 (or the
    batch renormalized), against the replay engine."""
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.02, optimizer=rule)
    for t in (0, 3):
        s = traj.state(t)
        _, X, y = traj.batch(t)
        G = traj.objective.per_sample_grads(traj.params(t), X, y)
        for renorm in (False, True):
            D = removal_deltas(rule, s, G, 0.02, t, traj.batch_size, renorm)
            for i in range(len(X)):
                W, Dv = traj.engine.unit(s, len(X))
                W[i] = 0.0
                if renorm:
                    Dv = torch.tensor(float(len(X) - 1), dtype=s.dtype)
                replay = traj.engine.step(s, t, X, y, W, Dv)[0] - traj.state(t + 1)
                assert torch.allclose(D[i], replay, rtol=1e-8, atol=1e-13)


def test_removal_deltas_reduce_to_the_sgd_closed_form(blobs_mlp):
    traj = blobs_mlp.traj
    _, X, y = traj.batch(1)
    G = traj.objective.per_sample_grads(traj.params(1), X, y)
    for renorm in (False, True):
        want = removal_directions(G, float(traj.lrs[1]), traj.batch_size, renorm)
        got = removal_deltas(traj.optimizer, traj.state(1), G, float(traj.lrs[1]), 1, traj.batch_size, renorm)
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("rule", RULES, ids=repr)
def test_sweep_equals_explicit_jacobian_products(blobs_mlp, rule):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.02, optimizer=rule)
    test = dt.Data(p.test.X[:3], p.test.y[:3])
    got = dt.unrolled_influence(traj, test).per_occurrence
    obj, b, P = traj.objective, traj.batch_size, traj.flat.P
    grad_m = obj.measure_grads(traj.final, test)
    S = traj.checkpoints[0].shape[0]
    Q = torch.zeros(3, S, dtype=grad_m.dtype)
    Q[:, :P] = grad_m                      # [∇m, 0] J_{T−1} ··· J_{t+1}, built from the explicit J
    rows = [None] * traj.T
    for t in range(traj.T - 1, -1, -1):
        s = traj.state(t)
        _, X, y = traj.batch(t)
        G = obj.per_sample_grads(traj.params(t), X, y)
        rows[t] = removal_deltas(traj.optimizer, s, G, float(traj.lrs[t]), t, b) @ Q.T
        Q = Q @ step_jacobian(obj, traj.optimizer, s, X, y, float(traj.lrs[t]), t, b)
    want = torch.cat(rows)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12 * float(want.abs().max()))


def _prediction(model, params, data):
    return torch.func.functional_call(model, params, (data.X,))[:, 0]


@pytest.mark.parametrize("rule", [dt.optim.SGD(momentum=0.9, weight_decay=0.01),
                                  dt.optim.SGD(momentum=0.6, dampening=0.2, nesterov=False)], ids=repr)
def test_momentum_on_least_squares_is_exact_for_predictions(linear_lsq, rule):
    """Momentum SGD on least squares is linear in its state (θ, buf), and a prediction is linear in θ:
    the first-order sweep is then exact (up to rounding) against the replayed LOO of one occurrence
    (removing several occurrences interacts: a later gradient is taken at shifted parameters)."""
    p = linear_lsq
    traj = dt.train(p.model, p.train, p.schedule, 0.05, loss="mse", optimizer=rule)
    pts, sts = traj.schedule.occurrence_pairs()
    rows = list(range(0, len(pts), 4))
    exact = dt.exact_loo(traj, p.test, [pts[r] for r in rows], steps=[sts[r] for r in rows], measure=_prediction)
    est = dt.unrolled_influence(traj, p.test, measure=_prediction).per_occurrence[rows]
    assert torch.allclose(est, exact, rtol=1e-8, atol=1e-12)
    assert float(exact.abs().max()) > 1e-4


@pytest.mark.parametrize("rule", [dt.optim.Adam(), dt.optim.AdamW(weight_decay=0.05)], ids=repr)
def test_adam_sweep_ranks_points_like_exact_loo(rule):
    """A small digits-free problem: 40 blob points, b = 8, 3 epochs, Adam. The first-order sweep through
    (θ, m, v) ranks the every-occurrence LOO of the mean test loss closely; the SGD formula does not
    know the run and is worse."""
    split = dt.datasets.blobs(n_train=40, n_test=20, seed=3)
    traj = dt.train(dt.models.mlp((2, 8, 3), seed=1), split.train, dt.Schedule.shuffled(40, 8, epochs=3, seed=2),
                    0.01, optimizer=rule)
    pts = list(range(40))
    exact = dt.exact_loo(traj, split.test, pts).mean(1)
    est = dt.unrolled_influence(traj, split.test).total().mean(1)
    rho = spearmanr(est.numpy(), exact.numpy())[0]
    assert rho > 0.95, rho


def test_sgd_influence_refuses_other_rules_and_names_the_way_out(blobs_mlp):
    p = blobs_mlp
    traj = dt.train(p.model, p.train, p.schedule, 0.01, optimizer="adam")
    with pytest.raises(NotImplementedError, match="plain SGD.*unrolled_influence"):
        dt.sgd_influence(traj, p.test)
