"""Checks for the exercises inside lesson 02 (trajectory-specific leave-one-out)."""
from __future__ import annotations

from typing import Sequence

import torch

from . import exercise, not_yet, right, whole, wrong

__all__ = ["check_dominant_epoch", "check_replayed_steps", "check_replayed_steps_for"]



@exercise
def check_dominant_epoch(answer, per_step: torch.Tensor, steps: Sequence[int], steps_per_epoch: int):
    """answer: the epoch (1, 2, ...) whose removals have the largest mean |TSLOO|."""
    name = "which epoch matters most"
    if answer is None:
        return not_yet(name, "group per_step by epoch = step // steps_per_epoch and average the absolute values.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not an epoch number.", "answer 1, 2, 3, ...")
    answer = whole(answer)
    epoch = torch.as_tensor(list(steps)) // steps_per_epoch
    E = int(epoch.max()) + 1
    means = torch.stack([per_step[epoch == e].abs().mean() for e in range(E)])
    truth = int(means.argmax()) + 1
    if answer == truth:
        return right(name, f"epoch {truth}: its removals move the test loss most on average "
                           f"({float(means[truth - 1]):.2e} against {float(means.min()):.2e} for the least).")
    if answer == truth - 1 and answer >= 0:
        return wrong(name, "off by one.", "count epochs from 1 (epoch = step // steps_per_epoch + 1).")
    if not 1 <= answer <= E:
        return wrong(name, f"there are epochs 1..{E}.", "count epochs from 1.")
    return wrong(name, f"epoch {answer} is not the one with the largest mean |TSLOO|.",
                 "take the absolute value before averaging: helpful and harmful removals cancel otherwise.")


@exercise
def check_replayed_steps(answer, schedule):
    """answer: how many SGD steps the exact TSLOO of every (point, step) of `schedule` replays."""
    name = "the cost of exactness"
    if answer is None:
        return not_yet(name, "a removal at step s replays the steps s, s+1, ..., T-1: T - s of them.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a count.", "a count is a whole number: int(...).")
    answer = whole(answer)
    points, steps = schedule.occurrence_pairs()
    T = len(schedule)
    truth = sum(T - s for s in steps)
    if answer == truth:
        return right(name, f"{truth} replayed steps: {truth / T:.0f} trainings' worth for {len(steps)} values.")
    if answer == sum(T - s - 1 for s in steps):
        return wrong(name, "one step short per removal.", "the replay starts AT step s (the step without the point).")
    if answer == len(steps) * T:
        return wrong(name, "that replays every removal from the start.", "steps before s need no replay.")
    return wrong(name, f"{answer} is not the count.", "sum T - s over every (point, step) of the schedule.")


@exercise
def check_replayed_steps_for(answer, n: int, batch_size: int, epochs: int, current=None):
    """answer: how many SGD steps the exact TSLOO of every (point, step) replays for a run of `n`
    points, `epochs` shuffled epochs and batches of `batch_size` (n a multiple of batch_size).
    current: the lesson's own schedule, to recognise its count (a run of another batch size)."""
    from ...training.schedule import Schedule
    name = "the cost of exactness at another batch size"
    if answer is None:
        return not_yet(name, "a removal at step s replays T - s steps; with batches of b there are T = n·E/b steps "
                             "and b removals at every step.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a count.", "a count is a whole number: int(...).")
    answer = whole(answer)
    sched = Schedule.shuffled(n, batch_size, epochs, seed=0)          # the count does not depend on the order
    T = len(sched)
    steps = sched.occurrence_pairs()[1]
    truth = sum(T - s for s in steps)
    if answer == truth:
        return right(name, f"{truth} replayed steps with batches of {batch_size}"
                     + (f", against {sum(len(current) - s for s in current.occurrence_pairs()[1])} with "
                        f"batches of {current.batch_size}." if current is not None else "."))
    if current is not None and answer == sum(len(current) - s for s in current.occurrence_pairs()[1]):
        return wrong(name, f"that is the count of the lesson's run (batches of {current.batch_size}).",
                     f"rebuild the schedule with batch_size={batch_size}: T and the pairs both change.")
    if answer == sum(T - s - 1 for s in steps):
        return wrong(name, "one step short per removal.", "the replay starts AT step s (the step without the point).")
    if answer == round(n * n * epochs * epochs / (2 * batch_size)):
        return wrong(name, "that is the approximation N²E²/(2b).", "count exactly: sum T - s over every (point, step).")
    return wrong(name, f"{answer} is not the count.", "build dt.Schedule.shuffled(n, new_b, epochs) and sum T - s "
                                                      "over its occurrence_pairs().")
