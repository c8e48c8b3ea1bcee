"""Progress of long loops (exact replays, embedding fits, reverse sweeps): a tqdm bar, notebook-aware
(``tqdm.auto``), that appears only once the loop has run about two seconds, and is removed when it
ends (``leave=False``), so quick calls stay silent.

``progress``: None (default) = the bar after ~2 s where a bar can redraw (a terminal or Jupyter; in a
pipe or a log file it would print a line per update); True = at once, anywhere; False = never (the
lessons' widget models pass False: their status line says what runs).
"""
from __future__ import annotations

import sys
from typing import Iterable, Iterator, Optional, TypeVar

__all__ = ["bar", "step_bar", "live"]

T = TypeVar("T")


def live() -> bool:
    """Whether a bar can redraw in place: in Jupyter, or with stderr on a terminal."""
    return "ipykernel" in sys.modules or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())


def bar(total: int, desc: str, progress: Optional[bool] = None):
    """A tqdm bar over `total` steps named `desc` (update it yourself; close it when done)."""
    from tqdm.auto import tqdm
    disable = progress is False or (progress is None and not live())
    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=disable, delay=0.0 if progress else 2.0)


def step_bar(iterable: Iterable[T], total: int, desc: str, progress: Optional[bool] = None) -> Iterator[T]:
    """`iterable` (e.g. ``traj.iter_states(reverse=True)``) with a bar that counts its items."""
    b = bar(total, desc, progress)
    try:
        for item in iterable:
            yield item
            b.update(1)
    finally:
        b.close()
