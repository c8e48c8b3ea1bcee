"""Lesson 05's predictions: what an edited order would do to the mean test loss before anything is
retrained (first order, `dt.OrderPredictor` on the last trained run), the followed point's "best step"
curve, and the (predicted, exact) pairs that each Retrain adds. `ReorderModel` uses these; no ipywidgets.

Notation (lessons 02-04): an edit inserts or removes point i at step t; to first order the final mean
test loss m changes by the insertion term ins_t(i) = −(η_t/b) ∇m(θ_T)ᵀ K_t ∇ℓ(θ_t, z_i) (plain SGD;
`OrderPredictor.insertion_curve`), or by −ins_t(i) (the removal term, the first-order TSLOO(i, t)) for a
removal. Gradients are taken along the recorded run. Moving i from t₁ to t₂: c_{t₂}(i) − c_{t₁}(i).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from . import plots
from .explorers import _threads
from ..data.checks import as_int
from ..influence.order_effects import OrderPredictor, schedule_changes
from ..training.schedule import Schedule
from ..training.trajectory import Trajectory

__all__ = ["PredictionCheck", "RunPrediction", "Predictions", "shifted", "changed_pairs", "random_moves"]


@dataclass(frozen=True)
class PredictionCheck:
    """One Retrain seen by the predictor: `predicted` (first order, computed on the previous run before
    retraining) and `exact` (the new run's mean test loss minus the previous run's), both Δ mean test
    loss; `changes`: (point, step) pairs the edit added or removed (its size)."""

    predicted: float
    exact: float
    changes: int


def changed_pairs(old: Schedule, new: Schedule) -> int:
    """How many (point, step) pairs differ between two orders of the same length (removed + inserted)."""
    return sum(len(r) + len(i) for _, r, i in schedule_changes(old, new))


def random_moves(schedule: Schedule, count: int, seed: int = 0) -> list[Schedule]:
    """`count` one-point edits of `schedule`: a random point leaves one of its steps for a random step
    that does not use it (`Schedule.move`: that batch gains a point, the other loses one; two (point,
    step) pairs change). Reproducible from `seed`."""
    count, rng, out = as_int(count, "count", 0), np.random.default_rng(as_int(seed, "seed", 0)), []
    for _ in range(1000 * count):
        if len(out) == count:
            break
        i = int(rng.integers(schedule.n))
        occ = schedule.occurrences(i)
        t2 = int(rng.integers(len(schedule)))
        if not occ or t2 in occ:
            continue
        t1 = occ[int(rng.integers(len(occ)))]
        if len(schedule.batches[t1]) > 1:
            out.append(schedule.move(i, t1, t2))
    if len(out) < count:
        raise ValueError("found no point to move: every point is used at every step (or batches hold one "
                         "point); random_moves needs a step that does not use the point")
    return out


def _shift(order: Schedule, point: int, steps: int, occurrence: Optional[int] = None):
    """(new batches as lists, the shift actually made, moves [(i, from step, to step)]) of `shifted`."""
    occ = order.occurrences(point)
    if not occ:
        raise ValueError(f"point {point} is in no batch of the order; set an order that visits it")
    if occurrence is not None:
        k = as_int(occurrence, "occurrence")
        if not 0 <= k < len(occ):
            raise ValueError(f"occurrence {k} does not exist: the point is used {len(occ)} times (0..{len(occ) - 1})")
        occ = [occ[k]]
    delta = int(np.clip(as_int(steps, "steps"), -min(occ), len(order) - 1 - max(occ)))
    bs, moves = [list(b) for b in order.batches], []
    for t in sorted(occ, reverse=delta > 0) if delta else []:
        src, dst = bs[t], bs[t + delta]
        if point in dst:
            raise ValueError(f"point {point} is already in the batch of step {t + delta}: move another occurrence")
        pos = src.index(point)
        k = pos % len(dst)
        j = next((j for j in dst[k:] + dst[:k] if j not in src), None)
        if j is None:
            raise ValueError(f"every point of step {t + delta} is also in step {t}: nothing to swap with")
        src[pos], dst[dst.index(j)] = j, point
        moves += [(point, t, t + delta), (j, t + delta, t)]
    return bs, delta, moves


def shifted(order: Schedule, point: int, steps: int, occurrence: Optional[int] = None) -> Schedule:
    """`order` with `point` moved `steps` steps later (< 0: earlier), every occurrence (None) or the k-th
    one, clamped to the run. It swaps places with a point of the target batch, so every batch keeps its
    size (the lesson's buttons and slider; `ReorderModel.move`)."""
    return Schedule(_shift(order, point, steps, occurrence)[0], order.batch_size, order.n)


class RunPrediction:
    """First-order predictions relative to one trained run (`traj`, its `test` data), from the terms
    ins_t(i) = (1/b) a_t · ∇ℓ(θ_t, z_i) of `dt.OrderPredictor(traj, test, mean=True)` (fitted on first use:
    one reverse sweep). An order's prediction is Σ ins_t(i) over the (point, step) pairs it adds minus Σ
    over those it removes (`OrderPredictor.predict`, summed term by term); terms are cached, computed
    one step at a time. One instance per trained run: a new run needs a new instance."""

    def __init__(self, traj: Trajectory, test):
        self.traj, self.test = traj, test
        self._predictor: Optional[OrderPredictor] = None
        self._terms: dict = {}

    @property
    def predictor(self) -> OrderPredictor:
        if self._predictor is None:
            self._predictor = OrderPredictor(self.traj, self.test, mean=True).fit()
        return self._predictor

    def terms(self, pairs) -> np.ndarray:
        """ins_t(i) for each (i, t) in `pairs`: the Δ mean test loss if point i were added to step t's
        batch (removing it there: the negative), [len(pairs)]."""
        pairs = [(int(i), int(t)) for i, t in pairs]
        missing: dict = {}
        for i, t in pairs:
            if (i, t) not in self._terms:
                missing.setdefault(t, set()).add(i)
        if missing:
            a, traj = self.predictor.sensitivities_[:, 0], self.traj
            for t, pts in missing.items():
                pts = sorted(pts)
                idx = torch.as_tensor(pts, dtype=torch.int64, device=traj.device)
                G = traj.objective.per_sample_grads(traj.params(t), traj.data.X[idx], traj.data.y[idx]).detach()
                for i, v in zip(pts, (G @ a[t] / traj.batch_size).double().cpu().tolist()):
                    self._terms[i, t] = v
        return np.array([self._terms[p] for p in pairs], dtype=float)

    def change(self, schedule: Schedule) -> Optional[float]:
        """Predicted Δ mean test loss of training on `schedule` instead (0.0 for the same order; None
        when the step count differs, e.g. a left-out point emptied a batch: only a Retrain can tell)."""
        ref = self.traj.schedule
        if (len(schedule), schedule.n, schedule.batch_size) != (len(ref), ref.n, ref.batch_size):
            return None
        ins = [(i, t) for t, _, added in schedule_changes(ref, schedule) for i in added]
        rem = [(i, t) for t, removed, _ in schedule_changes(ref, schedule) for i in removed]
        return float(self.terms(ins).sum() - self.terms(rem).sum())

    def moved(self, base: Optional[float], moves) -> float:
        """`base` plus the terms of moves [(i, from step, to step)]: ins_to(i) − ins_from(i) each."""
        if base is None:
            return float("nan")
        return base + float(self.terms([(i, b) for i, _, b in moves]).sum() - self.terms([(i, a) for i, a, _ in moves]).sum())


class Predictions:
    """`ReorderModel`'s predictions, relative to its last Retrain (`result`), and its slider. The mixin
    reads the model's `result`, `problem.test`, `order`, `point`, `left_out`, `schedule()` and
    `_occurrence`; it keeps one `RunPrediction` per trained run in `_predictions` (keyed by the trained
    schedule and checked against the run and test set it was made for, so a result is never served
    for another run) and the slider's starting order in `_slide`."""

    _slide: Optional[dict] = None

    def _prediction(self) -> RunPrediction:
        r = self.result
        rp = self._predictions.get(r.schedule)
        if rp is None or rp.traj is not r.traj or rp.test is not self.problem.test:
            rp = self._predictions[r.schedule] = RunPrediction(r.traj, self.problem.test)
        return rp

    @_threads
    def predicted_change(self) -> Optional[float]:
        """Δ mean test loss of training on the current order instead of the last trained run, first
        order, nothing retrained (0.0 when nothing changed; None when the step count changed)."""
        return self._prediction().change(self.schedule())

    # ---- the slider: a position, not a path ------------------------------------------------------
    def _origin(self, occurrence: Optional[int]) -> tuple[Schedule, Optional[int]]:
        """(order, occurrence) the slider moves from: while the order is the one the last `slide_to`
        made (same point, same occurrence), that slide's starting order; else the current order."""
        s, occ = self._slide, self.order.occurrences(self.point)
        if (s is not None and s["result"] is self.order and s["point"] == self.point
                and (occurrence is None) == (s["k"] is None) and (occurrence is None or occ[occurrence] == s["at"])):
            return s["start"], s["k"]
        return self.order, occurrence

    def slide_to(self, step: int, occurrence: Optional[int] = None) -> None:
        """What the "to step" slider does: `move_occurrence_to(step, occurrence)`, but from the order
        before the current run of slides, so the positions a drag passes through leave no trace (each
        one-step move would swap the point with another partner) and sliding back restores the order."""
        occ = self.order.occurrences(self.point)
        k = None if occurrence is None else self._occurrence(occurrence, occ)
        step = as_int(step, "step")
        if not 0 <= step < len(self.order):
            raise ValueError(f"step {step} is outside the run 0..{len(self.order) - 1}")
        start, k0 = self._origin(k)
        at = start.occurrences(self.point)[0 if k0 is None else k0]
        self.order = shifted(start, self.point, step - at, k0)
        self._slide = dict(start=start, k=k0, point=self.point, result=self.order, at=step)

    def _curve_base(self, occurrence):
        k = None if occurrence is None else self._occurrence(occurrence, self.order.occurrences(self.point))
        start, k = self._origin(k)
        rp = self._prediction()
        base = rp.change(self.schedule(start)) if start is not self.order else self.predicted_change()
        return rp, base, start, k

    @_threads
    def best_step_curve(self, occurrence: Optional[int] = None) -> np.ndarray:
        """[T]: the predicted Δ mean test loss (vs the last trained run) if the chosen point's k-th
        occurrence (None: every one, the earliest landing on t, the others shifted alike) were moved to
        step t — the point alone: its removal and insertion terms Σ_k c_{t_k + d} − c_{t_k}, added to
        the prediction of the order the slider moves from (`slide_to`); NaN where impossible."""
        rp, base, start, k = self._curve_base(occurrence)
        occ, T = start.occurrences(self.point), len(start)
        sel = occ if k is None else [occ[k]]
        out = np.full(T, np.nan)
        for t in range(T):
            d = t - sel[0]
            if sel[0] + d < 0 or sel[-1] + d >= T or (k is not None and d and self.point in start.batches[t]):
                continue
            out[t] = rp.moved(base, [(self.point, s, s + d) for s in sel])
        return out

    @_threads
    def slider_curve(self, occurrence: Optional[int] = None) -> np.ndarray:
        """[T]: the predicted Δ mean test loss (vs the last trained run) after `slide_to(t, occurrence)`:
        the point's terms and those of the points it swaps with; NaN where that move is refused or
        clamped."""
        rp, base, start, k = self._curve_base(occurrence)
        at, T = start.occurrences(self.point)[0 if k is None else k], len(start)
        out = np.full(T, np.nan)
        for t in range(T):
            try:
                _, delta, moves = _shift(start, self.point, t - at, k)
            except ValueError:
                continue
            if delta == t - at:   # not clamped
                out[t] = rp.moved(base, [m for m in moves if m[0] not in self.left_out])
        return out

    def prediction_summary(self) -> str:
        v = self.predicted_change()
        if v is None:
            return "no prediction: the edit changes the number of steps (a batch is empty); press Retrain"
        last = (f"; last Retrain: predicted {self.history[-1].predicted:+.2e}, exact {self.history[-1].exact:+.2e}"
                if self.history else "")
        loss = getattr(getattr(self, "result", None), "test_loss", None)
        words = ""
        if loss and v != 0:
            words = f" (this edit would {'raise' if v > 0 else 'lower'} it by {abs(v) / loss:.2%})"
        return f"predicted Δ mean test loss vs the last Retrain (first order, no retraining): {v:+.2e}{words}{last}"

    def prediction_figure(self, occurrence: Optional[int] = None):
        """The "best step" curve of the selected occurrence (the slider's move dotted, the current
        order starred) | every Retrain so far, predicted vs exact (`plots.prediction_figure`)."""
        occ = self.order.occurrences(self.point)
        at = occ[0 if occurrence is None else self._occurrence(occurrence, occ)]
        return plots.prediction_figure(self.best_step_curve(occurrence), self.slider_curve(occurrence), at,
                                       self.predicted_change(), self.history, self.point, occurrence is None)
