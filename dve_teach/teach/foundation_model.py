"""Lesson 10's widget model, `FoundationModel`: pick a held-out sonnet line, rank the pretraining
passages by first order through AdamW, replay the top ones exactly, and move one passage to another
pretraining step and replay it there. Plain Python (no ipywidgets);
`dve_teach.teach.widgets.FoundationExplorer` is the view over it. The run and its parts come from
`dve_teach.teach.foundation`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from . import plots
from .foundation import MeanLoss, foundation_run, passage, place
from ..data.checks import as_int
from ..influence.loo import exact_loo
from ..influence.unroll import unrolled_influence
from ..training.schedule import Schedule

__all__ = ["FoundationModel", "FoundationResult"]


@dataclass
class FoundationResult:
    """The widget's state after `FoundationModel.update`: for held-out line `line`, the pretraining
    passages ranked by first order (`helpful`, `harmful`: k global indices each, best first, with
    their `first_order` values and the `steps` where each was seen); after `retrain`, `exact`
    (same order) and the moved passage's exact TSLOO at `position` (`moved_exact`)."""
    line: int
    helpful: list
    harmful: list
    first_order: dict            # point -> first-order TSLOO on the line's loss
    steps: dict                  # point -> steps where it was seen
    moved: int                   # the passage the slider moves (helpful[0] by default)
    position: int                # the step its first occurrence is moved to
    exact: Optional[dict] = None      # point -> exact TSLOO (after retrain)
    moved_exact: Optional[float] = None
    seconds: float = 0.0


class FoundationModel:
    """Lesson 10's widget model. ``line``: the held-out sonnet sequence queried (its loss is the
    measure); ``moved``: the pretraining passage the slider moves (None: the line's most helpful
    passage by first order); ``position``: the stage-1 step its first occurrence is moved to (None:
    where it was). ``update()`` ranks every pretraining passage by first order through AdamW's state
    (`dt.unrolled_influence`; one sweep per line, cached) -> `FoundationResult` (k helpful, k
    harmful). ``retrain()`` adds the exact TSLOO by replay of those 2k passages and of the moved
    passage removed at `position` (its run retrained with it moved there, `place`); cached by
    (line, moved, position). Edits only change ``line`` / ``moved`` / ``position``: the answers
    depend on nothing else, so a model after any sequence of edits equals a fresh one."""

    def __init__(self, seed: int = 0, *, sizes: Optional[dict] = None, k: int = 3, line: int = 0):
        self.seed, self.sizes, self.k = as_int(seed, "seed", 0), sizes, as_int(k, "k", 1)
        self.traj, self.plays, self.sonnets, self.train_seconds = foundation_run(self.seed, sizes=sizes)
        s1 = self.traj.stages[0]
        self.n_plays, self.stage1_steps = len(s1.points), len(s1.steps)
        self.plays_schedule = Schedule(self.traj.schedule.batches[:self.stage1_steps],
                                       self.traj.schedule.batch_size, self.n_plays)
        self.line, self.moved, self.position = as_int(line, "line", 0), None, None
        self._first: dict = {}
        self._exact: dict = {}
        self._moved_exact: dict = {}
        self.result: Optional[FoundationResult] = None

    def _query(self, line: int):
        n = len(self.sonnets.test)
        if not 0 <= line < n:
            raise IndexError(f"line must be in 0..{n - 1} (a held-out sonnet sequence), got {line}")
        one = self.sonnets.test[[line]]
        return one, MeanLoss(one)

    def first_order(self, line: Optional[int] = None) -> torch.Tensor:
        """Tensor[n_plays]: first-order TSLOO of every pretraining passage on `line`'s loss (cached)."""
        line = self.line if line is None else as_int(line, "line", 0)
        if line not in self._first:
            one, m = self._query(line)
            self._first[line] = unrolled_influence(self.traj, one, measure=m).total()[:self.n_plays, 0]
        return self._first[line]

    def _target(self, helpful: list) -> tuple[int, int, int]:
        moved = helpful[0] if self.moved is None else as_int(self.moved, "moved", 0)
        if not 0 <= moved < self.n_plays:
            raise IndexError(f"moved must be a pretraining passage, 0..{self.n_plays - 1}, got {moved}")
        occ = self.plays_schedule.occurrences(moved)
        pos = occ[0] if self.position is None else as_int(self.position, "position", 0)
        if not 0 <= pos < self.stage1_steps:
            raise IndexError(f"position must be a pretraining step, 0..{self.stage1_steps - 1}, got {pos}")
        if pos != occ[0] and pos in occ:
            raise ValueError(f"passage {moved} is already seen at step {pos}; pick a step outside {occ}")
        return moved, occ[0], pos

    def update(self) -> FoundationResult:
        """The ranking for the current line (and the cached exact answers, if any)."""
        t0 = time.perf_counter()
        fo = self.first_order()
        order = torch.argsort(fo, descending=True).tolist()
        helpful, harmful = order[:self.k], order[::-1][:self.k]
        moved, first, pos = self._target(helpful)
        pts = helpful + harmful
        ex = self._exact.get(self.line)
        self.result = FoundationResult(
            self.line, helpful, harmful, {i: float(fo[i]) for i in pts + [moved]},
            {i: self.plays_schedule.occurrences(i) for i in pts + [moved]}, moved, pos,
            None if ex is None or not all(i in ex for i in pts) else {i: ex[i] for i in pts},
            self._moved_exact.get((self.line, moved, pos)), time.perf_counter() - t0)
        return self.result

    def retrain(self) -> FoundationResult:
        """Exact TSLOO by replay of the shown passages (every occurrence), and of the moved passage
        removed at `position` after retraining with it there."""
        r = self.update()
        one, m = self._query(self.line)
        ex = self._exact.setdefault(self.line, {})
        todo = [i for i in r.helpful + r.harmful if i not in ex]
        if todo:
            vals = exact_loo(self.traj, one, todo, measure=m, chunk_size=len(todo), progress=False)[:, 0]
            ex.update({i: float(v) for i, v in zip(todo, vals)})
        key = (self.line, r.moved, r.position)
        if key not in self._moved_exact:
            moved, first, pos = self._target(r.helpful)
            if pos == first:
                traj = self.traj
            else:
                traj = foundation_run(self.seed, sizes=self.sizes,
                                      plays_schedule=place(self.plays_schedule, moved, first, pos))[0]
            self._moved_exact[key] = float(exact_loo(traj, one, [moved], [pos], measure=m, progress=False)[0, 0])
        return self.update()

    @property
    def stale(self) -> bool:
        """True when the shown passages or the moved position have no exact answer yet."""
        r = self.result or self.update()
        return r.exact is None or r.moved_exact is None

    def summary(self) -> str:
        r = self.result or self.update()
        q = passage(self.sonnets, r.line, "test").replace("\n", "⏎")
        ex = "" if r.moved_exact is None else f", exact at step {r.position}: {r.moved_exact:+.2e}"
        return (f"held-out line {r.line}: “{q}” | passage {r.moved} moved to step {r.position} "
                f"(first order for its old place {r.first_order[r.moved]:+.2e}{ex})"
                + ("" if r.exact is not None else " | press Retrain for the exact answers"))

    def passages_html(self) -> str:
        """The shown passages as HTML: text, steps seen, first order and (after Retrain) exact."""
        import html as H
        r = self.result or self.update()
        rows = []
        for label, pts, colour in (("helps", r.helpful, "#0072B2"), ("hurts", r.harmful, "#D55E00")):
            for i in pts:
                ex = "—" if r.exact is None else f"{r.exact[i]:+.2e}"
                rows.append(f"<tr><td style='color:{colour}'>{label}</td><td>{i}</td><td><code "
                            f"style='background:{colour}22'>{H.escape(passage(self.plays, i))}</code></td>"
                            f"<td>{r.steps[i]}</td><td>{r.first_order[i]:+.2e}</td><td>{ex}</td></tr>")
        return ("<table><tr><th></th><th>passage</th><th>text</th><th>steps seen</th><th>first order</th>"
                "<th>exact</th></tr>" + "".join(rows) + "</table>")

    def figure(self):
        """Left: first order vs exact (after Retrain) for the shown passages; right: the moved
        passage's first-order curve over stage-1 steps (its single-occurrence estimate where it was
        seen) and its exact value at the chosen position."""
        r = self.result or self.update()
        with plots.style():
            fig, axes = plots.new_figure(2, 1, figsize=(8.4, 3.0))
            self._draw(axes[0, 0], axes[0, 1], r)
        return fig

    def _draw(self, a, b, r) -> None:
        pts = r.helpful + r.harmful
        x = np.arange(len(pts))
        a.bar(x - 0.2, [r.first_order[i] for i in pts], 0.4, color="#999999", label="first order")
        if r.exact is not None:
            a.bar(x + 0.2, [r.exact[i] for i in pts], 0.4, color="#0072B2", label="exact (replay)")
        a.axhline(0, color="k", lw=0.5)
        a.set_xticks(x, [str(i) for i in pts], fontsize=7)
        a.set_xlabel("passage (3 helpful | 3 harmful)" if self.k == 3 else "passage")
        a.set_ylabel("TSLOO on the line's loss")
        a.legend(fontsize=7)
        lrs = self.traj.lrs[:self.stage1_steps].numpy()
        b.plot(lrs / lrs.max(), color="#bbbbbb", lw=1, label="η_t / max η")
        for t in r.steps[r.moved]:
            b.axvline(t, color="#333333", ls=":", lw=1.8, zorder=3)
        b.axvline(r.position, color="#D55E00", lw=1.5, label="moved to")
        if r.moved_exact is not None:
            b.set_title(f"passage {r.moved} at step {r.position}: exact {r.moved_exact:+.2e}", fontsize=9)
        else:
            b.set_title(f"passage {r.moved}: Retrain for the exact value at step {r.position}", fontsize=9)
        b.set_xlabel("pretraining step (dotted: where it was seen)")
        b.set_xlim(-0.7, self.stage1_steps - 0.3)
        b.legend(fontsize=7, loc="lower center")
