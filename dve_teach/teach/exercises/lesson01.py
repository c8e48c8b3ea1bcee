"""Checks for the exercises inside lesson 01 (order matters)."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from . import exercise, not_yet, right, whole, wrong
from ...influence.explain import with_copies
from ...influence.loo import exact_loo
from ...training.loop import train

__all__ = ["check_shuffles_below", "check_share_better", "check_correct_copy_last"]


@exercise
def check_shuffles_below(answer, loss_per_order: torch.Tensor, curriculum_loss: float):
    """answer: how many of the shuffles end with a lower final test loss than the curriculum."""
    name = "shuffles below the curriculum"
    if answer is None:
        return not_yet(name, "compare loss_per_order with the curriculum's loss and count the Trues (.sum()).")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a count.", "a count is a whole number: int(...).")
    answer = whole(answer)
    truth = int((loss_per_order < float(curriculum_loss)).sum())
    R = len(loss_per_order)
    if int(answer) == truth:
        return right(name, f"{truth} of {R} shuffles end lower than this curriculum.")
    if int(answer) == R - truth:
        return wrong(name, "that counts the shuffles that end higher.", "lower test loss = better: use <.")
    return wrong(name, f"{int(answer)} is not the count.", "(loss_per_order < value).sum() counts the lower ones.")


@exercise
def check_share_better(answer, losses: torch.Tensor, best: int, worst: int):
    """answer: the share (0..1) of test points whose final loss is lower under the best shuffle
    than under the worst. losses: Tensor[R, n_test], one row of per-test-point losses per order."""
    name = "where the best order wins"
    if answer is None:
        return not_yet(name, "losses[best] and losses[worst] hold one loss per test point: compare them point by "
                             "point and take the mean of the Trues.")
    try:
        value = float(answer.double().mean()) if isinstance(answer, torch.Tensor) and answer.numel() > 1 \
            else float(answer)
    except (TypeError, ValueError):
        return wrong(name, f"{answer!r} is not a share.", "a share is a number between 0 and 1.")
    lower = losses[best] < losses[worst]
    truth, m = float(lower.double().mean()), losses.shape[1]
    if isinstance(answer, torch.Tensor) and answer.numel() > 1 and answer.numel() != m:
        return wrong(name, f"a tensor of {answer.numel()} values is not a share of the {m} test points.",
                     "compare losses[best] with losses[worst] (one row each).")
    if math.isclose(value, truth, abs_tol=1e-9):
        return right(name, f"the best shuffle has the lower loss on {truth:.0%} of the {m} test points.")
    if math.isclose(value, 1 - truth, abs_tol=1e-9):
        return wrong(name, "that is the share where the WORST order has the lower loss.", "flip the comparison.")
    if math.isclose(value, float(lower.sum()), abs_tol=1e-9):
        return wrong(name, "that is a count, not a share.", "divide by the number of test points (or take .mean()).")
    if math.isclose(value, float(losses[best].mean() < losses[worst].mean()), abs_tol=1e-9):
        return wrong(name, "that compares the two mean losses, not the test points one by one.",
                     "compare the rows element-wise before averaging.")
    return wrong(name, f"{value:.3g} is not that share.", "(losses[best] < losses[worst]).double().mean().")


@exercise
def check_correct_copy_last(answer, model, data, schedule, point: int, steps: Sequence[int], lr, test):
    """answer: the mean Δ test loss of removing the *correctly labelled* copy seen at the last of
    `steps` (copies made with `dt.explain.with_copies(data, schedule, point, steps)`)."""
    name = "correctly labelled copy"
    if answer is None:
        return not_yet(name, "build the data with dt.explain.with_copies, train on it, and remove the last copy "
                             "(index len(data) + len(steps) - 1) at its step.")
    value = float(answer.mean()) if isinstance(answer, torch.Tensor) else float(answer)
    new, sched = with_copies(data, schedule, point, steps)
    traj = train(model, new, sched, lr)
    n = len(data)
    truth = float(exact_loo(traj, test, [n + len(steps) - 1], [steps[-1]]).mean())
    if math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-12):
        return right(name, f"the correctly labelled copy seen at step {steps[-1]}: {truth:+.5f}.")
    every = float(exact_loo(traj, test, [n + len(steps) - 1]).mean())
    if math.isclose(value, every, rel_tol=1e-6, abs_tol=1e-12) and len(sched.occurrences(n + len(steps) - 1)) > 1:
        return wrong(name, "that removes the copy at every step.", "pass its step too.")
    return wrong(name, "that is not the exact replay's value for the last copy.",
                 "the copies get the indices n, n+1, ...; the last one is seen at steps[-1].")
