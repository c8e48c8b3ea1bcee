"""Checks for the exercises inside lesson 06 (phases of influence)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, right, whole, wrong
from ...influence.phases import phase_levels

__all__ = ["check_phase_curve", "check_basin"]


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
def check_basin(answer, curve, bins: int = 10):
    """answer: which of the `bins` consecutive chunks of steps (0 = the first) is the basin of `curve`:
    the lowest chunk mean between the first and the last (`dt.phases.phase_levels`)."""
    name = "where the basin is"
    if answer is None:
        return not_yet(name, "np.array_split the curve into 10 chunks and find the lowest mean, ends excluded.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a chunk index.", f"answer with an integer 1..{bins - 2}.")
    answer = whole(answer)
    lv = phase_levels(curve, bins)
    if int(answer) == lv["basin_bin"]:
        return right(name, f"chunk {lv['basin_bin']} of {bins}: {lv['start_over_basin']:.1f}x below the start, "
                           f"{lv['end_over_basin']:.1f}x below the end.")
    if int(answer) in (0, bins - 1):
        return wrong(name, "the basin lies between the start and the end.", "exclude the first and the last chunk.")
    return wrong(name, f"chunk {int(answer)} is not the lowest one in between.", "compare the chunk means.")
