"""Acting on influence: find mislabelled points, and select training data online
(paper §5.1 / App. E.2.1 mislabel detection; §5.3, Figure 1(b) selection timing).

- `flip_labels(data, fraction, seed)`: a copy of classification data with a random `fraction` of
  labels replaced by a different class drawn uniformly; returns it and the flipped indices.
- `detection_scores(traj, validation, method)`: one score per training point, higher = more
  likely mislabelled (rank by it, compare with `dt.metrics.roc_auc` / `precision_at_k`):
    ``"dve_self"``   Σ_t DVE(i, t) · ∇ℓ(θ_T, z_i): the point's influence on its own final loss
                     (a mislabelled point is fitted only by memorising it: large self-influence);
    ``"dve_value"``  −Σ_t DVE(i, t) · ∇L_val(θ_T): minus its value for the mean loss on a clean
                     validation set (a mislabelled point hurts it);
    ``"tracin_self"`` Σ_t (η_t/b) ‖∇ℓ(θ_t, z_i)‖² over its occurrences (Pruthi et al. 2020; the
                     plain-SGD scale, whatever the rule);
    ``"tracin_value"`` −TracIn on the mean validation loss;
    ``"if_self"``    (1/n) g_iᵀ (H + δI)⁻¹ g_i at θ_T (Koh & Liang 2017);
    ``"if_value"``   −influence function on the mean validation loss;
    ``"loss"``       ℓ(θ_T, z_i); ``"random"`` uniform noise (the chance baseline).
- `select_and_train(model, pool, validation, schedule, lr, windows, ratio)`: SGD along
  `schedule`, except that at a step inside a window [start, stop) the batch is rebuilt: its b
  points plus (ratio − 1)·b others drawn from the pool are candidates, and the b whose gradients
  at θ_t align best (largest dot product) with the mean gradient of a validation batch are used
  (the DoGE-style rule the paper adapts, §5.3). Outside the windows the batch is taken as it comes.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..data.container import Data, DataLike, as_data
from ..training.functional import FlatModel, LossLike, Objective
from ..training.loop import LR, resolve_lrs
from ..training.optim import RuleLike, as_rule
from ..training.replay import Engine, Guard
from ..training.schedule import Schedule
from ..training.trajectory import Trajectory

__all__ = ["flip_labels", "METHODS", "detection_scores", "Selection", "select_and_train"]

METHODS = ("dve_self", "dve_value", "tracin_self", "tracin_value", "if_self", "if_value", "loss", "random")


def flip_labels(data: DataLike, fraction: float, seed: int = 0) -> tuple[Data, torch.Tensor]:
    """(noisy copy of `data`, flipped indices Tensor[k] sorted): k = round(fraction · n) points
    chosen without replacement get a label drawn uniformly from the *other* classes (classes =
    0..max label). Needs integer class labels y: Tensor[n]."""
    d = as_data(data, "data")
    f = float(fraction)
    if not math.isfinite(f) or not 0 <= f <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if d.y.ndim != 1 or d.y.is_floating_point():
        raise TypeError("flip_labels needs integer class labels y of shape [n] (classification data)")
    n_classes = int(d.y.max()) + 1
    if n_classes < 2:
        raise ValueError("flip_labels needs at least two classes")
    rng = np.random.default_rng(seed)
    k = int(round(f * len(d)))
    idx = np.sort(rng.choice(len(d), k, replace=False))
    shift = torch.as_tensor(rng.integers(1, n_classes, size=k), dtype=d.y.dtype, device=d.y.device)
    y = d.y.clone()
    where = torch.as_tensor(idx, dtype=torch.int64, device=d.y.device)
    y[where] = (y[where] + shift) % n_classes
    return Data(d.X, y), torch.as_tensor(idx, dtype=torch.int64)


def _per_point(values: torch.Tensor, points: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=values.dtype).index_add_(0, points.cpu(), values.detach().cpu())


def detection_scores(traj: Trajectory, validation: Optional[DataLike] = None, method: str = "dve_self", *,
                     dve=None, damping: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """Tensor[n_train] (float64, CPU): higher = more likely mislabelled, for one of `METHODS`
    (module docstring). ``*_value`` methods need the clean `validation` data. `dve`: a
    `DataValueEmbedding` already fitted on `traj` (default: the paper's Fisher one, fitted here).
    `damping`: the influence function's δ. `seed`: the ``"random"`` scores."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    n = traj.schedule.n
    if method.endswith("_value") and validation is None:
        raise ValueError(f"{method!r} scores by the value on a clean validation set: pass validation=")
    if method == "random":
        return torch.as_tensor(np.random.default_rng(seed).random(n), dtype=torch.float64)
    if method == "loss":
        return traj.test_losses(traj.data).detach().cpu().double()
    if method.startswith("dve"):
        from .embedding import DataValueEmbedding
        if dve is None:
            dve = DataValueEmbedding().fit(traj)
        elif getattr(dve, "trajectory_", None) is not traj:
            raise ValueError("dve must be a DataValueEmbedding fitted on this trajectory (dve.fit(traj))")
        if method == "dve_self":
            G = dve.test_gradients(traj.data)                        # [n, d]
            own = (dve.embeddings_ * G[dve.points_.to(G.device)]).sum(1)
            return _per_point(own, dve.points_, n).double()
        return -dve.influence(validation).total().mean(1).detach().cpu().double()
    if method == "tracin_self":
        rows = []
        with torch.no_grad():
            for t, theta in traj.iter_params():
                _, X, y = traj.batch(t)
                g2 = traj.objective.per_sample_grads(theta, X, y).pow(2).sum(1)
                rows.append(float(traj.lrs[t]) / traj.batch_size * g2)
        pts = torch.as_tensor(traj.schedule.occurrence_pairs()[0], dtype=torch.int64)
        return _per_point(torch.cat(rows), pts, n).double()
    if method == "tracin_value":
        from .baselines import tracin
        return -tracin(traj, validation).total().mean(1).detach().cpu().double()
    from .baselines import influence_function
    if method == "if_value":
        return -influence_function(traj, validation, damping=damping).mean(1).detach().cpu().double()
    # if_self: the diagonal of the influence function of the training set on itself
    scores = influence_function(traj, traj.data, damping=damping)
    return torch.diagonal(scores).detach().cpu().double().clone()


@dataclass
class Selection:
    """Result of `select_and_train`: the recorded run (``trajectory``, its schedule = the batches
    actually used), ``test_loss`` (mean loss of θ_T on `test`, NaN without test data), the steps
    where a batch was selected, and the cost: ``extra_gradients`` per-sample gradient
    evaluations beyond plain training ((ratio − 1)·b candidates + the validation batch, per
    selected step) and ``relative_cost`` = (plain + extra) / plain; ``candidates`` {step: the
    candidate indices} of each selected step."""

    trajectory: Trajectory
    test_loss: float
    selected_steps: list
    extra_gradients: int
    relative_cost: float
    candidates: dict


def _check_windows(windows: Sequence, T: int) -> list[tuple[int, int]]:
    out = []
    for w in windows:
        try:
            start, stop = (int(v) for v in w)
        except (TypeError, ValueError):
            raise ValueError(f"each window must be a pair (start, stop) of steps, got {w!r}") from None
        if not 0 <= start <= stop <= T:
            raise ValueError(f"window {w!r} must satisfy 0 <= start <= stop <= T = {T} (stop excluded)")
        out.append((start, stop))
    return out


def select_and_train(model: nn.Module, pool: DataLike, validation: DataLike, schedule: Schedule, lr: LR, *,
                     windows: Sequence = (), ratio: int = 4, val_batch_size: Optional[int] = None,
                     test: Optional[DataLike] = None, loss: LossLike = "cross_entropy",
                     weight_decay: float = 0.0, optimizer: RuleLike = None, seed: int = 0,
                     dtype: torch.dtype = torch.float64) -> Selection:
    """Train a copy of `model` on `pool` along `schedule` (T steps, batch size b), selecting
    batches online inside `windows` (module docstring; paper §5.3, Figure 1(b)).

    At a selected step t: candidates = B_t followed by (ratio − 1)·b pool points not in B_t
    (drawn without replacement by ``default_rng([seed, t])``); a validation batch of
    `val_batch_size` points (None: all of `validation`) is drawn the same way; scores
    a_i = ∇ℓ(θ_t, z_i) · (1/|V|) Σ_{v∈V} ∇ℓ(θ_t, z_v); the b largest are kept, in candidate
    order, and the step is the run's update rule (plain SGD θ_{t+1} = θ_t − η_t((1/b) Σ ∇ℓ + λθ_t)
    unless `optimizer` says otherwise, as in `dt.train`), through the one replay engine. With
    ``windows=[]`` the run is bitwise the one of `dt.train`.
    """
    d, v = as_data(pool, "pool"), as_data(validation, "validation")
    if not isinstance(schedule, Schedule):
        raise TypeError("schedule must be a dt.Schedule over the pool (e.g. dt.Schedule.shuffled(len(pool), 32))")
    if schedule.n != len(d):
        raise ValueError(f"the schedule indexes {schedule.n} points but the pool has {len(d)}: "
                         f"build it with n={len(d)}")
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise ValueError(f"ratio must be an integer >= 1 (candidates per kept point), got {ratio!r}")
    b, T = schedule.batch_size, len(schedule)
    if ratio * b > len(d):
        raise ValueError(f"ratio·b = {ratio * b} candidates exceed the pool's {len(d)} points: lower ratio")
    if val_batch_size is not None and not 1 <= int(val_batch_size) <= len(v):
        raise ValueError(f"val_batch_size must be in 1..{len(v)} (the validation size), got {val_batch_size!r}")
    wins = _check_windows(windows, T)
    inside = [any(s <= t < e for s, e in wins) for t in range(T)]
    device = d.device
    d, v = d.to(device, dtype), v.to(device, dtype)
    net = copy.deepcopy(model).to(device=device, dtype=dtype)
    net.eval()
    lrs = resolve_lrs(lr, T)
    rule = as_rule(optimizer, weight_decay)
    obj = Objective(FlatModel(net), loss)
    theta0 = obj.flat.flatten().to(device, dtype)
    engine, guard = Engine(obj, rule, lrs, b), Guard.of(obj, theta0, d)
    state = rule.init(theta0)
    checkpoints, losses, batches, selected, extra = {0: state}, torch.empty(T, dtype=torch.float64), [], [], 0
    candidates: dict = {}
    for t in range(T):
        batch = list(schedule.batches[t])
        theta = rule.theta(state)
        if inside[t]:
            rng = np.random.default_rng([seed, t])
            rest = np.setdiff1d(np.arange(len(d)), batch)
            cand = batch + rng.choice(rest, (ratio - 1) * b, replace=False).tolist()
            vidx = (np.arange(len(v)) if val_batch_size is None
                    else np.sort(rng.choice(len(v), int(val_batch_size), replace=False)))
            ci = torch.as_tensor(cand, device=device)
            vi = torch.as_tensor(vidx, device=device)
            G = obj.per_sample_grads(theta, d.X[ci], d.y[ci])
            gv = obj.per_sample_grads(theta, v.X[vi], v.y[vi]).mean(0)
            keep = torch.topk(G @ gv, min(b, len(cand))).indices.sort().values
            batch = [cand[k] for k in keep.tolist()]
            selected.append(t)
            candidates[t] = cand
            extra += (ratio - 1) * b + len(vidx)
        idx = torch.as_tensor(batch, dtype=torch.int64, device=device)
        X, y = d.X[idx], d.y[idx]
        state, losses[t] = engine.step(state, t, X, y)
        guard.check(losses[t], rule.theta(state), t, engine.lr(t))
        checkpoints[t + 1] = state
        batches.append(batch)
    used = Schedule(batches, b, len(d))
    traj = Trajectory(net, d, used, lrs, rule, loss, checkpoints, losses)
    traj.flat.load_into(net, rule.theta(state))
    plain = sum(len(bt) for bt in schedule.batches)
    test_loss = math.nan
    if test is not None:
        test_loss = float(traj.test_losses(as_data(test, "test").to(device, dtype)).mean())
    return Selection(traj, test_loss, selected, extra, (plain + extra) / plain, candidates)
