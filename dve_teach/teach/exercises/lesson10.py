"""Checks for the exercises inside lesson 10 (a foundation model in miniature)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, number, right, whole, wrong
from ...training.trajectory import Trajectory

__all__ = ["check_near_zero_coordinates", "check_moved_exact"]


def _boundary_gradient(traj: Trajectory) -> tuple[int, torch.Tensor]:
    if len(getattr(traj, "stages", ()) or ()) < 2:
        raise ValueError("this check needs a two-stage run (dt.train_stages), e.g. the lesson's `traj`")
    B = traj.stages[1].steps.start
    _, X, y = traj.batch(B)
    G = traj.objective.per_sample_grads(traj.params(B), X, y).detach()
    return B, G.sum(0) / traj.batch_size


@exercise
def check_near_zero_coordinates(answer, traj: Trajectory):
    """answer: how many of the P coordinates of the batch gradient g at the first fine-tuning step
    (θ at the boundary, the fine-tuning batch, nominal divisor b) have |g_j| < ε, the coordinates where
    the fresh AdamW's first step has slope η ε/(|g_j| + ε)² > η/(4ε) in g_j (eq. 10.2)."""
    name = "coordinates with |g| < ε at the boundary"
    if answer is None:
        return not_yet(name, "take the batch gradient of step B = traj.stages[1].steps.start at θ_B, with "
                             "the nominal divisor b, and count |g_j| < traj.optimizer's ε of the second stage.")
    k = whole(answer)
    B, g = _boundary_gradient(traj)
    eps = traj.optimizer.rules[1].eps
    truth = int((g.abs() < eps).sum())
    if k is None:
        return wrong(name, f"{answer!r} is not a whole number.", "count coordinates: an int.")
    if k == truth:
        return right(name, f"{truth} of {g.numel()} coordinates: on each, the slope (10.2) is at least η/(4ε) = "
                           f"{1 / (4 * eps):.1e} η, while the true step can move by at most 2η.")
    _, X0, y0 = traj.batch(0)
    g0 = traj.objective.per_sample_grads(traj.params(0), X0, y0).detach().sum(0) / traj.batch_size
    if k == int((g0.abs() < eps).sum()):
        return wrong(name, "that is the count at θ_0, the first step of pretraining.",
                     "use θ and the batch at the boundary: traj.params(B), traj.batch(B).")
    if k == int((g == 0).sum()):
        return wrong(name, "those are only the coordinates whose gradient is exactly zero.",
                     "count |g_j| < ε, not g_j == 0.")
    return wrong(name, f"{k} is not the count.", "per_sample_grads(traj.params(B), X, y).sum(0) / b, then "
                                                   "(g.abs() < eps).sum().")


@exercise
def check_moved_exact(answer, seed: int, point: int, from_step: int, to_step: int, sizes=None):
    """answer: the exact TSLOO (mean held-out sonnet loss) of removing passage `point` at `to_step`
    only, in the run retrained with its occurrence at `from_step` moved to `to_step`
    (`foundation.place`). The truth: `foundation.placement_exact`."""
    from ..foundation import foundation_run, placement_exact, MeanLoss
    from ...influence.loo import exact_loo
    name = "the passage moved, removed exactly"
    if answer is None:
        return not_yet(name, "retrain with plays_schedule=fd.place(...), then dt.exact_loo(run, test, [point], "
                             "[to_step], measure=...).")
    try:
        a = number(answer)
    except (TypeError, ValueError):
        return wrong(name, f"{answer!r} is not a number.", "one float: the change of the mean held-out sonnet loss.")
    truth = float(placement_exact(seed, point, from_step, [to_step], sizes=sizes)[0])
    tol = 1e-6 * max(abs(truth), 1e-6)
    if abs(a - truth) <= tol:
        return right(name, f"{truth:+.3e}: removing it at step {to_step} of the retrained run.")
    if abs(a + truth) <= tol:
        return wrong(name, "the sign is reversed.", "TSLOO = m(θ'_T) − m(θ_T): the run without it minus the run with it.")
    traj, _, son, _ = foundation_run(seed, sizes=sizes)
    m = MeanLoss(son.test)
    old = float(exact_loo(traj, son.test[:1], [point], [from_step], measure=m, progress=False)[0, 0])
    if abs(a - old) <= 1e-6 * max(abs(old), 1e-6):
        return wrong(name, "that is its value where it was, in the original run.",
                     "retrain with the passage moved (plays_schedule=...), and remove it at its new step.")
    return wrong(name, "that is not the exact value.", "remove it at the new step only (steps=[to_step]), "
                                                       "in the retrained run, with the lesson's measure.")
