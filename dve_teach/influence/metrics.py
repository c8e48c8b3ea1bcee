"""How well an estimate matches the exact LOO: rank and linear correlation, sign agreement.

``fidelity(estimate, truth)`` compares two score tables [n_points, n_test] column by column
(one column per test point) and averages over the test points, as the paper's Figure 2 does for
the Spearman correlation with exact TSLOO (paper §5.1).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["fidelity", "roc_auc", "precision_at_k"]


def _as_matrix(x: Any, name: str) -> np.ndarray:
    from .scores import Influence

    if isinstance(x, Influence):
        raise TypeError(f"{name} is an Influence (one row per occurrence); pass a table of scores: "
                        f"`{name}.total()[points]` for all-occurrence removals of `points`, or "
                        f"`{name}.at(points, steps)` / `{name}.per_occurrence[rows]` for single occurrences")
    try:
        import torch
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy() if x.dtype not in (torch.float16, torch.bfloat16) else x.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        raw = np.asarray(x)
    except ValueError as e:  # ragged lists
        raise ValueError(f"{name} must be a rectangular table of numbers [n_points, n_test]: {e}") from None
    if raw.dtype == object or raw.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (float or int), got dtype {raw.dtype}: pass the scores, "
                        "e.g. a float Tensor [n_points, n_test]")
    a = raw.astype(np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be [n_points, n_test] (or 1-D for one test point), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds NaN or inf values; fidelity needs finite scores")
    return a


def fidelity(estimate: Any, truth: Any) -> dict:
    """Agreement of `estimate` with `truth`, both Tensor/array [n_points, n_test] (1-D = one test point).

    Returns a dict of floats:
      - ``spearman``, ``pearson``: `scipy.stats` correlation over the points of each test column,
        averaged over the test columns where both columns vary (a constant column has no
        correlation and is skipped); NaN when no column is usable;
      - ``sign_agreement``: fraction of all entries with ``sign(estimate) == sign(truth)``;
      - ``n_test_used``: how many columns entered the correlations.
    """
    from scipy import stats

    est, tru = _as_matrix(estimate, "estimate"), _as_matrix(truth, "truth")
    if est.shape != tru.shape:
        raise ValueError(f"estimate has shape {est.shape} but truth {tru.shape}: both must be "
                         "[n_points, n_test] with the same points in the same order")
    if est.size == 0:
        raise ValueError("estimate and truth are empty")
    usable = [j for j in range(est.shape[1])
              if est.shape[0] >= 2 and np.ptp(est[:, j]) > 0 and np.ptp(tru[:, j]) > 0]
    sp = [float(stats.spearmanr(est[:, j], tru[:, j])[0]) for j in usable]
    pe = [float(stats.pearsonr(est[:, j], tru[:, j])[0]) for j in usable]
    return {
        "spearman": float(np.mean(sp)) if sp else math.nan,
        "pearson": float(np.mean(pe)) if pe else math.nan,
        "sign_agreement": float(np.mean(np.sign(est) == np.sign(tru))),
        "n_test_used": len(usable),
    }


def _scores_and_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """1-D float scores and 1-D {0, 1} labels of the same length, both with a clear error otherwise."""
    try:
        import torch
        scores = scores.detach().cpu().double().numpy() if isinstance(scores, torch.Tensor) else scores
        labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1 or len(s) != len(y):
        raise ValueError(f"scores and labels must be 1-D of the same length (one per point), got shapes "
                         f"{s.shape} and {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores hold NaN or inf values; rank finite scores")
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("labels must be 0/1 (or booleans): 1 marks the points to find, e.g. the flipped ones")
    return s, y.astype(np.int64)


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve of ranking by `scores` (higher = more likely positive) against
    0/1 `labels`, both 1-D [n]: the probability that a random positive outscores a random
    negative (ties count ½). `sklearn.metrics.roc_auc_score` underneath; 0.5 = chance.
    Raises ValueError when the labels hold only one class (the AUC is undefined)."""
    from sklearn.metrics import roc_auc_score

    s, y = _scores_and_labels(scores, labels)
    if y.min() == y.max():
        raise ValueError("labels hold only one class: the ROC-AUC needs positives and negatives")
    return float(roc_auc_score(y, s))


def precision_at_k(scores: Any, labels: Any, k: int) -> float:
    """Fraction of positives among the `k` highest `scores` (1-D [n], higher = more likely
    positive) — what a person inspecting the top k finds. Ties at the k-th score are broken by
    the lower index first (a stable sort of −scores), so the result is deterministic."""
    s, y = _scores_and_labels(scores, labels)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(s):
        raise ValueError(f"k must be an integer in 1..{len(s)} (the number of points), got {k!r}")
    top = np.argsort(-s, kind="stable")[: int(k)]
    return float(y[top].mean())
