"""`Schedule`: the ordered list of index batches that SGD visits (the "trajectory's order").

Step t uses batch ``B_t = schedule.batches[t]``; the SGD update divides by the nominal batch
size ``b = schedule.batch_size`` (DEVELOPERS.md, "The maths"), so a short last batch simply
takes a smaller step. A schedule is immutable and hashable: edits return a new schedule, which
lets widgets cache results keyed by the order.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..data.checks import as_flag, as_int

__all__ = ["Schedule"]


def _count(v, what: str, minimum: int = 1) -> int:
    return as_int(v, what, minimum)


def _index(v, where: str) -> int:
    """A training index (int, numpy integer, 0-d integer tensor, whole float)."""
    try:
        return as_int(v, "index")
    except (TypeError, ValueError):
        raise TypeError(f"{where} holds {type(v).__name__} {v!r}; indices must be integers") from None


def _batch(t: int, b) -> tuple[int, ...]:
    if isinstance(b, (str, bytes)) or not hasattr(b, "__iter__"):
        raise TypeError(f"batch {t} is {type(b).__name__} {b!r}, not a list of indices: give a list of index lists")
    return tuple(_index(i, f"batch {t}") for i in b)


class Schedule:
    """An immutable, ordered list of index batches with nominal batch size `batch_size`.

    Build one with `shuffled`, `sequential`, `from_order`, `from_batches` or `curriculum`.
    ``len(s)`` is the number of steps T, ``s.batches[t]`` a tuple of training indices,
    ``s.n`` the size of the training set the indices point into.
    """

    __slots__ = ("_batches", "_batch_size", "_n")

    def __init__(self, batches: Iterable[Sequence[int]], batch_size: int, n: int):
        batch_size, n = _count(batch_size, "batch_size"), _count(n, "n (training-set size)")
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
            raise TypeError(f"batches must be a list of index lists, got {type(batches).__name__}")
        bs = tuple(_batch(t, b) for t, b in enumerate(batches))
        if not bs:
            raise ValueError("a schedule needs at least one batch")
        for t, b in enumerate(bs):
            if not b:
                raise ValueError(f"batch {t} is empty: every step needs at least one index")
            bad = [i for i in b if not 0 <= i < n]
            if bad:
                raise IndexError(f"batch {t} holds index {bad[0]} outside the training set [0, {n}); "
                                 "check n or the indices")
            if len(set(b)) != len(b):
                dup = next(i for i in b if b.count(i) > 1)
                raise ValueError(f"batch {t} holds index {dup} more than once; an index may appear "
                                 "once per batch (use several steps to repeat a point)")
        self._batches, self._batch_size, self._n = bs, int(batch_size), int(n)

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def from_order(cls, order: Sequence[int], batch_size: int, n: int | None = None,
                   drop_last: bool = False) -> "Schedule":
        """Cut a flat sequence of indices into consecutive batches of `batch_size`."""
        batch_size, drop_last = _count(batch_size, "batch_size"), as_flag(drop_last, "drop_last")
        if isinstance(order, (str, bytes)) or not hasattr(order, "__iter__"):
            raise TypeError(f"order must be a sequence of training indices, got {type(order).__name__} {order!r}")
        order = [_index(i, "the order") for i in order]
        chunks = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
        if drop_last and chunks and len(chunks[-1]) < batch_size:
            chunks = chunks[:-1]
        n = n if n is not None else (max(order) + 1 if order else 0)
        return cls(chunks, batch_size, n)

    @classmethod
    def shuffled(cls, n: int, batch_size: int, epochs: int = 1, seed: int = 0,
                 drop_last: bool = False) -> "Schedule":
        """`epochs` passes over ``range(n)``, each in a fresh random order drawn from `seed`."""
        n, batch_size = _count(n, "n (training-set size)"), _count(batch_size, "batch_size")
        epochs = _count(epochs, "epochs")
        rng = np.random.default_rng(seed)
        batches: list[list[int]] = []
        for _ in range(epochs):
            batches += cls.from_order(rng.permutation(n), batch_size, n, drop_last).batches
        return cls(batches, batch_size, n)

    @classmethod
    def sequential(cls, n: int, batch_size: int, epochs: int = 1, drop_last: bool = False) -> "Schedule":
        """`epochs` passes over ``0, 1, ..., n-1`` in order."""
        n, batch_size = _count(n, "n (training-set size)"), _count(batch_size, "batch_size")
        epochs = _count(epochs, "epochs")
        one = cls.from_order(range(n), batch_size, n, drop_last).batches
        return cls(list(one) * epochs, batch_size, n)

    @classmethod
    def from_batches(cls, batches: Iterable[Sequence[int]], batch_size: int | None = None,
                     n: int | None = None) -> "Schedule":
        """Use your own list of index lists. `batch_size` defaults to the largest batch and
        `n` to ``max index + 1``."""
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
            raise TypeError(f"batches must be a list of index lists, got {type(batches).__name__} {batches!r}")
        bs = [list(_batch(t, b)) for t, b in enumerate(batches)]
        if batch_size is None:
            batch_size = max((len(b) for b in bs), default=1)
        if n is None:
            n = max((max(b) for b in bs if b), default=0) + 1
        return cls(bs, batch_size, n)

    @classmethod
    def curriculum(cls, scores: Sequence[float], batch_size: int, epochs: int = 1,
                   descending: bool = False) -> "Schedule":
        """Visit points by increasing score (easy -> hard when the score is a difficulty);
        ``descending=True`` reverses it. The same order is used in every epoch; ties keep index order."""
        batch_size, epochs = _count(batch_size, "batch_size"), _count(epochs, "epochs")
        descending = as_flag(descending, "descending")
        try:
            s = np.asarray(scores, dtype=float).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"curriculum scores must be a sequence of finite numbers, got {scores!r:.80}") from None
        if not np.all(np.isfinite(s)):
            raise ValueError("curriculum scores must be finite numbers")
        order = np.argsort(-s if descending else s, kind="stable")
        return cls(list(cls.from_order(order, batch_size, len(s)).batches) * epochs, batch_size, len(s))

    # ---- reading ----------------------------------------------------------------------
    @property
    def batches(self) -> tuple[tuple[int, ...], ...]:
        return self._batches

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def n(self) -> int:
        return self._n

    @property
    def order(self) -> tuple[int, ...]:
        """All indices in the order they are visited (batches concatenated)."""
        return tuple(i for b in self._batches for i in b)

    def __len__(self) -> int:
        return len(self._batches)

    def occurrences(self, i: int) -> list[int]:
        """The steps t whose batch holds point `i` (ascending)."""
        i = self._check_point(i)
        return [t for t, b in enumerate(self._batches) if i in b]

    def occurrence_pairs(self) -> tuple[list[int], list[int]]:
        """(points, steps) of every (point, step) occurrence, in step order then batch order."""
        pts = [i for b in self._batches for i in b]
        sts = [t for t, b in enumerate(self._batches) for _ in b]
        return pts, sts

    # ---- edits (return a new Schedule) -----------------------------------------------
    def move(self, i: int, from_step: int, to_step: int) -> "Schedule":
        """Take point `i` out of batch `from_step` and append it to batch `to_step`."""
        i = as_int(i, "point")
        from_step, to_step = self._check_step(from_step), self._check_step(to_step)
        if i not in self._batches[from_step]:
            raise ValueError(f"point {i} is not in batch {from_step}; it is in steps {self.occurrences(i)}")
        if from_step == to_step:
            return self
        if i in self._batches[to_step]:
            raise ValueError(f"point {i} is already in batch {to_step}")
        if len(self._batches[from_step]) == 1:
            raise ValueError(f"moving point {i} would leave batch {from_step} empty; use swap() instead")
        bs = [list(b) for b in self._batches]
        bs[from_step].remove(i)
        bs[to_step].append(i)
        return Schedule(bs, self._batch_size, self._n)

    def swap(self, step_a: int, step_b: int) -> "Schedule":
        """Exchange the whole batches of two steps."""
        step_a, step_b = self._check_step(step_a), self._check_step(step_b)
        bs = list(self._batches)
        bs[step_a], bs[step_b] = bs[step_b], bs[step_a]
        return Schedule(bs, self._batch_size, self._n)

    def reversed(self) -> "Schedule":
        """The same batches visited last-to-first."""
        return Schedule(self._batches[::-1], self._batch_size, self._n)

    # ---- helpers -----------------------------------------------------------------------
    def _check_step(self, t: int) -> int:
        t = as_int(t, "step")
        if not -len(self) <= t < len(self):
            raise IndexError(f"step {t} is out of range: the schedule has {len(self)} steps (0..{len(self) - 1})")
        return t % len(self)

    def _check_point(self, i: int) -> int:
        i = as_int(i, "point")
        if not 0 <= i < self._n:
            raise IndexError(f"point {i} is outside the training set [0, {self._n})")
        return i

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Schedule) and self._batches == other._batches
                and self._batch_size == other._batch_size and self._n == other._n)

    def __hash__(self) -> int:
        return hash((self._batches, self._batch_size, self._n))

    def __repr__(self) -> str:
        return f"Schedule(steps={len(self)}, batch_size={self._batch_size}, n={self._n})"
