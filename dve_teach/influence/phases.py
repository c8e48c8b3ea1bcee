"""Phases of influence: per-step curves of a run, exact samples beside them, and their shape
(paper §5.3, Figure 1(a) and Figure 4).

The paper plots, per training batch, the average influence of its points on the final model's
validation loss, divided by the batch's learning rate η_t, and finds three regimes: a brief
high-impact start, a low basin and a gradual late ascent. Here:

  - `Influence.by_step(reduce, per_lr=True, lrs=traj.lrs, test="mean")` is that curve for any
    estimator (`scores.py`);
  - `sample_occurrences` + `exact_influence` give the same view of exact TSLOO for a sample of
    (point, step) pairs (one replay each, `exact_loo` with ``steps=``);
  - `gradient_norms` (‖∇ℓ(θ_t, z_i)‖ of each occurrence) and `embedding_norms` (‖DVE(i, t)‖/η_t
    = ‖K_t g_i‖/b) separate the two causes the paper names: large early gradients, and the later
    steps' factors K_t = Π_{k>t}(I − η_k H_k) absorbing earlier influence;
  - `phase_levels` reads a curve's start, basin and end levels off equal bins.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data.container import DataLike
from ..training.schedule import Schedule
from ..training.trajectory import Trajectory
from .scores import Influence

__all__ = ["sample_occurrences", "exact_influence", "gradient_norms", "embedding_norms", "phase_levels"]


def sample_occurrences(schedule: Schedule, steps: Sequence[int], per_step: int,
                       seed: int = 0) -> tuple[list[int], list[int]]:
    """(points, steps): `per_step` members drawn without replacement from the batch of each of
    `steps` (all of a batch when it is smaller), by ``numpy.random.default_rng(seed)``."""
    if isinstance(per_step, bool) or not isinstance(per_step, int) or per_step < 1:
        raise ValueError(f"per_step must be an integer >= 1, got {per_step!r}")
    rng = np.random.default_rng(seed)
    points, out_steps = [], []
    for t in steps:
        if not 0 <= int(t) < len(schedule):
            raise IndexError(f"step {t} is out of range: the schedule has {len(schedule)} steps")
        batch = schedule.batches[int(t)]
        pick = rng.choice(len(batch), min(per_step, len(batch)), replace=False)
        points += [batch[k] for k in sorted(pick)]
        out_steps += [int(t)] * len(pick)
    return points, out_steps


def exact_influence(traj: Trajectory, test: DataLike, points: Sequence[int], steps: Sequence[int],
                    **kw) -> Influence:
    """Exact single-step TSLOO of each (point, step) pair as an `Influence` (method ``"exact"``),
    so `by_step` gives the exact per-step view: ``per_occurrence`` = ``exact_loo(traj, test,
    points, steps, **kw)`` [len(points), n_test]. One replay of T − t steps per pair."""
    from .loo import exact_loo

    scores = exact_loo(traj, test, points, steps, **kw)
    return Influence(scores, torch.as_tensor(list(points)), torch.as_tensor(list(steps)), traj.schedule.n,
                     method="exact", lrs=traj.lrs)


def gradient_norms(traj: Trajectory) -> Influence:
    """‖∇ℓ(θ_t, z_i)‖ of every occurrence, as a one-column `Influence` (rows in
    ``schedule.occurrence_pairs()`` order): ``.by_step("mean")`` is the mean gradient norm of each
    batch at the parameters it was used at."""
    rows = []
    with torch.no_grad():
        for t, theta in traj.iter_params():
            _, X, y = traj.batch(t)
            rows.append(traj.objective.per_sample_grads(theta, X, y).norm(dim=1))
    pts, sts = traj.schedule.occurrence_pairs()
    return Influence(torch.cat(rows)[:, None], pts, sts, traj.schedule.n, method="gradient_norm", lrs=traj.lrs)


def embedding_norms(dve, per_lr: bool = True) -> Influence:
    """‖DVE(i, t)‖ of every occurrence of a fitted `DataValueEmbedding`, divided by η_t when
    `per_lr` (then ‖K_t g_i‖/b for the zero-weight removal), as a one-column `Influence`."""
    if not hasattr(dve, "embeddings_"):
        raise RuntimeError("the DataValueEmbedding is not fitted yet: call .fit(traj) first")
    norms = dve.embeddings_.norm(dim=1)
    if per_lr:
        lrs = dve.trajectory_.lrs.to(norms.device, norms.dtype)[dve.steps_.to(norms.device)]
        if bool((lrs <= 0).any()):
            raise ValueError("per_lr=True needs η_t > 0 at every step; use per_lr=False")
        norms = norms / lrs
    return Influence(norms[:, None], dve.points_, dve.steps_, dve.trajectory_.schedule.n,
                     method="embedding_norm", lrs=dve.trajectory_.lrs)


def phase_levels(curve, bins: int = 10) -> dict:
    """The shape of a per-step curve Tensor[T] (NaN entries, steps without data, are skipped):
    the means of `bins` equal consecutive chunks of steps (``numpy.array_split``), and

      ``start`` = the first chunk, ``end`` = the last, ``basin`` = the lowest chunk in between,
      ``basin_bin`` its index; ``start_over_basin``, ``end_over_basin`` the ratios.
    """
    c = curve.detach().cpu().double().numpy() if isinstance(curve, torch.Tensor) else np.asarray(curve, float)
    if c.ndim != 1:
        raise ValueError(f"curve must be 1-D (one value per step), got shape {c.shape}")
    if isinstance(bins, bool) or not isinstance(bins, int) or not 3 <= bins <= len(c):
        raise ValueError(f"bins must be an integer in 3..{len(c)} (the number of steps), got {bins!r}")
    chunks = np.array_split(c, bins)
    if any(np.all(np.isnan(ch)) for ch in chunks):
        raise ValueError("a chunk of steps holds no values: use fewer bins or sample more steps")
    levels = np.array([np.nanmean(ch) for ch in chunks])
    k = 1 + int(np.argmin(levels[1:-1]))
    return {"bins": levels, "start": float(levels[0]), "end": float(levels[-1]), "basin": float(levels[k]),
            "basin_bin": k, "start_over_basin": float(levels[0] / levels[k]),
            "end_over_basin": float(levels[-1] / levels[k])}
