"""Checks for the exercises inside lesson 06 (phases of influence)."""
from __future__ import annotations

import math

import torch

from . import exercise, not_yet, number, right, wrong
from ...influence.phases import phase_levels

__all__ = ["check_phase_curve", "check_raw_ratio"]


@exercise
def check_phase_curve(answer, influence, lrs):
    """answer: c_t = (1/η_t) · mean over the occurrences of step t of |score| (score = the estimate on
    the mean test loss), Tensor[T], from the per-occurrence scores of `influence` [n_occ, n_test]."""
    name = "the phase curve by hand"
    if answer is None:
        return not_yet(name, "average each occurrence over the test points, take |.|, average per step, divide by η_t.")
    c = torch.as_tensor(answer, dtype=torch.float64).detach().cpu().reshape(-1)
    score = influence.per_occurrence.mean(1).abs().double().cpu()
    steps = influence.steps
    T = len(lrs)
    if c.numel() != T:
        return wrong(name, f"expected one value per step ({T}), got {c.numel()}.", "index the result by step t.")
    truth = torch.stack([score[steps == t].mean() if (steps == t).any() else torch.tensor(float("nan"), dtype=torch.float64)
                         for t in range(T)]) / torch.as_tensor(lrs, dtype=torch.float64).cpu()
    if torch.allclose(c, truth, rtol=1e-8, atol=0, equal_nan=True):
        return right(name, "this is `influence.by_step('mean_abs', per_lr=True, lrs=traj.lrs, test='mean')`.")
    lr = torch.as_tensor(lrs, dtype=torch.float64).cpu()
    if torch.allclose(c, truth * lr, rtol=1e-8, atol=0, equal_nan=True):
        return wrong(name, "not divided by the learning rate.", "divide each step's value by η_t (traj.lrs).")
    signed = torch.stack([influence.per_occurrence.mean(1).double().cpu()[steps == t].mean() for t in range(T)]) / lr
    if torch.allclose(c, signed, rtol=1e-8, atol=0, equal_nan=True):
        return wrong(name, "helpful and harmful points cancel in your average.", "take the absolute value first.")
    return wrong(name, "that is not the curve.", "per occurrence: mean over test points, then abs; per step: mean, then / η_t.")


@exercise
def check_raw_ratio(answer, curve, lrs, bins: int = 10):
    """answer: the start/basin ratio (`dt.phases.phase_levels`, `bins` chunks) of the per-step curve
    *not* divided by η_t: ``curve * lrs`` for the η-divided `curve` (Tensor[T]) of lesson 06."""
    from ...influence.phases import phase_levels
    name = "the curve without dividing by η"
    if answer is None:
        return not_yet(name, "multiply the divided curve back by the learning rates, then phase_levels(...).")
    value = number(answer)
    curve, lrs = torch.as_tensor(curve).double(), torch.as_tensor(lrs).double()
    raw, divided = phase_levels(curve * lrs, bins), phase_levels(curve, bins)
    truth = raw["start_over_basin"]
    if math.isclose(value, truth, rel_tol=1e-6):
        side = "smaller" if truth < divided["start_over_basin"] else "larger"
        return right(name, f"{truth:.3g}, {side} than the divided curve's {divided['start_over_basin']:.3g}: "
                           "the warm-up's small η_t shrinks the raw start.")
    if math.isclose(value, divided["start_over_basin"], rel_tol=1e-6):
        return wrong(name, "that is the ratio of the curve divided by η (the one in the summary).",
                     "undo the division first: curve * lrs.")
    if math.isclose(value, phase_levels(curve / lrs, bins)["start_over_basin"], rel_tol=1e-6):
        return wrong(name, "that divides by η a second time.", "the curve is already divided: multiply.")
    if math.isclose(value, raw["end_over_basin"], rel_tol=1e-6):
        return wrong(name, "that is the end/basin ratio.", "the first chunk over the basin: start_over_basin.")
    if math.isclose(value, 1 / truth, rel_tol=1e-6):
        return wrong(name, "that is basin over start.", "start divided by basin.")
    return wrong(name, "that is not the raw curve's start/basin ratio.", "phase_levels(curve * lrs)['start_over_basin'].")
