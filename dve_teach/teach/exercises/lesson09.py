"""Checks for the exercises inside lesson 09 (beyond SGD: momentum, Adam, AdamW)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, number, right, wrong
from ...training.trajectory import Trajectory

__all__ = ["check_first_step", "check_momentum_carry"]


def _close(a: torch.Tensor, b: torch.Tensor, scale: float, tol: float = 0.02) -> bool:
    return a.shape == b.shape and float((a - b).abs().max()) <= tol * scale


@exercise
def check_first_step(answer, traj: Trajectory, point: int):
    """answer: θ'_1 − θ_1, Tensor[P], when `point` (a member of the first batch) is removed at step 0
    of the Adam run `traj` (zero-weight: the batch gradient becomes g − g_i/b). The truth is the rule's
    own first step with and without the point (`traj.optimizer.update`), to 2% of η."""
    name = "Adam's first step without one point"
    if answer is None:
        return not_yet(name, "at t = 0, m̂ = g and v̂ = g², so the step is −η g/(|g| + ε): compare it with and "
                             "without the point.")
    batch = [int(i) for i in traj.schedule.batches[0]]
    if int(point) not in batch:
        raise ValueError(f"point {point} is not in the first batch {batch}")
    s, rule, b, P = traj.state(0), traj.optimizer, traj.batch_size, traj.flat.P
    lr = float(traj.lrs[0])
    _, X, y = traj.batch(0)
    G = traj.objective.per_sample_grads(rule.theta(s), X, y).detach()
    g = G.sum(0) / b
    g_without = g - G[batch.index(int(point))] / b
    truth = rule.update(s, g_without, lr, 0)[:P] - rule.update(s, g, lr, 0)[:P]
    a = torch.as_tensor(answer, dtype=truth.dtype).detach().cpu().reshape(-1) if not isinstance(answer, (int, float)) \
        else None
    if a is None or a.numel() != P:
        return wrong(name, f"expected a Tensor of P = {P} numbers (one per parameter).",
                     "θ'_1 − θ_1 has one entry per parameter.")
    if _close(a, truth, lr):
        flips = int((truth.abs() > lr).sum())
        return right(name, f"{flips} of {P} coordinates flip and move by 2η = {2 * lr:g}; every other one stays "
                           "put — all or nothing, coordinate by coordinate.")
    if _close(-a, truth, lr):
        return wrong(name, "the sign is reversed.", "θ' is the run without the point: take θ'_1 − θ_1.")
    if _close(a, 2 * truth, lr) or _close(a, truth / 2, lr):
        return wrong(name, "right coordinates, wrong size.", "a flipped coordinate goes from −η·sign to +η·sign: 2η.")
    c1, c2 = 1 - rule.betas[0], 1 - rule.betas[1]
    if _close(a, truth * c1 / c2 ** 0.5, lr):
        return wrong(name, "you forgot the bias correction.", "m̂ = m/(1 − β₁), v̂ = v/(1 − β₂) at t = 0.")
    if _close(a, (lr / b) * G[batch.index(int(point))], lr):
        return wrong(name, "that is the SGD kick (η/b) g_i.", "Adam divides each coordinate by √v̂ + ε.")
    return wrong(name, "that is not the change of θ_1.", "compute −η g/(√(g²) + ε) with and without the point "
                                                           "(batch gradients with the nominal divisor b), subtract.")


@exercise
def check_momentum_carry(answer, traj: Trajectory):
    """answer: (factor after a removal at step 0, factor after a removal at step T − 2): how many times
    larger ‖θ'_T − θ_T‖ ends than the first kick ‖θ'_{t+1} − θ_{t+1}‖ in the momentum run `traj` if
    the gradients of the later steps did not change (zero curvature). The truth: the rule itself run
    from the recorded states with the recorded batch gradients (`traj.optimizer.step`)."""
    name = "momentum's carry"
    if answer is None:
        return not_yet(name, "the buffer keeps μ times the last kick at every later step, and θ takes each.")
    rule = traj.optimizer
    if rule.name != "sgd" or not rule.momentum:
        raise ValueError("check_momentum_carry needs a run of SGD with momentum (dt.optim.SGD(momentum=...))")
    try:
        first, last = (number(v) for v in answer)
    except (TypeError, ValueError):
        return wrong(name, f"{answer!r} is not a pair of numbers.", "answer (factor for t = 0, factor for t = T − 2).")
    P, T, b = traj.flat.P, traj.T, traj.batch_size
    truth = []
    for t in (0, T - 2):
        s = traj.state(t)
        _, X, y = traj.batch(t)
        G = traj.objective.per_sample_grads(rule.theta(s), X, y).detach()
        g = G.sum(0) / b
        a, c = rule.step(s, g - G[0] / b, float(traj.lrs[t]), t), rule.step(s, g, float(traj.lrs[t]), t)
        kick = float((a - c)[:P].norm())
        for k in range(t + 1, T):                       # the later steps see the recorded gradients
            _, Xk, yk = traj.batch(k)
            gk = traj.objective.batch_grad(rule.theta(traj.state(k)), Xk, yk, torch.ones(len(Xk), dtype=g.dtype),
                                           torch.tensor(float(b), dtype=g.dtype)).detach()
            a, c = rule.step(a, gk, float(traj.lrs[k]), k), rule.step(c, gk, float(traj.lrs[k]), k)
        truth.append(float((a - c)[:P].norm()) / kick)
    ok = [abs(x - y) <= 1e-3 * y for x, y in zip((first, last), truth)]
    if all(ok):
        return right(name, f"the first step's kick ends {truth[0]:.2f}× larger, the second-to-last step's "
                           f"{truth[1]:.2f}×: a uniform SGD recursion misses this difference.")
    mu = rule.momentum
    if abs(first - 1 / (1 - mu)) <= 1e-3 / (1 - mu):
        return wrong(name, "1/(1 − μ) is the carry of an endless run.", "count only the steps that are left.")
    if ok[1] and not ok[0]:
        return wrong(name, "the second number is right, the first is not.", "T − 1 later steps follow step 0.")
    if ok[0] and not ok[1]:
        return wrong(name, "the first number is right, the second is not.", "after step T − 2 one step is left.")
    return wrong(name, "not the carry.", "the kick enters θ once at its own step, then μ, μ², ... times at the next: "
                                         "sum the geometric series over the steps that are left.")
