"""How well an estimate matches the exact LOO: rank and linear correlation, sign agreement.

``fidelity(estimate, truth)`` compares two score tables [n_points, n_test] column by column
(one column per test point) and averages over the test points, as the paper's Figure 2 does for
the Spearman correlation with exact TSLOO (paper §5.1).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["fidelity"]


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
