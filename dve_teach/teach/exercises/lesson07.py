"""Checks for the exercises inside lesson 07 (data selection)."""
from __future__ import annotations

import math

import torch

from . import exercise, not_yet, number, right, wrong
from ...influence.metrics import precision_at_k, roc_auc

__all__ = ["check_auc_by_pairs", "check_precision_at_k"]



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


@exercise
def check_precision_at_k(answer, scores, is_flipped, k: int):
    """answer: the share of flipped points among the k highest `scores`."""
    name = "precision@k by hand"
    if answer is None:
        return not_yet(name, "take scores.argsort(descending=True)[:k] and the mean of is_flipped there.")
    value = number(answer)
    truth = precision_at_k(scores, is_flipped, k)
    if math.isclose(value, truth, abs_tol=1e-9):
        return right(name, f"{truth:.2f} of the top {k} are flipped.")
    top = torch.as_tensor(scores).argsort()[:k]
    if math.isclose(value, float(torch.as_tensor(is_flipped)[top].double().mean()), abs_tol=1e-9):
        return wrong(name, "that takes the k LOWEST scores.", "sort in descending order.")
    return wrong(name, "that is not the share of flipped points in the top k.", "mean of is_flipped over the top-k indices.")
