"""Run-wide settings read from the environment.

``DVE_TEACH_FAST=1`` (set by the notebook tests) shrinks problem sizes in the lessons, the demo
and the benchmark so that they run in seconds; `sized(full, fast)` picks the right one.
"""
from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

__all__ = ["fast_mode", "sized"]


def fast_mode() -> bool:
    """True when the environment variable ``DVE_TEACH_FAST`` is set to 1/true/yes."""
    return os.environ.get("DVE_TEACH_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def sized(full: T, fast: T) -> T:
    """`fast` in fast mode, else `full` (e.g. ``n_train = sized(1000, 300)``)."""
    return fast if fast_mode() else full
