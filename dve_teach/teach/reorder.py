"""Lesson 05's model: edit the training order, retrain, and follow one point's data value
embedding (`ReorderModel`, `ReorderResult`). No ipywidgets here; `dve_teach.teach.widgets.ReorderExplorer`
is the view over it, and re-exports these names. Figures come from `dve_teach.teach.plots`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from . import plots
from .tour import sign_reading
from .explorers import Problem, _mean_test, _threads, order_for
from .order_prediction import PredictionCheck, Predictions, changed_pairs, shifted
from ..data.checks import as_int
from ..training.schedule import Schedule
from ..training.trajectory import Trajectory

__all__ = ["ReorderModel", "ReorderResult"]


@dataclass
class ReorderResult:
    """One retrained run seen from the chosen point; every influence is the change of the mean test
    loss when the point is removed (> 0: it helped). Steps index the trained `schedule`."""

    order: Schedule            # the order asked for (all points)
    left_out: frozenset        # points left out of it
    schedule: Schedule         # what was trained: `order` without the left-out points
    point: int
    steps: list                # steps of `schedule` whose batch holds the point
    exact: float               # exact TSLOO, removed at every occurrence (`dt.exact_loo`)
    estimate: float            # the data value embedding's estimate of the same
    sgd_influence: Optional[float]
    per_step_exact: np.ndarray     # [len(steps)] exact TSLOO of removing it at that step only
    per_step_estimate: np.ndarray  # [len(steps)] DVE of that occurrence
    embeddings: torch.Tensor   # [n, d] per-point embeddings (summed over occurrences)
    xy: np.ndarray             # [n, 2] those in the PCA basis of the first (baseline) order
    test_loss: float
    seconds: float             # wall time of the retrain (cached parts excluded)
    traj: Trajectory


class ReorderModel(Predictions):
    """Lesson 05: edit the training order (move the chosen point, shuffle, reverse, curricula, leave
    points out), `retrain`, and see the chosen point's data value embedding move, its per-step
    influence, and exact vs DVE (and SGD-influence) for removing it everywhere.

    source: None (2-D moons, `Problem.moons()`), a `Problem`, or a recorded `Trajectory` (with
    `test`; retraining then reuses its model at θ_0, data, step sizes, loss and weight decay).
    Runs are cached by the trained schedule, exact LOO by (schedule, point), Play frames by
    (schedule, s). Order edits only change `order` / `left_out`; `stale` says a Retrain is due.
    Before a Retrain, `predicted_change()`, `best_step_curve()` and `slider_curve()` predict edits to
    first order from the last trained run (`order_prediction`; fitted once per run); `slide_to` is the
    slider's move; each Retrain that trains a new order appends (predicted, exact) to `history`.
    with_sgd_influence: also run `dt.sgd_influence` (exact Hessians; it about doubles a Retrain).
    dve_kwargs: passed to `dt.DataValueEmbedding` (e.g. hessian="ggn").
    """

    @_threads
    def __init__(self, source: Union[None, Problem, Trajectory] = None, test=None, *,
                 point: Optional[int] = None, with_sgd_influence: bool = False, **dve_kwargs):
        base = None
        if source is None:
            source = Problem.moons()
        if isinstance(source, Trajectory):
            if test is None:
                raise ValueError("pass the test data with a trajectory: ReorderModel(traj, test)")
            base, source = source, Problem.of(source, test)
        if not isinstance(source, Problem):
            raise TypeError(f"source must be None, a widgets.Problem or a dt.Trajectory, got {type(source).__name__}")
        self.problem, self.with_sgd_influence, self.dve_kwargs = source, with_sgd_influence, dve_kwargs
        self._runs: dict = {}
        self._exact: dict = {}
        self._frames: dict = {}
        self._predictions: dict = {}
        self.history: list[PredictionCheck] = []
        self.baseline_order = base.schedule if base is not None else order_for(source, "shuffle", source.seed)
        if base is not None:
            self._runs[self._key(base.schedule, self.problem.lr)] = self._analyse(base)
        self.order, self.left_out = self.baseline_order, frozenset()
        run = self._run(self.baseline_order)
        self.basis = plots.pca_basis(run["E"])  # fitted once, on the baseline order
        y = source.train.y
        self.labels = None if y.is_floating_point() else y.cpu().numpy()
        self.point = int(run["dve"].abs().argmax()) if point is None else self._check_point(point)
        self.result: Optional[ReorderResult] = None
        self.previous: Optional[ReorderResult] = None
        self.baseline = self.retrain()

    # ---- state -----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.problem.train)

    @property
    def stale(self) -> bool:
        """True when the order, left-out points or chosen point changed since the last retrain."""
        r = self.result
        return r is None or (r.order, r.left_out, r.point) != (self.order, self.left_out, self.point)

    def schedule(self, order: Optional[Schedule] = None) -> Schedule:
        """The order (default: the current one) without the left-out points (batches that become
        empty are dropped)."""
        order = self.order if order is None else order
        if not self.left_out:
            return order
        bs = [b for b in ([i for i in b if i not in self.left_out] for b in order.batches) if b]
        if not bs:
            raise ValueError("every point of the order is left out: put some back")
        return Schedule(bs, order.batch_size, self.n)

    def _check_point(self, i) -> int:
        i = as_int(i, "point")
        if not 0 <= i < self.n:
            raise IndexError(f"point {i} is outside the training set 0..{self.n - 1}")
        return i

    # ---- edits (cheap; they mark the state stale) ----------------------------------------------
    def set_order(self, seq) -> None:
        """A `Schedule` over the n training points, or a flat sequence of indices (cut into batches
        of the current batch size; it may visit points several times, once per batch at most)."""
        s = seq if isinstance(seq, Schedule) else Schedule.from_order(list(seq), self.order.batch_size, self.n)
        if s.n != self.n:
            raise ValueError(f"the order indexes {s.n} points but the training set has {self.n}")
        if not s.occurrences(self.point):
            raise ValueError(f"this order never uses the followed point {self.point}: its run would not depend "
                             f"on it (exact TSLOO 0 by definition). Include point {self.point}, or follow "
                             f"another point first (set_point)")
        self.order = s

    def shuffle(self, seed: int = 0) -> None:
        self.order = order_for(self.problem, "shuffle", as_int(seed, "seed", 0))

    def reverse(self) -> None:
        self.order = self.order.reversed()

    @_threads
    def curriculum(self, preset: str) -> None:
        """One of `PRESETS` (the margin preset uses the baseline run as reference)."""
        self.order = order_for(self.problem, preset, self.problem.seed, self._run(self.baseline_order)["traj"])

    def reset(self) -> None:
        self.order, self.left_out = self.baseline_order, frozenset()

    def set_point(self, i: int) -> None:
        i = self._check_point(i)
        if i in self.left_out:
            raise ValueError(f"point {i} is left out: put it back before choosing it")
        self.point = i

    def leave_out(self, i: int) -> None:
        i = self._check_point(i)
        if i == self.point:
            raise ValueError(f"point {i} is the chosen point: choose another point before leaving it out")
        self.left_out = self.left_out | {i}

    def put_back(self, i: Optional[int] = None) -> None:
        """Put point i (every left-out point when None) back into the order."""
        self.left_out = frozenset() if i is None else self.left_out - {as_int(i, "point")}

    def move(self, steps: int, occurrence: Optional[int] = None) -> None:
        """Move the chosen point `steps` steps later (< 0: earlier), every occurrence (None) or the
        k-th one; clamped to the run. It swaps places with a point of the target batch, so every
        batch keeps its size (`order_prediction.shifted`)."""
        self.order = shifted(self.order, self.point, steps, occurrence)

    def move_occurrence_to(self, step: int, occurrence: Optional[int] = None) -> None:
        """Move the chosen point's k-th occurrence to `step` (None: the earliest one, the others by
        the same shift), as far as the run allows; see `move`."""
        occ = self.order.occurrences(self.point)
        if not occ:
            raise ValueError(f"point {self.point} is in no batch of the order; set an order that visits it")
        step = as_int(step, "step")
        if not 0 <= step < len(self.order):
            raise ValueError(f"step {step} is outside the run 0..{len(self.order) - 1}")
        self.move(step - occ[0 if occurrence is None else self._occurrence(occurrence, occ)], occurrence)

    @staticmethod
    def _occurrence(k, occ: list) -> int:
        """The k-th occurrence's index into `occ`, refusing negative or too large k (no wrap-around)."""
        k = as_int(k, "occurrence")
        if not 0 <= k < len(occ):
            raise ValueError(f"occurrence {k} does not exist: the point is used {len(occ)} times (0..{len(occ) - 1})")
        return k

    def move_to(self, where: str, occurrence: Optional[int] = None) -> None:
        """Move to the "first" or "last" step (with every occurrence: the earliest one to step 0, or
        the latest to step T−1, the others by the same shift)."""
        if where not in ("first", "last"):
            raise ValueError(f"where must be 'first' or 'last', got {where!r}")
        self.move(-len(self.order) if where == "first" else len(self.order), occurrence)

    # ---- computation -----------------------------------------------------------------------------
    def _per_point(self, dve) -> torch.Tensor:
        E = dve.embeddings_.detach()
        pts = torch.as_tensor(dve.points_, dtype=torch.int64, device=E.device)
        return torch.zeros(self.n, E.shape[1], dtype=E.dtype, device=E.device).index_add_(0, pts, E).cpu()

    def _analyse(self, traj: Trajectory) -> dict:
        from ..influence.embedding import DataValueEmbedding
        test = self.problem.test
        dve = DataValueEmbedding(**self.dve_kwargs).fit(traj)
        infl = dve.influence(test)
        sgd = None
        if self.with_sgd_influence:
            from ..influence.unroll import sgd_influence
            sgd = _mean_test(sgd_influence(traj, test).total())
        return dict(traj=traj, infl=infl, dve=torch.as_tensor(_mean_test(infl.total())), sgd=sgd,
                    E=self._per_point(dve), test_loss=float(traj.test_losses(test).mean()))

    def _lrs(self, order: Optional[Schedule] = None):
        """The step sizes for the current order without the left-out points: the problem's `lr`, or, for
        a per-step sequence, the entries of the steps whose batch keeps a point (an emptied batch is
        dropped with its η_t, so the schedule and the step sizes stay aligned)."""
        lr, order = self.problem.lr, self.order if order is None else order
        if isinstance(lr, (int, float)) or not self.left_out:
            return lr
        lr = list(lr)
        if len(lr) != len(order):
            raise ValueError(f"the problem has {len(lr)} step sizes but the order {len(order)} steps: give one per step")
        return [v for v, b in zip(lr, order.batches) if any(i not in self.left_out for i in b)]

    @staticmethod
    def _key(sched: Schedule, lr) -> tuple:
        return sched, (lr if isinstance(lr, (int, float)) else tuple(float(v) for v in lr))

    def _run(self, sched: Schedule, lr=None) -> dict:
        lr = self.problem.lr if lr is None else lr
        key = self._key(sched, lr)
        if key not in self._runs:
            self._runs[key] = self._analyse(self.problem.fit(sched, lr))
        return self._runs[key]

    @_threads
    def retrain(self) -> ReorderResult:
        """Train on the current order (cached), fit the DVE, exact LOO of the chosen point."""
        from ..influence.loo import exact_loo
        sched, p, test, before = self.schedule(), self.point, self.problem.test, self.result
        predicted = self.predicted_change() if before is not None and before.schedule != sched else None
        t0 = time.perf_counter()
        run = self._run(sched, self._lrs())
        steps = sched.occurrences(p)
        key = (id(run["traj"]), p)   # the trained run (schedule and step sizes) and the point
        if key not in self._exact:
            per = (_mean_test(exact_loo(run["traj"], test, [p] * len(steps), steps, progress=False))
                   if steps else np.zeros(0))
            self._exact[key] = (float(_mean_test(exact_loo(run["traj"], test, [p], progress=False))[0]), per)
        exact, per_exact = self._exact[key]
        per_est = _mean_test(run["infl"].at([p] * len(steps), steps)) if steps else np.zeros(0)
        res = ReorderResult(self.order, self.left_out, sched, p, steps, exact, float(run["dve"][p]),
                            None if run["sgd"] is None else float(run["sgd"][p]), per_exact, per_est,
                            run["E"], plots.project(run["E"], self.basis), run["test_loss"],
                            time.perf_counter() - t0, run["traj"])
        if self.stale and self.result is not None:
            self.previous = self.result
        if predicted is not None:
            self.history.append(PredictionCheck(predicted, res.test_loss - before.test_loss,
                                                changed_pairs(before.schedule, sched)))
        self.result = res
        return res

    @_threads
    def frame(self, s: int) -> np.ndarray:
        """Per-point embeddings relative to the checkpoint at step s (the DVE of the run stopped
        after s steps, `Trajectory.prefix`) in the baseline PCA basis: [n, 2]; 1 <= s <= T."""
        from ..influence.embedding import DataValueEmbedding
        sched = self.result.schedule
        s = as_int(s, "step s")
        if not 1 <= s <= len(sched):
            raise IndexError(f"step {s} is outside 1..{len(sched)}")
        if (sched, int(s)) not in self._frames:
            dve = DataValueEmbedding(**self.dve_kwargs).fit(self.result.traj.prefix(int(s)))
            self._frames[sched, int(s)] = plots.project(self._per_point(dve), self.basis)
        return self._frames[sched, int(s)]

    def summary(self) -> str:
        r = self.result
        sgd = "" if r.sgd_influence is None else f", SGD-influence {r.sgd_influence:+.2e}"
        rel = f"; {r.exact / r.test_loss:+.1%} of the test loss {r.test_loss:.3f}" if r.test_loss > 0 else ""
        if r.exact == 0:
            agree = ""
        elif np.sign(r.estimate) != np.sign(r.exact):
            agree = " has the opposite sign"
        else:
            agree = f" is {abs(r.estimate - r.exact) / abs(r.exact):.0%} off"
        left = f"{len(r.left_out)} point{'s' if len(r.left_out) != 1 else ''} left out"
        return (f"Point {r.point} at steps {', '.join(map(str, r.steps)) or '(none)'}: it "
                f"{sign_reading(r.exact, 0.01 * r.test_loss)}. Removing it everywhere changes the mean test "
                f"loss by {r.exact:+.2e} (exact replay{rel}); the DVE estimate {r.estimate:+.2e}{agree}{sgd}. "
                f"{left}; last retrain {r.seconds:.2f} s.")

    def figure(self):
        return plots.reorder_figure(self.result, self.previous, self.labels, self.stale)

    def frame_limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Axis limits (x, y) that hold every frame of the current run on the same scale, so that Play
        shows the cloud growing instead of rescaling each frame (from the frames at T/4, T/2, 3T/4, T)."""
        T = len(self.result.schedule)
        xy = np.concatenate([self.frame(s) for s in sorted({max(1, T // 4), max(1, T // 2), max(1, 3 * T // 4), T})])
        lo, hi = xy.min(0), xy.max(0)
        pad = 0.08 * np.maximum(hi - lo, 1e-12)
        return (float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1]))

    def frame_figure(self, s: int):
        xy, r = self.frame(s), self.result
        seen = np.zeros(self.n, bool)
        seen[[i for b in r.schedule.batches[:int(s)] for i in b]] = True
        return plots.reorder_frame(xy, self.labels, r.point, sorted(r.left_out), seen, r.traj.batch_losses, int(s),
                                   limits=self.frame_limits())
