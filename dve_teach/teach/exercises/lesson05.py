"""Checks for the exercises inside lesson 05 (reorder and watch)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, right, whole, wrong

__all__ = ["check_additivity", "check_most_similar", "check_best_move"]


@exercise
def check_additivity(answer, result):
    """answer: (exact every-occurrence TSLOO − Σ exact one-step TSLOO) / |exact every-occurrence TSLOO|
    for the followed point of `result` (``result.exact``, ``result.per_step_exact``): how far removing
    it everywhere is from the sum of removing it at each of its steps alone, relative."""
    import math
    from . import number
    name = "every occurrence vs the sum of one-step removals"
    if answer is None:
        return not_yet(name, "result.exact is the every-occurrence value, result.per_step_exact the one-step ones.")
    value = number(answer)
    exact, parts = float(result.exact), [float(v) for v in result.per_step_exact]
    gap = exact - sum(parts)
    truth = gap / abs(exact)
    tol = dict(rel_tol=1e-6, abs_tol=1e-12)
    if math.isclose(value, truth, **tol):
        return right(name, f"{truth:+.1%} of the every-occurrence value: "
                           + ("nearly additive." if abs(truth) < 0.1 else "the removals interact noticeably."))
    if math.isclose(value, -truth, **tol):
        return wrong(name, "the sign is reversed.", "every-occurrence minus the sum, not the sum minus it.")
    if math.isclose(value, gap, **tol):
        return wrong(name, "that is the absolute gap.", "divide by |result.exact|.")
    est = float(result.estimate) - sum(float(v) for v in result.per_step_estimate)
    if math.isclose(value, est / abs(float(result.estimate)), **tol):
        return wrong(name, "that uses the DVE estimates.", "the question is about the exact replays.")
    if math.isclose(value, sum(parts) / exact, **tol):
        return wrong(name, "that is the sum over the every-occurrence value (a ratio).",
                     "the gap (difference) divided by |result.exact|.")
    return wrong(name, "that is not the relative gap.", "(exact − sum of per-step exact) / |exact|.")


@exercise
def check_most_similar(answer, result, k: int = 5):
    """answer: the k training points (any order) whose per-point embeddings have the largest cosine
    similarity with the followed point's (``result.embeddings``), the point itself excluded."""
    name = "its most similar points"
    if answer is None:
        return not_yet(name, "torch.nn.functional.cosine_similarity(E, E[p][None], dim=1) gives one value per point.")
    picked = [int(i) for i in (answer.tolist() if isinstance(answer, torch.Tensor) else answer)]
    if len(picked) != k or len(set(picked)) != k:
        return wrong(name, f"expected {k} different indices, got {picked}.", f"take the top {k} after excluding the point.")
    E, p = result.embeddings, result.point
    cos = torch.nn.functional.cosine_similarity(E, E[p][None], dim=1)
    cos[p] = -2.0
    truth = set(cos.argsort(descending=True)[:k].tolist())
    if set(picked) == truth:
        return right(name, f"these {k} points' embeddings point most nearly the way point {p}'s does.")
    if p in picked:
        return wrong(name, "the followed point itself is in your list.", "exclude it (its similarity is 1).")
    dots = E @ E[p]
    dots[p] = -float("inf")
    if set(picked) == set(dots.argsort(descending=True)[:k].tolist()):
        return wrong(name, "that ranks by dot product, which favours long embeddings.", "normalise: cosine similarity.")
    return wrong(name, f"{len(set(picked) & truth)} of your {k} are among the most similar.",
                 "sort the cosine similarities in descending order (argsort(descending=True)).")


def _move_values(result, test) -> dict:
    """{(t1, t2): c[t2] − c[t1]} for every move of the followed point alone from one of its steps t1 to
    a step t2 that does not use it (`Schedule.move`), c the insertion curve of `dt.OrderPredictor` on
    the run (mean test loss)."""
    from ...influence.order_effects import OrderPredictor
    c = OrderPredictor(result.traj, test, mean=True).fit().insertion_curve(result.point)[:, 0].tolist()
    steps, T = list(result.steps), len(c)
    return {(t1, t2): c[t2] - c[t1] for t1 in steps if len(result.schedule.batches[t1]) > 1
            for t2 in range(T) if t2 not in steps}


@exercise
def check_best_move(answer, result, test):
    """answer: (from_step, to_step), the move of the followed point alone (`result.schedule.move(point,
    from_step, to_step)`) predicted to lower the mean test loss most, from one of `result.steps` to a
    step that does not use the point (first order, the insertion curve of `dt.OrderPredictor`)."""
    name = "the best move"
    if answer is None:
        return not_yet(name, "c = dt.OrderPredictor(result.traj, test, mean=True).fit().insertion_curve(p)[:, 0]; "
                             "moving p from t1 to t2 is predicted as c[t2] - c[t1].")
    pair = list(answer.tolist() if isinstance(answer, torch.Tensor) else answer)
    if len(pair) != 2 or whole(pair[0]) is None or whole(pair[1]) is None:
        return wrong(name, f"{answer!r} is not a pair of steps.", "answer (from_step, to_step), two whole numbers.")
    t1, t2 = whole(pair[0]), whole(pair[1])
    steps = list(result.steps)
    if t1 not in steps:
        return wrong(name, f"the point is not used at step {t1}, so it cannot move from there.",
                     f"from_step is one of the steps where it is used: {steps}.")
    if t2 in steps:
        return wrong(name, f"the point is already used at step {t2} (a batch holds a point once).",
                     "leave out the steps where it is used when you look for to_step.")
    values = _move_values(result, test)
    if (t1, t2) not in values:
        return wrong(name, f"step {t2} is outside the run or the move would empty a batch.", "stay within 0..T-1.")
    best = min(values.values())
    tol = 1e-9 * max(abs(v) for v in values.values())
    if values[t1, t2] <= best + tol:
        return right(name, f"moving it from step {t1} to step {t2} is predicted to lower the mean test loss most: "
                           f"out of a step where it helps least, into one where it would help most.")
    if values[t1, t2] >= max(values.values()) - tol:
        return wrong(name, "that move is predicted to raise the test loss most.", "you want the most negative change.")
    if min(values[t, t2] for t in steps if (t, t2) in values) <= best + tol:
        return wrong(name, f"step {t2} is the right place to go, but not from step {t1}.",
                     "the removal term −c[t1] counts too: from which of its steps does leaving cost least?")
    return wrong(name, f"another move is predicted to lower the test loss more than step {t1} -> {t2}.",
                 "take the smallest c[t2] - c[t1] over every t1 in result.steps and every t2 not in it.")

