"""Checks for the exercises inside lesson 00 (start here)."""
from __future__ import annotations

import math


from . import exercise, not_yet, number, right, wrong, whole
from ...influence.loo import exact_loo

__all__ = ["check_most_helpful", "check_dve_rank", "check_last_occurrence"]



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
def check_dve_rank(answer, exact, estimate):
    """answer: the rank (1 = largest) that the DVE estimate gives the training point whose exact
    every-occurrence TSLOO is the largest (the exact replay's most helpful point).

    exact, estimate: Tensor[n_train], the mean exact TSLOO and its DVE estimate per training point."""
    name = "does the DVE find the most helpful point?"
    if answer is None:
        return not_yet(name, "find the exact replay's most helpful point first (exact_all), then count how many "
                             "points the DVE (estimate_all) scores higher than it.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a rank.", "a rank is a whole number, 1 for the largest estimate.")
    answer, n = whole(answer), len(exact)
    best = int(exact.argmax())
    truth = 1 + int((estimate > estimate[best]).sum())
    if answer == truth:
        return right(name, f"the DVE puts the exact replay's most helpful point (point {best}) at rank {truth} of "
                           f"{n}" + (" — it finds it." if truth == 1 else ": the ranking is close, not identical."))
    if answer == truth - 1 and truth > 1:
        return wrong(name, "that is one too small: a 0-based position.", "rank 1 is the largest estimate, so add 1 "
                                                                           "to the number of points scored higher.")
    if answer == n + 1 - truth:
        return wrong(name, "that counts from the smallest estimate.", "rank 1 = the LARGEST estimate (most helpful).")
    if answer == best or answer == int(estimate.argmax()):
        return wrong(name, "that looks like a point's index, not a rank.",
                     "count the points whose estimate is larger than the estimate of the exact replay's best point.")
    if not 1 <= answer <= n:
        return wrong(name, f"a rank lies between 1 and {n}.", "count points with a larger estimate, plus 1.")
    return wrong(name, f"rank {answer} is not where the DVE puts that point.",
                 "take the point with the largest exact_all, then rank it by estimate_all (1 = largest).")


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
