"""Checks for the exercises inside lesson 05 (reorder and watch)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, right, whole, wrong

__all__ = ["check_strongest_step", "check_most_similar"]


@exercise
def check_strongest_step(answer, result):
    """answer: the step (one of ``result.steps``) at which removing the followed point alone moves the
    mean test loss the most, by the exact replay (``result.per_step_exact``)."""
    name = "its strongest moment"
    if answer is None:
        return not_yet(name, "result.steps and result.per_step_exact are aligned: compare absolute values.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a step.", "answer with a step number from result.steps.")
    answer = whole(answer)
    steps, per = list(result.steps), [abs(float(v)) for v in result.per_step_exact]
    if int(answer) not in steps:
        return wrong(name, f"the point is not used at step {int(answer)}.", f"it is used at steps {steps}.")
    truth = steps[per.index(max(per))]
    if int(answer) == truth:
        return right(name, f"step {truth}: removing the point there alone changes the test loss the most.")
    signed = [float(v) for v in result.per_step_exact]
    if int(answer) == steps[signed.index(max(signed))]:
        return wrong(name, "that is the largest signed value.", "a large negative value matters too: use abs().")
    return wrong(name, f"at step {int(answer)} the effect is smaller than at another occurrence.",
                 "take the largest absolute value of result.per_step_exact.")


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
