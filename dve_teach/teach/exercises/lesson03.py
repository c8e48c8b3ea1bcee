"""Checks for the "Try it" exercises of lesson 03 (unrolling SGD).

Each check recomputes the truth from the lesson's objects with the library and says right, or what
is wrong and a hint, never the answer. See `dve_teach.teach.exercises` for the conventions.
"""
from __future__ import annotations

import torch

from . import Feedback, exercise, not_yet, right, whole, wrong

__all__ = ["check_removal_direction", "check_hvp", "check_largest_error"]


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    return a.shape == b.shape and float((a - b).norm()) <= rtol * float(b.norm())


def _vector(answer, like: torch.Tensor, name: str, what: str):
    """The answer as a tensor like `like`, or the Feedback saying why it is not one."""
    answer = torch.as_tensor(answer, dtype=like.dtype)
    if answer.shape != like.shape:
        return wrong(name, f"your answer has shape {tuple(answer.shape)}; {what} has shape {tuple(like.shape)}.",
                     "one number per parameter (traj.flat.P of them).")
    return answer


@exercise
def check_removal_direction(answer, traj, point: int, step: int) -> Feedback:
    """`answer`: Tensor [P], δ = θ'_{t+1} − θ_{t+1} when `point` is left out of step `step`:
    (η_t / b) ∇ℓ(θ_t, z_i) (paper §3.1). Truth: `explain.removal_direction` (exact)."""
    from ...influence import explain
    name = "check_removal_direction"
    if answer is None:
        return not_yet(name, "the gradient of point i's own loss at θ_t, times the learning rate over the batch size.")
    truth = explain.removal_direction(traj, point, step)
    answer = _vector(answer, truth, name, "δ")
    if isinstance(answer, Feedback):
        return answer
    if _close(answer, truth, 1e-8):
        return right(name, "leaving a point out moves θ_{t+1} by exactly (η_t/b) ∇ℓ(θ_t, z_i).")
    eta, b = float(traj.lrs[step]), traj.batch_size
    hints = [(-truth, "right size, wrong sign.", "θ' = θ_{t+1} + (η/b) g: removing a point adds back its step."),
             (truth * b / eta, "this is the gradient itself.", "scale it by η_t / b."),
             (truth * b, "the factor 1/b is missing.", "b is the nominal batch size, traj.batch_size."),
             (truth / eta, "the learning rate is missing.", "η_t is traj.lrs[t].")]
    for value, problem, hint in hints:
        if _close(answer, value, 1e-8):
            return wrong(name, problem, hint)
    return wrong(name, "that is not the removal direction.",
                 "take the gradient at θ_t = traj.params(t), before the step, of point i alone.")


@exercise
def check_hvp(answer, traj, step: int, v) -> Feedback:
    """`answer`: Tensor [P], H_t v by central differences of the batch gradient,
    (∇L_t(θ_t + εv) − ∇L_t(θ_t − εv)) / 2ε. Truth: the exact HVP (forward over reverse mode)."""
    name = "check_hvp"
    if answer is None:
        return not_yet(name, "evaluate the batch gradient at θ_t + εv and θ_t − εv (ε about 1e-5).")
    _, X, y = traj.batch(step)
    v = torch.as_tensor(v, dtype=traj.dtype)
    truth = traj.objective.hvp(traj.params(step), X, y, traj.batch_size, v[None])[0]
    answer = _vector(answer, truth, name, "H v")
    if isinstance(answer, Feedback):
        return answer
    if _close(answer, truth, 1e-5):
        return right(name, "two gradients give H v to many digits; the exact HVP is the limit ε → 0.")
    if _close(answer, -truth, 1e-5):
        return wrong(name, "right size, wrong sign.", "subtract the gradient at θ − εv from the one at θ + εv.")
    if _close(answer, 2 * truth, 1e-5) or _close(answer, truth / 2, 1e-5):
        return wrong(name, "off by a factor of 2.", "a central difference divides by 2ε.")
    if _close(answer, truth, 1e-2):
        return wrong(name, "close, but not to 5 digits.", "try ε between 1e-6 and 1e-4 and central differences.")
    return wrong(name, "that is not H_t v.", "the batch gradient is the mean per-sample gradient over b = "
                 "traj.batch_size: per_sample_grads(θ, X, y).sum(0) / b, with (_, X, y) = traj.batch(t).")


@exercise
def check_largest_error(answer, traj, test) -> Feedback:
    """`answer`: (point, step), the occurrence whose SGD-influence estimate of the mean test loss
    change is furthest from exact LOO (one replay per occurrence)."""
    from ...influence.loo import exact_loo
    from ...influence.unroll import sgd_influence
    name = "check_largest_error"
    if answer is None:
        return not_yet(name, "compare the estimate and the exact value of every occurrence; argmax of |difference|.")
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 2 \
            or any(whole(a) is None for a in answer):
        return wrong(name, f"{answer!r} is not a (point, step) pair of whole numbers.",
                     "answer with a tuple such as (pts[k], sts[k]) for the worst k.")
    point, step = (whole(a) for a in answer)
    pts, sts = traj.schedule.occurrence_pairs()
    est = sgd_influence(traj, test).per_occurrence.mean(1)
    exact = exact_loo(traj, test, pts, sts, progress=False).mean(1)
    error = (est - exact).abs()
    worst = int(error.argmax())
    if (point, step) == (pts[worst], sts[worst]):
        return right(name, "the largest error; note whose it is, and how far that removal moved θ.")
    pairs = list(zip(pts, sts))
    if (point, step) not in pairs:
        return wrong(name, f"point {point} is not in the batch of step {step}.",
                     "pick the pair from traj.schedule.occurrence_pairs().")
    if pairs.index((point, step)) in (int((est - exact).argmax()), int((exact - est).argmax())):
        return wrong(name, "that is the largest signed difference.", "take the absolute value first.")
    return wrong(name, "another occurrence has a larger error.",
                 "error = |estimate − exact|, averaged over test points first.")
