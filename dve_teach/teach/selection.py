"""Lesson 07's model: online data selection inside two windows of the run -> final test loss and
selection cost, against selecting never and always (paper §5.3, Figure 1(b)). Plain Python (no
ipywidgets); `dve_teach.teach.widgets.SelectionExplorer` is the thin view over it.

Each setting is trained once per seed with `dt.curation.select_and_train` (seed k: the k-th
shuffled order and the k-th candidate draws; the model's initialisation and the data are fixed),
and the mean and spread over the seeds are reported.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import nn

from . import plots
from ..data.checks import as_int, as_number
from ..data.container import Data
from ..influence.curation import Selection, select_and_train
from ..training import lr as lrs
from ..training.schedule import Schedule
from .explorers import _threads

__all__ = ["SelectionModel", "STRATEGIES", "selection_figure"]

#: The five timings of the lesson, as (early window, late window) fractions of the run.
STRATEGIES = {"never": [], "always": [(0.0, 1.0)], "early only": [(0.0, 0.1)], "late only": [(0.7, 1.0)],
              "early + late": [(0.0, 0.1), (0.7, 1.0)]}


class SelectionModel:
    """State: ``early`` and ``late`` windows, (start, stop) fractions of the T steps (stop
    excluded; an empty window selects nothing). ``update()`` trains every seed with selection in
    both windows (cached), ``summary()``, ``figure()``; ``run(windows)`` any list of windows.

    model: the untrained network; pool: training data (possibly noisy); validation: the clean data
    whose gradient the batches should align with; test: held-out data for the final loss.
    epochs, batch_size, peak: the run (`dt.lr.warmup_cosine`, 10% warm-up); ratio: candidates per
    kept point; val_batch_size: the validation batch of each selected step; seeds: the runs averaged.
    """

    def __init__(self, model: nn.Module, pool: Data, validation: Data, test: Data, *, epochs: int = 5,
                 batch_size: int = 32, peak: float = 0.4, ratio: int = 4, val_batch_size: int = 32,
                 seeds: Sequence[int] = (0, 1, 2), early=(0.0, 0.1), late=(0.7, 1.0)):
        self.model, self.pool, self.validation, self.test = model, pool, validation, test
        self.epochs, self.batch_size, self.peak, self.ratio = epochs, batch_size, peak, ratio
        self.val_batch_size, self.seeds = val_batch_size, seeds
        self.early, self.late = tuple(early), tuple(late)
        self._settings()
        self._cache: dict = {}

    def _settings(self) -> tuple:
        """Every setting of the runs, checked (they may be set after construction: no silent truncation
        of epochs=2.9), and all of them in the cache key."""
        self.epochs = as_int(self.epochs, "epochs", 1)
        self.batch_size = as_int(self.batch_size, "batch_size", 1)
        self.peak = as_number(self.peak, "peak")
        self.ratio = as_int(self.ratio, "ratio", 1)
        self.val_batch_size = as_int(self.val_batch_size, "val_batch_size", 1)
        if isinstance(self.seeds, (str, bytes)) or not hasattr(self.seeds, "__iter__"):
            raise TypeError(f"seeds must be a list of integers, got {self.seeds!r}")
        self.seeds = [as_int(s, "seeds", 0) for s in self.seeds]
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one seed")
        return self.epochs, self.batch_size, round(self.peak, 10), self.ratio, self.val_batch_size, tuple(self.seeds)

    @property
    def T(self) -> int:
        return len(self._order(self.seeds[0]))

    def _order(self, seed: int) -> Schedule:
        return Schedule.shuffled(len(self.pool), self.batch_size, self.epochs, seed=seed)

    def steps(self, windows: Sequence) -> list[tuple[int, int]]:
        """Fractions -> steps: (round(a·T), round(b·T)); refuses fractions outside [0, 1]."""
        out = []
        for w in windows:
            if isinstance(w, (str, bytes)) or not hasattr(w, "__len__") or len(w) != 2:
                raise ValueError(f"a window must be a pair (start, stop) of fractions of the run, got {w!r}")
            a, b = as_number(w[0], "window start"), as_number(w[1], "window stop")
            if not 0 <= a <= b <= 1:
                raise ValueError(f"a window ({a}, {b}) must satisfy 0 <= start <= stop <= 1 (fractions of the run)")
            out.append((int(round(a * self.T)), int(round(b * self.T))))
        return [w for w in out if w[1] > w[0]]

    @_threads
    def run(self, windows: Sequence) -> list[Selection]:
        """One `Selection` per seed for selection inside `windows` (fractions; cached by their steps)."""
        settings = self._settings()
        steps = tuple(self.steps(windows))
        key = (settings, steps)
        if key not in self._cache:
            runs = []
            for s in self.seeds:
                order = self._order(s)
                runs.append(select_and_train(self.model, self.pool, self.validation, order,
                                             lrs.warmup_cosine(self.peak, len(order), warmup=len(order) // 10),
                                             windows=list(steps), ratio=self.ratio, val_batch_size=self.val_batch_size,
                                             test=self.test, seed=s))
            self._cache[key] = runs
        return self._cache[key]

    @staticmethod
    def stats(runs: list[Selection]) -> dict:
        """{"loss": mean final test loss, "spread": its standard deviation over the seeds,
        "losses": per seed, "cost": relative gradient cost (the same for every seed)}."""
        losses = np.array([r.test_loss for r in runs])
        return {"loss": float(losses.mean()), "spread": float(losses.std()), "losses": losses,
                "cost": float(np.mean([r.relative_cost for r in runs]))}

    def update(self) -> dict:
        """{"current", "never", "always"}: `stats` of the current windows and the two references."""
        return {"current": self.stats(self.run([self.early, self.late])),
                "never": self.stats(self.run(STRATEGIES["never"])),
                "always": self.stats(self.run(STRATEGIES["always"]))}

    def summary(self) -> str:
        r = self.update()
        gain = r["never"]["loss"] - r["always"]["loss"]
        share = (r["never"]["loss"] - r["current"]["loss"]) / gain if gain else float("nan")
        (a, b), (c, d), cur = self.early, self.late, r["current"]
        if share != share:
            verdict = "never and always end at the same loss here, so there is no gain to share"
        elif share < 0:
            verdict = f"that is worse than never selecting (by {-share:.0%} of what always gains)"
        elif share > 1:
            verdict = f"that beats selecting always (by {share - 1:.0%} of what always gains)"
        else:
            verdict = f"that is {share:.0%} of the loss drop that selecting always gives"
        return (f"Selecting in {a:.2f}–{b:.2f} and {c:.2f}–{d:.2f} of the run: final test loss {cur['loss']:.3f} "
                f"(± {cur['spread']:.3f} over {len(self.seeds)} seeds) at ×{cur['cost']:.2f} the gradient cost of "
                f"never selecting; {verdict} ({r['never']['loss']:.3f} → {r['always']['loss']:.3f}, "
                f"at ×{r['always']['cost']:.2f} the cost).")

    def figure(self):
        r = self.update()
        return selection_figure({"never": r["never"], "these windows": r["current"], "always": r["always"]},
                                f"windows {self.early} and {self.late} of the run")


def selection_figure(rows: dict, title: str = ""):
    """Mean final test loss per timing as a point with an error bar (± the spread over the seeds)
    and every seed's own loss as a small dot, the relative cost under each name; dotted lines at
    the "never" and "always" levels when those rows exist. Points, not bars: a bar's length would
    start at the axis' lower limit, which is not 0 here, and inflate the differences (review L07-e2).
    rows = {label: `SelectionModel.stats`}."""
    with plots.style():
        fig, ax = plots.new_figure(1, figsize=(8, 3))
        fig.subplots_adjust(left=0.09, right=0.76)          # the legend sits beside the axes: it hides no point
        a = ax[0, 0]
        names = list(rows)
        x = np.arange(len(names))
        loss = [rows[k]["loss"] for k in names]
        for ref, color in (("never", plots.COLORS[7]), ("always", plots.COLORS[2])):
            if ref in rows:
                a.axhline(rows[ref]["loss"], color=color, lw=0.9, ls=":", zorder=1)
        for j, k in enumerate(names):
            seeds = np.atleast_1d(rows[k].get("losses", []))
            a.scatter(np.full(len(seeds), j + 0.12), seeds, s=10, color="0.55", zorder=2,
                      label="one seed" if j == 0 and len(seeds) else None)
        a.errorbar(x, loss, yerr=[rows[k]["spread"] for k in names], fmt="o", ms=6, capsize=4,
                   color=plots.COLORS[0], zorder=3, label="mean ± spread\n(std over seeds)")
        a.set_xticks(x, [f"{name}\ncost ×{rows[name]['cost']:.2f}" for name in names])
        a.set_xlim(-0.5, len(names) - 0.5)
        a.set(ylabel="final test loss", title=title)
        a.margins(y=0.15)
        a.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig
