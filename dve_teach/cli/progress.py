"""What the command line says while it works and beside each target it reports.

- `Steps`: a progress bar over a known list of named steps (the demo: train, exact LOO, then each
  estimator), on stderr so that ``--json`` output on stdout stays clean; tqdm's ``auto`` bar, so it
  renders as a notebook widget when called from Jupyter.
- `Log`: the bench's progress callback — one line per step it starts, with the seconds since the
  bench began, and a bar that counts the steps done; every section says how far it is (``seed 2/3``,
  ``edit 5/40``) in its messages.
- `verdict`: the word beside a target. A quality target (a correlation) is "met" or "NOT met"; a
  timing target is "met" or "not met on this machine", with the load average and CPU count, because
  other work on the cores slows every timing (a timing target measured on busy cores says little).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterator, Optional, Sequence

from ..data.progress import live

__all__ = ["Steps", "Log", "verdict", "machine_load"]


def _bar(**kw):
    from tqdm.auto import tqdm
    return tqdm(file=sys.stderr, dynamic_ncols=True, **kw)


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Steps:
    """A bar over `names` (each shown while it runs). ``with Steps(names, "demo") as s:`` then
    ``with s.step("exact LOO"): ...`` per step; `enabled=False` draws nothing."""

    def __init__(self, names: Sequence[str], desc: str, enabled: bool = True):
        self.names, self.desc, self.enabled, self.done = list(names), desc, enabled, 0
        self.start, self.live = time.perf_counter(), enabled and live()
        self.bar = _bar(total=len(self.names), desc=desc, unit="step", leave=True,
                        bar_format="{desc}: {n_fmt}/{total_fmt} steps |{bar:20}| {elapsed} {postfix}") \
            if self.live else None

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Show `name` as running; count it done when the block ends (also when it raises)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"now: {name}", refresh=True)
        elif self.enabled:
            _line(f"{self.desc} {self.done + 1}/{len(self.names)} [{time.perf_counter() - self.start:6.1f} s]: {name} ...")
        try:
            yield
        finally:
            self.done += 1
            if self.bar is not None:
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str("done", refresh=False)
            self.bar.close()
        elif self.enabled:
            _line(f"{self.desc}: {self.done}/{len(self.names)} steps in {time.perf_counter() - self.start:.1f} s")

    def __enter__(self) -> "Steps":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Log:
    """Bench progress: ``log(message)`` prints ``[  12.3 s] message`` above a bar counting the
    steps started so far (no total: the sections differ in length)."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.start, self.started = enabled, time.perf_counter(), 0
        self.bar = _bar(desc="bench", unit="step", leave=False,
                        bar_format="{desc}: {n_fmt} steps done, {elapsed} elapsed {postfix}") \
            if enabled and live() else None

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"[{time.perf_counter() - self.start:7.1f} s] {message}"
        if self.bar is None:
            _line(line)
            return
        from tqdm.auto import tqdm
        if self.started:
            self.bar.update(1)
        self.started += 1
        tqdm.write(line, file=sys.stderr)
        self.bar.set_postfix_str(f"now: {message[:70]}", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def machine_load() -> Optional[float]:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def verdict(met: bool, timing: bool = False, load: Optional[float] = None, cpus: Optional[int] = None) -> str:
    """The word beside a target: "met"; a missed quality target "NOT met"; a missed timing target
    "not met on this machine (load average L on C CPUs)" — a timing depends on what else runs — or,
    when the load was under half the CPUs, "NOT met (on a quiet machine: …)": then the cost is the
    method's, not the machine's."""
    if met:
        return "met"
    if not timing:
        return "NOT met"
    cpus = cpus if cpus is not None else os.cpu_count()
    if isinstance(load, (int, float)) and cpus and load < 0.5 * cpus:
        return f"NOT met (on a quiet machine: load average {load:g} on {cpus} CPUs)"
    busy = (f"load average {load:g} on {cpus} CPUs" if isinstance(load, (int, float)) else f"{cpus} CPUs")
    return f"not met on this machine ({busy}; other work on the cores slows every timing)"
