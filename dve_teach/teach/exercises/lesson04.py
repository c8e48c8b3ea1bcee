"""Checks for the "Try it" exercises of lesson 04 (data value embeddings).

Each check recomputes the truth from the lesson's objects with the library and says right, or what
is wrong and a hint, never the answer. See `dve_teach.teach.exercises` for the conventions.
"""
from __future__ import annotations

import torch

from . import Feedback, exercise, not_yet, right, wrong

__all__ = ["check_second_to_last_step", "check_query", "check_confirmed"]


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=rtol * float(b.abs().max()) + 1e-300))


@exercise
def check_second_to_last_step(answer, dve, traj) -> Feedback:
    """`answer`: Tensor [b, P], the embeddings of the occurrences of step T − 2 in the order of
    ``traj.schedule.batches[T - 2]``, computed from per-sample gradients with Theorem 2 (paper §4.1):
    DVE(i, T−2) = (η/b)(g_i − Σ_{j ∈ B_{T−1}} (g_jᵀ g_i) DVE(j, T−1)), DVE(j, T−1) = (η/b) g_j.
    Truth: the rows of the fitted `dve` (unprojected, Fisher) for that step."""
    name = "check_second_to_last_step"
    if answer is None:
        return not_yet(name, "start from the last step, whose embeddings are (η/b) × its per-sample gradients.")
    if dve.projection_ is not None and dve.embedding_dim_ != traj.flat.P:
        raise ValueError("this exercise needs the unprojected embedding of the lesson (proj_dim=None)")
    t = traj.T - 2
    members = [int(i) for i in traj.schedule.batches[t]]
    at_t = dve.steps_ == t
    rows = {int(p): r for r, p in zip(torch.nonzero(at_t)[:, 0].tolist(), dve.points_[at_t].tolist())}
    truth = dve.embeddings_[[rows[i] for i in members]]
    answer = torch.as_tensor(answer, dtype=truth.dtype)
    if answer.shape != truth.shape:
        return wrong(name, f"your answer has shape {tuple(answer.shape)}, but step T − 2 holds {truth.shape[0]} "
                           f"occurrences of {truth.shape[1]} parameters each.", "one row per member of the batch.")
    if _close(answer, truth):
        return right(name, "two steps of the backward recursion, by hand, match the library's embeddings.")
    _, X, y = traj.batch(t)
    g = traj.objective.per_sample_grads(traj.params(t), X, y)
    scale = float(traj.lrs[t]) / traj.batch_size
    if _close(answer, scale * g):
        return wrong(name, "this is (η/b) g alone: the step after it is missing.",
                     "subtract Σ_j (g_jᵀ g_i) DVE(j, T−1) over the last step's batch.")
    if _close(answer, 2 * scale * g - truth):
        return wrong(name, "the correction from the last step has the wrong sign.", "Theorem 2 subtracts it.")
    if _close(answer.abs().sum(1), truth.abs().sum(1), rtol=1e-4):
        return wrong(name, "the right rows, in the wrong order.", "follow traj.schedule.batches[T - 2].")
    return wrong(name, "these are not the embeddings of step T − 2.",
                 "use the gradients at θ_t of each step (traj.params(t)), η_t = traj.lrs[t] and b = traj.batch_size.")


@exercise
def check_query(answer, dve, test, point: int) -> Feedback:
    """`answer`: float, training point `point`'s influence on test image 0 of `test`, summed over its
    occurrences: Σ_t DVE(point, t) · ∇ℓ(θ_T, z_test). Truth: ``dve.influence(test).total()``."""
    name = "check_query"
    if answer is None:
        return not_yet(name, "one test gradient, then a dot product with each of the point's embeddings.")
    scores = dve.influence(test)
    truth = float(scores.total()[int(point), 0])
    value = float(answer)
    tol = 1e-6 * max(abs(truth), 1e-12)
    if abs(value - truth) <= tol:
        return right(name, "one gradient and a few dot products: no replay, no sweep.")
    if abs(value + truth) <= tol:
        return wrong(name, "right size, wrong sign.",
                     "influence = embedding · gradient of the test loss, no minus sign.")
    single = scores.per_occurrence[scores.points == int(point), 0]
    if any(abs(value - float(v)) <= 1e-6 * max(abs(float(v)), 1e-12) for v in single):
        return wrong(name, "this is one occurrence only.", "sum over every row of dve.embeddings_ for the point.")
    return wrong(name, "that is not the point's influence on image 0.",
                 "the test gradient is taken at traj.final, of image 0 of the noisy data.")


@exercise
def check_confirmed(answer, digit_model, test_index: int, method: str = "DVE (GGN)", k: int = 5) -> Feedback:
    """`answer`: int, how many of `method`'s `k` most helpful training digits for test digit
    `test_index` are among exact LOO's `k` most helpful (the `DigitModel` of the lesson)."""
    name = "check_confirmed"
    if answer is None:
        return not_yet(name, "take the top k of each column with torch.topk or argsort, then intersect.")
    scores = digit_model.methods
    if "exact LOO" not in scores or method not in scores:
        raise ValueError(f"the model needs exact LOO and {method!r} scores: build it with compare=True")
    top = {m: set(torch.argsort(scores[m][:, test_index], descending=True)[:k].tolist()) for m in (method, "exact LOO")}
    truth = len(top[method] & top["exact LOO"])
    low = set(torch.argsort(scores[method][:, test_index])[:k].tolist())
    if int(answer) != answer or not 0 <= int(answer) <= k:
        return wrong(name, f"the count is a whole number from 0 to {k}.", "len(set(a) & set(b)).")
    if int(answer) == truth:
        return right(name, f"exact LOO confirms that many of the {method}'s top {k}; the rest are its mistakes.")
    if int(answer) == len(low & top["exact LOO"]):
        return wrong(name, "you took the lowest scores.", "most helpful = the largest (positive) influence.")
    return wrong(name, "not the overlap of the two top-k lists.",
                 f"column {test_index} of each score matrix, sorted descending, first {k} indices of each.")
