"""Learning-rate schedules η_t: callables of the step, usable as ``lr=`` in `dt.train`.

Each schedule is a small frozen dataclass (its constructor arguments are its settings):
``sched(t)`` returns η_t for step t = 0, 1, ...; ``sched.values(T)`` the Tensor[T] of
η_0..η_{T−1} (what `dt.train` records as ``traj.lrs``); ``sched.plot(T, ax=None)`` draws it
(matplotlib is imported only then). Every η_t enters the update
θ_{t+1} = θ_t − η_t((1/b) Σ_{i∈B_t} ∇ℓ(θ_t, z_i) + λθ_t) and both the front factor η_t/b and
every later factor (I − η_k H_k) of the data value embedding, so any schedule is handled exactly
(paper §3, Eq. (1)–(2)); the paper's phase figure divides each batch's influence by its η_t
(§5.3, Figure 1(a)).

Formulas (t = 0 .. total_steps − 1, w = warmup):
  - ``constant(lr)``: η_t = lr.
  - ``warmup_cosine(peak, total_steps, warmup=0, final=0)``: η_t = peak·(t+1)/w for t < w, then
    η_t = final + (peak − final)·½(1 + cos(π (t − w)/(total_steps − w))).
  - ``linear_decay(start, total_steps, end=0, warmup=0)``: η_t = start·(t+1)/w for t < w, then
    η_t = start + (end − start)·(t − w)/(total_steps − w).
  - ``step_decay(lr, step_size, gamma=0.1)``: η_t = lr · gamma^⌊t / step_size⌋.
A schedule with ``total_steps`` refuses a step ≥ total_steps (a run longer than it was built for).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch

__all__ = ["LRSchedule", "constant", "warmup_cosine", "linear_decay", "step_decay"]


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class LRSchedule:
    """Base of the schedules: `__call__`, `values`, `plot`. Subclasses define `_eta(t)`."""

    total_steps: Optional[int] = None

    def __call__(self, t: int) -> float:
        if isinstance(t, bool) or not float(t).is_integer() or t < 0:
            raise ValueError(f"the step must be an integer >= 0, got {t!r}")
        t = int(t)
        if self.total_steps is not None and t >= self.total_steps:
            raise ValueError(f"step {t} is past this schedule's total_steps={self.total_steps}: build it with "
                             f"total_steps=len(schedule) (the number of SGD steps of the run)")
        return float(self._eta(t))

    def _eta(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, T: Optional[int] = None) -> torch.Tensor:
        """η_0 .. η_{T−1} as Tensor[T] (float64); T defaults to ``total_steps``."""
        T = self._length(T)
        return torch.tensor([self(t) for t in range(T)], dtype=torch.float64)

    def _length(self, T: Optional[int]) -> int:
        if T is None:
            if self.total_steps is None:
                raise ValueError(f"{type(self).__name__} has no total_steps: pass the number of steps, values(T)")
            return self.total_steps
        return _count("T", T, 1)

    def plot(self, T: Optional[int] = None, ax=None):
        """Draw η_t against t on `ax` (a new figure when None); returns the Axes."""
        values = self.values(T).numpy()
        if ax is None:
            from matplotlib.figure import Figure
            ax = Figure(figsize=(4.5, 2.6), dpi=80).subplots()
        ax.plot(range(len(values)), values, lw=1.5)
        ax.set(xlabel="step t", ylabel="learning rate η_t", title=repr(self), ylim=(0, None))
        return ax


@dataclass(frozen=True)
class constant(LRSchedule):
    """η_t = lr at every step."""

    lr: float

    def __post_init__(self):
        _positive("lr", self.lr, allow_zero=True)

    def _eta(self, t: int) -> float:
        return float(self.lr)


def _warm(peak: float, t: int, warmup: int) -> Optional[float]:
    return peak * (t + 1) / warmup if t < warmup else None


def _check_warmup(warmup: int, total_steps: int) -> None:
    _count("total_steps", total_steps, 1)
    _count("warmup", warmup, 0)
    if warmup >= total_steps:
        raise ValueError(f"warmup={warmup} must be smaller than total_steps={total_steps}: leave steps to decay")


@dataclass(frozen=True)
class warmup_cosine(LRSchedule):
    """Linear warm-up to `peak` over `warmup` steps, then a half cosine from `peak` down towards `final`."""

    peak: float
    total_steps: int
    warmup: int = 0
    final: float = 0.0

    def __post_init__(self):
        _positive("peak", self.peak)
        _positive("final", self.final, allow_zero=True)
        _check_warmup(self.warmup, self.total_steps)
        if self.final > self.peak:
            raise ValueError(f"final={self.final} is above peak={self.peak}: a cosine decay goes down")

    def _eta(self, t: int) -> float:
        w = _warm(self.peak, t, self.warmup)
        if w is not None:
            return w
        frac = (t - self.warmup) / (self.total_steps - self.warmup)
        return self.final + (self.peak - self.final) * 0.5 * (1.0 + math.cos(math.pi * frac))


@dataclass(frozen=True)
class linear_decay(LRSchedule):
    """Linear warm-up to `start` over `warmup` steps, then a straight line from `start` towards `end`."""

    start: float
    total_steps: int
    end: float = 0.0
    warmup: int = 0

    def __post_init__(self):
        _positive("start", self.start)
        _positive("end", self.end, allow_zero=True)
        _check_warmup(self.warmup, self.total_steps)

    def _eta(self, t: int) -> float:
        w = _warm(self.start, t, self.warmup)
        if w is not None:
            return w
        return self.start + (self.end - self.start) * (t - self.warmup) / (self.total_steps - self.warmup)


@dataclass(frozen=True)
class step_decay(LRSchedule):
    """η_t = lr · gamma^⌊t / step_size⌋: multiply by `gamma` every `step_size` steps."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _positive("lr", self.lr)
        _count("step_size", self.step_size, 1)
        _positive("gamma", self.gamma)

    def _eta(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.step_size)
