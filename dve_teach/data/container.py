"""`Data`: a pair of tensors (X, y) with checks, and the coercion every public function uses.

Every function of dve_teach that takes data accepts a `Data` or a plain ``(X, y)`` tuple of
tensors (or numpy arrays), so users can bring their own data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch

__all__ = ["Data", "Split", "as_data", "DataLike", "check_finite", "nonfinite_rows"]


@dataclass(frozen=True)
class Data:
    """Inputs ``X`` (Tensor[n, ...]) and targets ``y`` (Tensor[n] or Tensor[n, k])."""

    X: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.X, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError("Data(X, y) needs two torch tensors; use dt.as_data((X, y)) to convert arrays")
        if self.X.ndim == 0 or self.y.ndim == 0:
            raise ValueError("X and y need a leading example dimension (shape [n, ...])")
        if self.X.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"X has {self.X.shape[0]} examples but y has {self.y.shape[0]}: "
                "they must have the same first dimension"
            )
        if self.X.device != self.y.device:
            raise ValueError(f"X is on {self.X.device} but y on {self.y.device}: move both with .to(device)")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, index: Any) -> "Data":
        """Rows of the data: ``data[idx]`` with an int, slice, list or index tensor."""
        if isinstance(index, int):
            index = [index]
        return Data(self.X[index], self.y[index])

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> "Data":
        """Move to `device`; floating tensors also take `dtype` (integer labels stay integer)."""
        X = self.X.to(device=device, dtype=dtype if (dtype and self.X.is_floating_point()) else None)
        y = self.y.to(device=device, dtype=dtype if (dtype and self.y.is_floating_point()) else None)
        return Data(X, y)

    @property
    def device(self) -> torch.device:
        return self.X.device


@dataclass(frozen=True)
class Split:
    """A train/test pair, as returned by every function of `dt.datasets`.

    ``images``: for image data, the (train, test) pixels before standardisation (for drawing)."""

    train: Data
    test: Data
    name: str = ""
    images: Optional[tuple] = None


DataLike = Union[Data, tuple, list]


def _tensor(a: Any, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    raise TypeError(f"{what} must be a torch.Tensor or numpy array, got {type(a).__name__}")


def as_data(data: DataLike, name: str = "data") -> Data:
    """Coerce a `Data` or an ``(X, y)`` pair into `Data`, with a clear error otherwise."""
    if isinstance(data, Data):
        return data
    if isinstance(data, Split):
        raise TypeError(f"{name} is a Split (train and test); pass split.train or split.test")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return Data(_tensor(data[0], f"{name}[0] (X)"), _tensor(data[1], f"{name}[1] (y)"))
    raise TypeError(f"{name} must be a dt.Data or an (X, y) tuple of tensors, got {type(data).__name__}")


def nonfinite_rows(t: torch.Tensor) -> list[int]:
    """Indices of the rows of `t` holding a NaN or ±inf (integer tensors have none)."""
    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return []
    return torch.nonzero(~torch.isfinite(t.reshape(t.shape[0], -1)).all(1)).reshape(-1).tolist()


def check_finite(data: Data, name: str = "data") -> None:
    """Refuse data whose X or y rows hold NaN/inf, naming the rows (ValueError)."""
    for part in ("X", "y"):
        bad = nonfinite_rows(getattr(data, part))
        if bad:
            more = f" … ({len(bad)} in all)" if len(bad) > 10 else ""
            raise ValueError(f"{name}.{part} rows {bad[:10]}{more} hold NaN or inf: drop or repair them "
                             f"(e.g. keep = torch.isfinite({name}.{part}.reshape(len({name}.{part}), -1)).all(1))")
