"""Checks for the exercises inside lesson 07 (data selection)."""
from __future__ import annotations

import math

import torch

from . import exercise, not_yet, number, right, wrong
from ...influence.metrics import roc_auc

__all__ = ["check_auc_by_pairs", "check_combined_auc"]



@exercise
def check_auc_by_pairs(answer, scores, is_flipped):
    """answer: the share of (flipped, clean) pairs in which `scores` ranks the flipped point higher
    (ties count one half): the ROC-AUC."""
    name = "ROC-AUC by pairs"
    if answer is None:
        return not_yet(name, "compare every flipped point's score with every clean point's: (s_f[:, None] > s_c[None, :]).")
    value = number(answer)
    truth = roc_auc(scores, is_flipped)
    if math.isclose(value, truth, abs_tol=1e-9):
        return right(name, f"{truth:.3f} of the pairs are in the right order: that is the ROC-AUC.")
    if math.isclose(value, 1 - truth, abs_tol=1e-9):
        return wrong(name, "that counts the pairs in the wrong order.", "the flipped point should score HIGHER.")
    return wrong(name, "that is not the share of correctly ordered pairs.", "mean of (s_f[:, None] > s_c[None, :]) over all pairs.")


def _ranks(scores) -> torch.Tensor:
    """Rank of every score, 0 = lowest (ties by position: scores here are continuous)."""
    return torch.as_tensor(scores).double().argsort().argsort().double()


@exercise
def check_combined_auc(answer, first, second, is_flipped):
    """answer: the ROC-AUC of the rank average of two scores — each point's rank under `first` plus
    its rank under `second` — for finding `is_flipped`. Two scores on different scales are combined
    by ranks, not by adding the raw values."""
    name = "combine two scores by rank"
    if answer is None:
        return not_yet(name, "rank each score (argsort of argsort), add the two ranks, then take the ROC-AUC.")
    value = number(answer)
    truth = roc_auc(_ranks(first) + _ranks(second), is_flipped)
    if math.isclose(value, truth, abs_tol=1e-9):
        a, b = roc_auc(first, is_flipped), roc_auc(second, is_flipped)
        verdict = "better than both" if truth > max(a, b) else "not better than both"
        return right(name, f"{truth:.3f}: {verdict} of the two alone ({a:.3f}, {b:.3f}).")
    raw = roc_auc(torch.as_tensor(first).double() + torch.as_tensor(second).double(), is_flipped)
    if math.isclose(value, raw, abs_tol=1e-9) and not math.isclose(raw, truth, abs_tol=1e-9):
        return wrong(name, "that adds the raw scores: the one with the larger scale decides alone.",
                     "add ranks, which put both scores on the same scale.")
    for alone in (first, second):
        if math.isclose(value, roc_auc(alone, is_flipped), abs_tol=1e-9):
            return wrong(name, "that is the ROC-AUC of one score alone.", "combine both: the sum of the two ranks.")
    if math.isclose(value, 1 - truth, abs_tol=1e-9):
        return wrong(name, "that ranks the flipped points low.", "a higher combined rank should mean 'more likely flipped'.")
    return wrong(name, "that is not the ROC-AUC of the rank sum.", "dt.metrics.roc_auc(rank_a + rank_b, is_flipped).")
