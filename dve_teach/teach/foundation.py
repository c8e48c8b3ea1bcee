"""Lesson 10 and the bench's section (k): a foundation model in miniature — a causal character
transformer pretrained on Shakespeare's plays and fine-tuned on his Sonnets with a fresh AdamW, one
multi-stage run (`dt.train_stages`, paper §6's pretrain → fine-tune setting) — and the parts the
lesson needs: the query (`MeanLoss`), passages as text, a passage moved to another step and its
exact TSLOO there (`place`, `placement_exact`), the per-step curve across both stages (`stage_curve`)
with their figures. The widget's model, `FoundationModel`, is in `dve_teach.teach.foundation_model`
(`dve_teach.teach.widgets.FoundationExplorer` is its view).

Every influence here is TSLOO-signed: m(θ'_T) − m(θ_T) for the run without the passage (> 0: the
passage helped, its removal raises the held-out sonnet loss).
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import torch

from . import plots
from ..data.checks import as_int
from ..data.config import sized
from ..influence.loo import exact_loo
from ..influence.phases import exact_influence, sample_occurrences
from ..influence.scores import Influence
from ..influence.unroll import unrolled_influence
from ..training.schedule import Schedule
from ..training.trajectory import Trajectory

__all__ = ["BENCH_SIZES", "lesson_sizes", "foundation_run", "MeanLoss", "passage", "place",
           "placement_exact", "stage_curve", "candidates_figure", "stage_figure"]


def BENCH_SIZES() -> dict:
    """The bench's sizes (full mode; fast mode when DVE_TEACH_FAST=1): `foundation_run`'s default."""
    return dict(context=sized(32, 16), n_plays=sized(384, 256), n_plays_test=sized(64, 16),
                n_sonnets=sized(96, 32), n_sonnets_test=sized(32, 8), d_model=sized(48, 16),
                n_heads=sized(4, 2), n_layers=sized(2, 1), peak=sized(3e-3, 2e-2))


def lesson_sizes() -> dict:
    """Lesson 10's sizes: the bench's fast sizes in fast mode, with 48 sonnet passages and a stronger
    fine-tuning (η = 3e-3); a wider model in full mode (kept small enough for exact replay of many
    passages in seconds on one thread)."""
    return dict(context=16, n_plays=256, n_plays_test=16, n_sonnets=48, n_sonnets_test=8,
                d_model=sized(24, 16), n_heads=2, n_layers=1, peak=sized(1e-2, 2e-2), fine_lr=3e-3)


def foundation_run(seed: int = 0, *, sizes: Optional[dict] = None, eps=1e-8,
                   plays_schedule: Optional[Schedule] = None, batch_size: int = 16, epochs: int = 2):
    """(trajectory, plays `TextSplit`, sonnets `TextSplit`, training seconds) of the two-stage run.

    Stage 1 ("plays"): ``n_plays`` sequences of ``context`` + 1 characters, `epochs` shuffled epochs
    of batch `batch_size`, AdamW (λ = 0.01, ε = `eps`) under warm-up + cosine (peak ``peak``, 10%
    warm-up). Stage 2 ("sonnets"): a fresh AdamW (same ε) on ``n_sonnets`` sequences, `epochs`
    epochs, constant η = ``fine_lr`` (default 1e-3). `sizes`: a dict like `BENCH_SIZES()` (the default). `plays_schedule`
    replaces stage 1's order (e.g. from `place`). `eps`: one ε, or a pair (stage 1, stage 2). Plays
    points are global indices 0..n_plays−1."""
    import dve_teach as dt
    z = BENCH_SIZES() if sizes is None else sizes
    ctx, b = z["context"], as_int(batch_size, "batch_size", 1)
    plays = dt.datasets.shakespeare("plays", z["n_plays"], z["n_plays_test"], ctx, seed=seed)
    sonnets = dt.datasets.shakespeare("sonnets", z["n_sonnets"], z["n_sonnets_test"], ctx, seed=seed)
    s1 = plays_schedule if plays_schedule is not None else Schedule.shuffled(len(plays.train), b, epochs=epochs, seed=seed)
    s2 = Schedule.shuffled(len(sonnets.train), b, epochs=epochs, seed=seed + 1)
    T1 = len(s1)
    e1, e2 = (eps, eps) if np.isscalar(eps) else tuple(eps)
    model = dt.models.char_transformer(plays.vocab, z["d_model"], z["n_heads"], z["n_layers"], ctx, seed=seed)
    stages = [dt.Stage(plays.train, s1, dt.lr.warmup_cosine(z["peak"], T1, warmup=max(1, T1 // 10)),
                       dt.optim.AdamW(weight_decay=0.01, eps=e1), "plays"),
              dt.Stage(sonnets.train, s2, z.get("fine_lr", 1e-3), dt.optim.AdamW(weight_decay=0.01, eps=e2), "sonnets")]
    t0 = time.perf_counter()
    traj = dt.train_stages(model, stages)
    return traj, plays, sonnets, time.perf_counter() - t0


class MeanLoss:
    """The query as a measure: ``MeanLoss(test)(model, params, data)`` = the mean sequence loss over
    `test` as a Tensor[1] (pass any one row as the estimators' ``test``): one backward sweep for the
    whole query instead of one per held-out sequence."""

    def __init__(self, test):
        self.test = test

    def __call__(self, model, params, data) -> torch.Tensor:
        from torch.func import functional_call
        from ..training.functional import cross_entropy
        out = functional_call(model, params, (self.test.X,))
        return cross_entropy(out, self.test.y).mean().reshape(1)


def passage(split, i: int, which: str = "train") -> str:
    """The text of sequence `i` of ``split.train`` (or ``split.test``): its inputs plus the last
    next character (context + 1 characters)."""
    d = split.train if which == "train" else split.test
    i = as_int(i, "i", 0)
    if i >= len(d):
        raise IndexError(f"sequence {i} is out of range: there are {len(d)} ({which})")
    return split.vocab.decode(torch.cat([d.X[i], d.y[i, -1:]]))


def place(schedule: Schedule, i: int, from_step: int, to_step: int) -> Schedule:
    """`schedule` with point `i`'s occurrence at `from_step` moved to `to_step`, batches kept full:
    `i` swaps places with the first member of batch `to_step` that is not already in batch
    `from_step`. Raises if `i` is not in batch `from_step` or already in batch `to_step`."""
    bs = [list(b) for b in schedule.batches]
    i, f, t = as_int(i, "point", 0), schedule._check_step(from_step), schedule._check_step(to_step)
    if i not in bs[f]:
        raise ValueError(f"point {i} is not in batch {f}; it is in steps {schedule.occurrences(i)}")
    if f == t:
        return schedule
    if i in bs[t]:
        raise ValueError(f"point {i} is already in batch {t}; pick a step outside {schedule.occurrences(i)}")
    j = next(x for x in bs[t] if x not in bs[f])
    bs[f][bs[f].index(i)], bs[t][bs[t].index(j)] = j, i
    return Schedule(bs, schedule.batch_size, schedule.n)


def placement_exact(seed: int, i: int, from_step: int, to_steps: Sequence[int], *, sizes: Optional[dict] = None,
                    **run_kw) -> np.ndarray:
    """For each step s in `to_steps`: retrain with passage `i`'s occurrence at `from_step` moved to
    s (`place`), then the exact TSLOO on the mean held-out sonnet loss of removing it at s only.
    Array[len(to_steps)]. Every other occurrence and batch stays where it was."""
    traj0, _, _, _ = foundation_run(seed, sizes=sizes, **run_kw)
    s1 = traj0.stages[0]
    base = Schedule(traj0.schedule.batches[s1.steps.start:s1.steps.stop], traj0.schedule.batch_size,
                    len(s1.points))
    out = []
    for s in to_steps:
        traj, _, son, _ = foundation_run(seed, sizes=sizes, plays_schedule=place(base, i, from_step, s), **run_kw)
        out.append(float(exact_loo(traj, son.test[:1], [i], [s], measure=MeanLoss(son.test), progress=False)[0, 0]))
    return np.array(out)


def stage_curve(traj: Trajectory, test, per_step: int = 4, n_steps: int = 8, seed: int = 0,
                influence: Optional[Influence] = None) -> dict:
    """Paper Figure 1(a) across stages: c_t = mean over batch t of |first-order influence on the mean
    loss over `test`| / η_t (`dt.unrolled_influence` through the optimizer's state), and the same view of
    exact single-step replays of `per_step` members at `n_steps` evenly spaced steps.
    {"curve" Tensor[T], "steps" array, "exact" Tensor[len(steps)], "estimate" (the curve's view of the
    same sampled occurrences), "influence" (the `Influence`)}. `influence`: a precomputed
    ``dt.unrolled_influence(traj, test[:1], measure=MeanLoss(test))`` to reuse."""
    m, one = MeanLoss(test), test[:1]
    est = unrolled_influence(traj, one, measure=m) if influence is None else influence
    view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
    steps = np.unique(np.linspace(0, traj.T - 1, min(n_steps, traj.T)).round().astype(int))
    pts, sts = sample_occurrences(traj.schedule, steps.tolist(), per_step, seed=seed)
    ex = exact_influence(traj, one, pts, sts, measure=m, progress=False)
    at = Influence(est.at(pts, sts), pts, sts, est.n_train)
    return dict(curve=est.by_step(**view), steps=steps, exact=ex.by_step(**view)[steps],
                estimate=at.by_step(**view)[steps], influence=est)


def candidates_figure(first_order, exact, n_end: int = 8):
    """First order against exact TSLOO of replayed passages (symlog axes): the first `n_end` are first
    order's most helpful (blue), the next `n_end` its most harmful (orange), the rest random (grey);
    the diagonal is agreement."""
    a, b = np.asarray(first_order, dtype=float), np.asarray(exact, dtype=float)
    with plots.style():
        fig, axes = plots.new_figure(1, 1, figsize=(4.8, 3.6))
        _candidates(axes[0, 0], a, b, n_end)
    fig.subplots_adjust(left=0.17, bottom=0.14, top=0.95)
    return fig


def _candidates(ax, a, b, n_end):
    groups = ((slice(0, n_end), "#0072B2", "first order's top"), (slice(n_end, 2 * n_end), "#D55E00",
              "first order's bottom"), (slice(2 * n_end, None), "#999999", "random"))
    for sl, colour, label in groups:
        ax.scatter(b[sl], a[sl], s=18, color=colour, label=label)
    lim = float(np.abs(np.concatenate([a, b])).max()) * 1.2
    lin = float(np.percentile(np.abs(b[b != 0]), 20)) if np.any(b != 0) else 1e-6
    ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.6)
    ax.set_xscale("symlog", linthresh=lin)
    ax.set_yscale("symlog", linthresh=lin)
    ax.set_xlabel("exact TSLOO (replay)")
    ax.set_ylabel("first order through AdamW")
    ax.legend(fontsize=7)


def stage_figure(traj: Trajectory, curve: dict):
    """The per-step curve c_t of `stage_curve` over both stages (log scale), warm-up end and the
    boundary marked, exact replays (diamonds) and the estimate at the same samples (circles); below,
    η_t."""
    with plots.style():
        fig, axes = plots.new_figure(1, 2, figsize=(7.2, 4.0), sharex=True, height_ratios=[3, 1])
        _stage(axes[0, 0], axes[1, 0], traj, curve)
    fig.subplots_adjust(left=0.1, bottom=0.12, top=0.96)
    return fig


def _stage(a, b, traj, curve):
    c = curve["curve"].numpy()
    a.plot(np.arange(len(c)), c, color="#0072B2", lw=1.2, label="first order c_t")
    a.scatter(curve["steps"], curve["exact"], marker="D", color="#D55E00", zorder=3, label="exact (replay)")
    a.scatter(curve["steps"], curve["estimate"], facecolors="none", edgecolors="#0072B2", zorder=3,
              label="estimate, same samples")
    a.set_yscale("log")
    a.set_ylabel("c_t = mean |TSLOO| / η_t")
    B = traj.stages[1].steps.start
    w = max(1, B // 10)
    for ax in (a, b):
        ax.axvline(B - 0.5, color="k", ls="--", lw=1)
        ax.axvspan(-0.5, w - 0.5, color="#E69F00", alpha=0.15)
    a.text(B - 0.5, a.get_ylim()[1], " fine-tuning", va="top", fontsize=8)
    a.text(0, a.get_ylim()[1], "warm-up", va="top", fontsize=8)
    a.legend(fontsize=7, loc="lower left")
    b.plot(traj.lrs.numpy(), color="#666666")
    b.set_ylabel("η_t")
    b.set_xlabel("step t (pretraining: cosine decay after warm-up)")
