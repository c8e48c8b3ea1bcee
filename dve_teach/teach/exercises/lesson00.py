"""Checks for the exercises inside lesson 00 (start here)."""
from __future__ import annotations

import math


from . import exercise, not_yet, number, right, wrong, whole
from ...influence.loo import exact_loo

__all__ = ["check_most_helpful", "check_last_occurrence"]



@exercise
def check_most_helpful(answer, traj, test):
    """answer: the index of the training point whose removal (at every step) raises the mean test
    loss the most, by the exact replay."""
    name = "most helpful point"
    if answer is None:
        return not_yet(name, "exact_all holds one exact TSLOO per training point; positive = helped.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a training index.", "an index is a whole number (int(...)).")
    answer, n = whole(answer), traj.schedule.n
    if not 0 <= answer < n:
        return wrong(name, f"{answer} is not a training index (0..{n - 1}).", "use argmax, not max.")
    exact = exact_loo(traj, test, range(n)).mean(1)
    if answer == int(exact.argmax()):
        return right(name, f"removing point {answer} everywhere raises the mean test loss by {float(exact[answer]):+.4f}, "
                           "more than removing any other point.")
    if answer == int(exact.argmin()):
        return wrong(name, "that is the point that hurt most (the most negative TSLOO).",
                     "positive means the point helped: look for the largest value.")
    return wrong(name, f"point {answer}'s exact TSLOO is {float(exact[answer]):+.4f}; some point's is larger.",
                 "exact_all.argmax() gives the index of the largest value.")


@exercise
def check_last_occurrence(answer, traj, test, point: int):
    """answer: the mean change of test loss when `point` is removed only at its last occurrence."""
    name = "one moment only"
    if answer is None:
        return not_yet(name, "dt.exact_loo(traj, test, [p], [step]) removes point p at that one step only.")
    value = number(answer)
    steps = traj.schedule.occurrences(point)
    truth = float(exact_loo(traj, test, [point], [steps[-1]]).mean())

    def close(x: float) -> bool:
        return math.isclose(value, x, rel_tol=1e-6, abs_tol=1e-12)

    if close(truth):
        return right(name, f"removing point {point} at step {steps[-1]} only changes the mean test loss by {truth:+.5f}.")
    if close(float(exact_loo(traj, test, [point]).mean())):
        return wrong(name, "that removes the point at every step where it was used.",
                     "pass the steps argument: one step per point.")
    if len(steps) > 1 and close(float(exact_loo(traj, test, [point], [steps[0]]).mean())):
        return wrong(name, "that is its first occurrence.", "schedule.occurrences(p) lists the steps in order.")
    return wrong(name, "that is not the exact replay's value for the last occurrence.",
                 "take the mean over the test points of dt.exact_loo(traj, split.test, [p], [last_step]).")
