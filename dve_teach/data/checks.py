"""Argument checks shared by every layer: integers, real numbers and index lists given in any of
the forms users write them (Python ints and floats, numpy scalars and arrays, 0-d and 1-D tensors),
with errors that name the argument and say what to pass instead."""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
import torch

__all__ = ["as_int", "as_number", "as_index_list", "as_flag", "as_device"]


def _scalar(v: Any) -> Any:
    """A 0-d/one-element tensor or array as its Python value; anything else unchanged."""
    if isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim == 0:
        return v.item()
    return v


def as_int(v: Any, what: str, minimum: Optional[int] = None) -> int:
    """An integer (int, numpy integer, 0-d integer tensor, or a whole float such as 32.0), at
    least `minimum`; TypeError / ValueError naming `what` otherwise."""
    v = _scalar(v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{what} must be an integer, got {type(v).__name__} {v!r}")
    if isinstance(v, numbers.Integral):
        if abs(int(v)) >= 2 ** 62:   # no count or index is that large; float(v) would overflow
            raise ValueError(f"{what} must be an integer below 2**62, got one with {len(str(abs(int(v))))} digits")
    elif not float(v).is_integer():
        raise ValueError(f"{what} must be a whole number, got {v!r}")
    if minimum is not None and int(v) < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {v!r}")
    return int(v)


def as_number(v: Any, what: str) -> float:
    """A real number from a float/int, a numpy scalar or a one-element tensor/array."""
    if isinstance(v, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{what} must be a number, got {type(v).__name__} {v!r}")
    if isinstance(v, (torch.Tensor, np.ndarray)):
        size = v.numel() if isinstance(v, torch.Tensor) else v.size
        if size != 1:
            raise TypeError(f"{what} must be a single number, got an array of shape {tuple(v.shape)}")
        if v.dtype in (torch.bool, np.bool_) or (isinstance(v, torch.Tensor) and v.is_complex()) \
                or (isinstance(v, np.ndarray) and np.iscomplexobj(v)):
            raise TypeError(f"{what} must be a real number, got dtype {v.dtype}")
        return float(v.reshape(-1)[0])
    if isinstance(v, numbers.Real):
        return float(v)
    raise TypeError(f"{what} must be a number, got {type(v).__name__}")


def as_index_list(x: Any, what: str) -> list[int]:
    """A 1-D sequence of integer indices (list, tuple, range, numpy array, int tensor) as a list."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        floating = x.is_floating_point() or x.is_complex() if isinstance(x, torch.Tensor) else \
            not np.issubdtype(x.dtype, np.integer)
        if x.ndim != 1 or floating or x.dtype in (torch.bool, np.bool_):
            raise TypeError(f"{what} must be a 1-D sequence of integers, got an array of shape "
                            f"{tuple(x.shape)} and dtype {x.dtype}")
        return [int(v) for v in x.tolist()]
    if isinstance(x, (numbers.Number, str, bytes)) or x is None or not hasattr(x, "__len__"):
        raise TypeError(f"{what} must be a sequence of integers (e.g. [{x!r}]), got {type(x).__name__}")
    out = []
    for v in x:
        v = _scalar(v)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not float(v).is_integer():
            raise TypeError(f"{what} must hold integers, got {v!r}")
        out.append(int(v))
    return out


def as_flag(v: Any, what: str) -> bool:
    """A boolean switch: True/False (or numpy bools). Strings such as "False" are refused, since
    they are truthy and would silently switch the option on."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise TypeError(f"{what} must be True or False, got {type(v).__name__} {v!r}")


def as_device(device: Any) -> torch.device:
    """A usable torch.device from 'cpu', 'cuda', 'cuda:0' or a torch.device; clear errors when the
    name is unknown or CUDA is absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'cpu', 'cuda' or a torch.device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={str(dev)!r} was asked for but CUDA is not available; use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda' (got {str(dev)!r}): dve_teach is tested on those")
    return dev
