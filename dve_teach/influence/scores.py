"""`Influence`: scores of (point, step) occurrences on test points, and their per-point totals.

Convention (DEVELOPERS.md): a score estimates ``measure(θ'_T) − measure(θ_T)`` where θ' is the
run without that occurrence; with the test loss as measure, positive = the point helped.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.checks import as_index_list

__all__ = ["Influence"]


@dataclass
class Influence:
    """Per-occurrence scores.

    per_occurrence: Tensor[n_occ, n_test]; points, steps: Tensor[n_occ] (int64), the training
    index and step of each occurrence; n_train: the training-set size (rows of `total`).
    """

    per_occurrence: torch.Tensor
    points: torch.Tensor
    steps: torch.Tensor
    n_train: int
    method: str = ""

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

    def by_step(self) -> torch.Tensor:
        """Summed over the points of each step: Tensor[T, n_test] (the per-batch curve of §5.3)."""
        T = int(self.steps.max()) + 1 if len(self.steps) else 0
        out = torch.zeros(T, self.per_occurrence.shape[1], dtype=self.per_occurrence.dtype,
                          device=self.per_occurrence.device)
        return out.index_add_(0, self.steps.to(out.device), self.per_occurrence)

    @property
    def n_test(self) -> int:
        return int(self.per_occurrence.shape[1])

    def __repr__(self) -> str:
        return (f"Influence(method={self.method!r}, occurrences={len(self.points)}, "
                f"n_test={self.n_test}, n_train={self.n_train})")
