"""Run-wide settings read from the environment.

``DVE_TEACH_FAST=1`` (set by the notebook tests) shrinks problem sizes in the lessons, the demo
and the benchmark so that they run in seconds; `sized(full, fast)` picks the right one.
``DVE_TEACH_SEED=k`` (default 0) is the one seed a lesson derives all its seeds from (`seed`), so
a lesson's checked claims can be re-run for other seeds.
"""
from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

__all__ = ["fast_mode", "sized", "seed"]


def fast_mode() -> bool:
    """True when the environment variable ``DVE_TEACH_FAST`` is set to 1/true/yes."""
    return os.environ.get("DVE_TEACH_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def sized(full: T, fast: T) -> T:
    """`fast` in fast mode, else `full` (e.g. ``n_train = sized(1000, 300)``)."""
    return fast if fast_mode() else full


def seed(offset: int = 0) -> int:
    """The base seed ``DVE_TEACH_SEED`` (default 0) plus `offset`: a lesson's k-th seed is ``seed(k)``.

    Raises ValueError, naming the fix, when the variable is not a non-negative integer."""
    raw = os.environ.get("DVE_TEACH_SEED", "").strip()
    if not raw:
        base = 0
    else:
        try:
            base = int(raw)
        except ValueError:
            raise ValueError(f"DVE_TEACH_SEED={raw!r} is not an integer: set it to 0, 1, 2, ... "
                             "or unset it (default 0)") from None
        if base < 0:
            raise ValueError(f"DVE_TEACH_SEED={base} is negative: use a seed >= 0")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"seed(offset) takes a non-negative int, got {offset!r}")
    return base + offset
