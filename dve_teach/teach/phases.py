"""Lesson 06's model: a learning-rate schedule and a run length -> the per-step influence curve
(paper §5.3, Figure 1(a)) with exact samples marked, and its figure. Plain Python (no
ipywidgets); `dve_teach.teach.widgets.PhaseExplorer` is the thin view over it.

The curves: train the digits problem for `epochs` epochs with the schedule; for each step t take
the mean over the batch of |influence on the mean test loss| / η_t (`Influence.by_step("mean_abs",
per_lr=True, test="mean")`) of two first-order estimators: the data value embedding (Fisher, the
paper's choice, §4.1) and SGD-influence (the same first-order expansion with the exact Hessians,
Hara et al. 2019). Exact samples: single-step TSLOO by replay of `per_step` members of the
batches at `exact_steps` evenly spaced steps, reduced the same way.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from . import plots
from ..data.checks import as_int, as_number
from ..data.config import sized
from ..influence.embedding import DataValueEmbedding
from ..influence.phases import exact_influence, gradient_norms, phase_levels, sample_occurrences
from ..influence.unroll import sgd_influence
from ..training import lr as lrs
from ..training.schedule import Schedule
from .explorers import Problem, _threads

__all__ = ["SCHEDULES", "make_schedule", "mean_test_loss", "PhaseModel", "phase_figure"]

SCHEDULES = ("constant", "warmup_cosine", "linear_decay", "step_decay")


def make_schedule(kind: str, peak: float, T: int, warmup: float = 0.1) -> lrs.LRSchedule:
    """The `dt.lr` schedule of `kind` for a run of T steps: peak `peak`; a warm-up over the first
    `warmup` fraction of the steps (cosine, linear); step decay halves η every T/4 steps."""
    w = int(round(warmup * T))
    if kind == "constant":
        return lrs.constant(peak)
    if kind == "warmup_cosine":
        return lrs.warmup_cosine(peak, T, warmup=w)
    if kind == "linear_decay":
        return lrs.linear_decay(peak, T, warmup=w)
    if kind == "step_decay":
        return lrs.step_decay(peak, max(1, T // 4), gamma=0.5)
    raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")


def mean_test_loss(problem: Problem):
    """A `measure` for one row: the mean loss over ``problem.test`` (Tensor[1], whatever data it
    is given). The per-step curves need only this mean, and `sgd_influence` then sweeps one
    Hessian-vector product per step instead of one per test point."""
    from torch.func import functional_call

    from ..training.functional import resolve_loss
    loss, X, y = resolve_loss(problem.loss), problem.test.X, problem.test.y
    return lambda model, params, data: loss(functional_call(model, params, (X,)), y).mean().reshape(1)


class PhaseModel:
    """State: ``schedule`` (a name of `SCHEDULES`), ``peak`` (η at its top), ``epochs`` (run
    length). ``update()`` trains and measures (cached by the three), ``summary()``, ``figure()``.
    problem: default `Problem.digits` (600/200 digits, fast mode 400/100; b = 32).
    exact_steps, per_step: how many evenly spaced steps get exact replays, and of how many points."""

    def __init__(self, problem: Optional[Problem] = None, schedule: str = "warmup_cosine", peak: float = 0.4,
                 epochs: int = 15, warmup: float = 0.1, exact_steps: int = 12, per_step: Optional[int] = None,
                 seed: int = 0):
        self.problem = problem or Problem.digits(n_train=sized(600, 400), n_test=sized(200, 100), seed=seed)
        self.schedule, self.peak, self.epochs, self.warmup = schedule, peak, epochs, as_number(warmup, "warmup")
        self.exact_steps = as_int(exact_steps, "exact_steps", 1)
        self.per_step = sized(8, 6) if per_step is None else as_int(per_step, "per_step", 1)
        self.seed = as_int(seed, "seed", 0)
        self._settings()
        self._cache: dict = {}

    def _settings(self) -> tuple:
        """Every setting that changes the run, checked — they may be set directly, as the widget does:
        no silent truncation of 2.5 epochs, no True for 1, and none left out of the cache key."""
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        self.epochs = as_int(self.epochs, "epochs", 1)
        self.peak = as_number(self.peak, "peak")
        self.warmup = as_number(self.warmup, "warmup")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is the warm-up fraction of the steps, in [0, 1); got {self.warmup}")
        self.seed = as_int(self.seed, "seed", 0)
        self.exact_steps = as_int(self.exact_steps, "exact_steps", 1)
        self.per_step = as_int(self.per_step, "per_step", 1)
        return (self.schedule, round(self.peak, 10), self.epochs, self.warmup, self.seed, self.exact_steps,
                self.per_step)

    @_threads
    def update(self) -> dict:
        """{"traj", "dve", "influence" (DVE), "curve" Tensor[T] (DVE), "levels" (`phase_levels` of
        it), "sgd_curve", "sgd_levels" (SGD-influence), "exact_steps", "exact_curve",
        "dve_at_samples", "sgd_at_samples" [len(exact_steps)], "grad_norms" Tensor[T] (mean
        ‖∇ℓ(θ_t, z_i)‖ of each batch), "test_loss"} for the current settings (cached)."""
        key = self._settings()
        if key not in self._cache:
            p = self.problem
            order = Schedule.shuffled(len(p.train), p.batch_size, self.epochs, seed=self.seed)
            T = len(order)
            traj = p.fit(order, make_schedule(self.schedule, self.peak, T, self.warmup))
            dve = DataValueEmbedding().fit(traj)
            inf = dve.influence(p.test)
            view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
            curve = inf.by_step(**view)
            steps = np.unique(np.linspace(0, T - 1, min(self.exact_steps, T)).round().astype(int))
            pts, sts = sample_occurrences(order, steps.tolist(), self.per_step, seed=self.seed)
            ex = exact_influence(traj, p.test, pts, sts, progress=False)
            sgd = sgd_influence(traj, p.test[[0]], measure=mean_test_loss(p))   # one HVP row per step
            sgd_curve = sgd.by_step(**view)

            def at_samples(est):
                return type(est)(est.at(pts, sts), pts, sts, est.n_train).by_step(**view)[steps]
            self._cache[key] = dict(
                traj=traj, dve=dve, influence=inf, curve=curve, levels=phase_levels(curve, min(10, T)),
                sgd_curve=sgd_curve, sgd_levels=phase_levels(sgd_curve, min(10, T)), exact_steps=steps,
                exact_curve=ex.by_step(**view)[steps], dve_at_samples=at_samples(inf), sgd_at_samples=at_samples(sgd),
                grad_norms=gradient_norms(traj).by_step("mean", test="mean"),
                test_loss=float(traj.test_losses(p.test).mean()))
        return self._cache[key]

    def summary(self) -> str:
        r = self.update()
        lv, sv = r["levels"], r["sgd_levels"]
        return (f"{self.schedule}, peak η {self.peak:g}, {self.epochs} epochs ({r['traj'].T} steps): final test loss "
                f"{r['test_loss']:.3f}; start/basin, end/basin: SGD-influence {sv['start_over_basin']:.2f}, "
                f"{sv['end_over_basin']:.2f}; DVE {lv['start_over_basin']:.2f}, {lv['end_over_basin']:.2f}")

    def figure(self):
        r = self.update()
        return phase_figure({"SGD-influence (exact H)": r["sgd_curve"], "DVE (Fisher)": r["curve"]}, r["traj"].lrs,
                            r["exact_steps"], r["exact_curve"], f"{self.schedule}, {self.epochs} epochs",
                            estimate_at_samples=r["sgd_at_samples"])


def phase_figure(curves: dict, lrs_t, exact_steps, exact_curve, title: str = "", estimate_at_samples=None):
    """Left: η_t. Right: each curve of `curves` {label: Tensor[T]} (thin: every step; thick: a
    centred moving average over ~T/20 steps), exact TSLOO at the sampled steps (black diamonds) and,
    when given, the first curve's estimate at the same sampled points (hollow circles, its colour),
    log y. The legend sits beside the panels and names the smoothing (review L06-e1)."""
    from matplotlib.lines import Line2D
    T = len(lrs_t)
    k = max(1, T // 20)
    with plots.style():
        fig, ax = plots.new_figure(2, figsize=(9.5, 3.2), width_ratios=[1, 2.2])   # ≤ 1050 px wide at DPI 110
        fig.subplots_adjust(left=0.07, right=0.75)
        ax[0, 0].plot(np.arange(T), lrs_t.double().numpy(), color=plots.COLORS[2])
        ax[0, 0].set(xlabel="step t", ylabel=r"$\eta_t$", title="learning rate", ylim=(0, None))
        a = ax[0, 1]
        for j, (label, curve) in enumerate(curves.items()):
            c = curve.detach().double().numpy()
            smooth = np.convolve(c, np.ones(k) / k, mode="valid")
            a.plot(np.arange(T), c, color=plots.COLORS[j], lw=0.5, alpha=0.4)
            a.plot(np.arange(len(smooth)) + (k - 1) / 2, smooth, color=plots.COLORS[j], lw=2, label=label)
        if estimate_at_samples is not None:
            a.scatter(exact_steps, torch.as_tensor(estimate_at_samples).numpy(), marker="o", s=34,
                      facecolor="none", edgecolor=plots.COLORS[0], lw=1.2, zorder=3,
                      label=f"{next(iter(curves)).split(' (')[0]}, same points")
        a.scatter(exact_steps, torch.as_tensor(exact_curve).numpy(), marker="D", s=22, color="0.1",
                  zorder=4, label="exact TSLOO (sampled)")
        a.set_yscale("log")
        a.set(xlabel="step t (when the batch was used)", ylabel=r"mean |influence| / $\eta_t$",
              title=f"per-step influence on the mean test loss — {title}")
        handles, labels = a.get_legend_handles_labels()
        if k > 1:                                           # a run of under 40 steps is not smoothed
            handles += [Line2D([], [], color="0.5", lw=0.5), Line2D([], [], color="0.5", lw=2)]
            labels += ["thin: every step", f"thick: mean of {k} steps"]
        a.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig
