"""`Influence`: scores of (point, step) occurrences on test points, and their per-point totals.

Convention (DEVELOPERS.md): a score estimates ``measure(θ'_T) − measure(θ_T)`` where θ' is the
run without that occurrence; with the test loss as measure, positive = the point helped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..data.checks import as_index_list

__all__ = ["Influence"]


@dataclass
class Influence:
    """Per-occurrence scores.

    per_occurrence: Tensor[n_occ, n_test]; points, steps: Tensor[n_occ] (int64), the training
    index and step of each occurrence; n_train: the training-set size (rows of `total`); lrs: the
    run's η_t, Tensor[T] (set by the estimators; `by_step(per_lr=True)` uses it).
    """

    per_occurrence: torch.Tensor
    points: torch.Tensor
    steps: torch.Tensor
    n_train: int
    method: str = ""
    lrs: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        self.points = torch.as_tensor(self.points, dtype=torch.int64).cpu()
        self.steps = torch.as_tensor(self.steps, dtype=torch.int64).cpu()
        if self.per_occurrence.ndim != 2 or not (
                self.per_occurrence.shape[0] == len(self.points) == len(self.steps)):
            raise ValueError("per_occurrence must be [n_occ, n_test] with one point and step per row")

    def total(self) -> torch.Tensor:
        """Summed over each point's occurrences: Tensor[n_train, n_test] (zero rows for points
        never seen) — the first-order estimate of removing the point from every step."""
        out = torch.zeros(self.n_train, self.per_occurrence.shape[1],
                          dtype=self.per_occurrence.dtype, device=self.per_occurrence.device)
        return out.index_add_(0, self.points.to(out.device), self.per_occurrence)

    def at(self, points, steps) -> torch.Tensor:
        """Rows for the given (point, step) pairs: Tensor[len(points), n_test]; a clear error if
        a pair is not an occurrence."""
        points, steps = as_index_list(points, "points"), as_index_list(steps, "steps")
        if len(points) != len(steps):
            raise ValueError(f"points has {len(points)} entries but steps has {len(steps)}: give one step per point")
        index = {(int(p), int(s)): r for r, (p, s) in enumerate(zip(self.points.tolist(), self.steps.tolist()))}
        rows = []
        for p, s in zip(points, steps):
            key = (p, s)
            if key not in index:
                raise KeyError(f"point {key[0]} was not in the batch of step {key[1]}")
            rows.append(index[key])
        return self.per_occurrence[torch.as_tensor(rows, dtype=torch.int64, device=self.per_occurrence.device)]

    def by_step(self, reduce: str = "sum", per_lr: bool = False, *, lrs=None, test: str = "each",
                T: Optional[int] = None) -> torch.Tensor:
        """The per-step view of the scores (the per-batch curve of paper §5.3, Figure 1(a)).

        reduce: over the occurrences (points) of each step t —
          ``"sum"``: Σ_{i∈B_t} s(i, t) (what removing the whole batch does, to first order);
          ``"mean"``: (1/|O_t|) Σ s(i, t); ``"mean_abs"``: (1/|O_t|) Σ |s(i, t)|, O_t the
          occurrences of step t held here (a step with none gives NaN for the means, 0 for the sum).
        per_lr: divide step t's value by η_t (``lrs``, default the run's own, which every estimator
          records), as the paper does "for a fair comparison" of steps with different learning rates.
        test: ``"each"`` -> Tensor[T, n_test], one column per test point; ``"mean"`` -> Tensor[T],
          the scores of the mean test measure (1/n_test) Σ_j s(i, t; z_j) reduced as above (for
          ``mean_abs`` the absolute value is taken after averaging over the test points).
        T: number of steps (default len(lrs) if given, else the last step held + 1).
        """
        if reduce not in ("sum", "mean", "mean_abs"):
            raise ValueError(f"reduce must be 'sum', 'mean' or 'mean_abs', got {reduce!r}")
        if test not in ("each", "mean"):
            raise ValueError(f"test must be 'each' (one column per test point) or 'mean', got {test!r}")
        scores = self.per_occurrence
        if test == "mean":
            scores = scores.mean(1, keepdim=True)
        if reduce == "mean_abs":
            scores = scores.abs()
        dev = scores.device
        lrs = self.lrs if lrs is None else lrs
        if lrs is not None:
            lrs = torch.as_tensor(lrs, dtype=torch.float64).reshape(-1).to(dev)
        held = int(self.steps.max()) + 1 if len(self.steps) else 0
        T = int(T) if T is not None else (len(lrs) if lrs is not None else held)
        if T < held:
            raise ValueError(f"T={T} but the scores hold step {held - 1}: T must be at least {held}")
        out = torch.zeros(T, scores.shape[1], dtype=scores.dtype, device=dev)
        out.index_add_(0, self.steps.to(dev), scores)
        if reduce != "sum":
            count = torch.zeros(T, dtype=scores.dtype, device=dev).index_add_(
                0, self.steps.to(dev), torch.ones(len(self.steps), dtype=scores.dtype, device=dev))
            out = out / count[:, None]   # 0/0 = NaN where a step has no occurrence held
        if per_lr:
            if lrs is None:
                raise ValueError("per_lr=True divides by η_t: this Influence carries no learning rates; pass "
                                 "lrs=traj.lrs")
            if len(lrs) != T:
                raise ValueError(f"lrs has {len(lrs)} values but there are T={T} steps: pass traj.lrs of the run")
            if bool((lrs[self.steps.to(dev)] <= 0).any()):
                raise ValueError("per_lr=True needs η_t > 0 at every step that holds scores")
            out = out / lrs.to(out.dtype)[:, None]
        return out[:, 0] if test == "mean" else out

    @property
    def n_test(self) -> int:
        return int(self.per_occurrence.shape[1])

    def __repr__(self) -> str:
        return (f"Influence(method={self.method!r}, occurrences={len(self.points)}, "
                f"n_test={self.n_test}, n_train={self.n_train})")
