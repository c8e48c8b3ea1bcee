"""`train`: run functional SGD over a `Schedule` and record the `Trajectory`.

    θ_{t+1} = θ_t − η_t · ((1/b) Σ_{i∈B_t} ∇ℓ(θ_t, z_i) + λ θ_t)      (DEVELOPERS.md; paper §2)
"""
from __future__ import annotations

import copy
import math
import numbers
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..data.checks import as_number
from ..data.container import DataLike, as_data, check_finite
from .functional import LossLike
from .schedule import Schedule
from .trajectory import Trajectory

__all__ = ["train", "resolve_lrs", "LOSS_GROWTH", "PARAM_GROWTH"]

LR = Union[float, Sequence[float], Callable[[int], float]]


def resolve_lrs(lr: LR, T: int) -> torch.Tensor:
    """η_t for t = 0..T−1 from a number (float, int, numpy scalar, 0-d tensor), a sequence (list,
    1-D array or tensor) of T numbers, or a callable of the step returning a number."""
    if callable(lr) and not isinstance(lr, (torch.Tensor, np.ndarray)):
        values = [as_number(lr(t), f"lr({t})") for t in range(T)]
    elif isinstance(lr, (str, bytes)):
        try:
            hint = f"write lr={float(lr):g} without quotes"
        except ValueError:
            hint = "give a number such as lr=0.1"
        raise TypeError(f"lr must be a number, a sequence of {T} numbers or a callable lr(t), got the "
                        f"string {lr!r}: {hint}")
    elif isinstance(lr, (numbers.Real, np.generic)) or (isinstance(lr, (torch.Tensor, np.ndarray)) and lr.ndim == 0):
        values = [as_number(lr, "lr")] * T
    elif isinstance(lr, (torch.Tensor, np.ndarray)) and lr.ndim > 1:
        raise TypeError(f"lr must be a number or a 1-D sequence of {T} values, got shape {tuple(lr.shape)}")
    elif hasattr(lr, "__iter__"):
        values = [as_number(v, f"lr[{t}]") for t, v in enumerate(lr)]
        if len(values) != T:
            raise ValueError(f"lr has {len(values)} values but the schedule has {T} steps: give one per step")
    else:
        raise TypeError(f"lr must be a number, a sequence of {T} numbers or a callable lr(t), got "
                        f"{type(lr).__name__}")
    bad = [t for t, v in enumerate(values) if not math.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"learning rate at step {bad[0]} is {values[bad[0]]}: it must be finite and >= 0")
    return torch.tensor(values, dtype=torch.float64)


#: divergence thresholds of `train`: a batch loss above LOSS_GROWTH · max(1, L_0) or a parameter
#: entry above PARAM_GROWTH · max(1, max |θ_0|), L_0 = the largest per-example training loss at θ_0
#: (no batch mean can exceed it at θ_0, so only growth of three orders of magnitude trips it).
LOSS_GROWTH, PARAM_GROWTH = 1e3, 1e8


def train(model: nn.Module, data: DataLike, schedule: Schedule, lr: LR, *,
          loss: LossLike = "cross_entropy", weight_decay: float = 0.0, device=None,
          dtype: torch.dtype = torch.float64, checkpoint_every: int = 1) -> Trajectory:
    """Train a copy of `model` with plain SGD along `schedule` and record the run.

    model: any `nn.Module` without batch norm or dropout (left untouched; a copy is trained).
    data: `Data` or (X, y); ``schedule.n`` must equal ``len(data)``.
    lr: float, sequence of T floats, or callable ``lr(t)``.
    loss: ``"cross_entropy"``, ``"mse"`` (averaged over output dims) or ``loss(outputs, targets) -> Tensor[n]``.
    device: where to train (default: where the data lives). dtype: floating dtype of model and inputs.
    checkpoint_every: store θ_t every k steps (θ_T always); the rest is replayed exactly on demand.
    Raises ValueError naming the rows if X or y holds NaN/inf, and FloatingPointError naming the
    step when training diverges: a batch loss or θ stops being finite, a batch loss exceeds
    ``LOSS_GROWTH`` (1e3) × max(1, the largest per-example training loss at θ_0), or max |θ_t|
    exceeds ``PARAM_GROWTH`` (1e8) × max(1, max |θ_0|). Every estimator would otherwise report meaningless (often exactly zero)
    influence for such a run.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. dt.models.mlp((4, 16, 3))), got "
                        f"{type(model).__name__}")
    d = as_data(data, "data")
    if not isinstance(schedule, Schedule):
        raise TypeError("schedule must be a dt.Schedule (e.g. dt.Schedule.shuffled(len(data), 32))")
    if schedule.n != len(d):
        raise ValueError(f"the schedule indexes {schedule.n} points but the data has {len(d)}: "
                         f"build it with n={len(d)}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype (e.g. torch.float64), got {dtype!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Integral) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1 (an integer), got {checkpoint_every!r}")
    weight_decay = as_number(weight_decay, "weight_decay")
    if weight_decay < 0 or not math.isfinite(weight_decay):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
    check_finite(d, "data")
    device = torch.device(device) if device is not None else d.device
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but CUDA is not available; use device='cpu'")
    d = d.to(device, dtype)
    net = copy.deepcopy(model).to(device=device, dtype=dtype)
    net.eval()  # no train-mode behaviour; unsupported layers are refused by FlatModel
    lrs = resolve_lrs(lr, len(schedule))
    traj = Trajectory(net, d, schedule, lrs, weight_decay, loss, {}, torch.empty(0),
                      checkpoint_every=checkpoint_every)
    theta = traj.flat.flatten().to(device, dtype)
    try:
        with torch.no_grad():
            traj.flat.forward(theta, d.X[:1])
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise ValueError(f"the model cannot take the training inputs (rows of shape {list(d.X.shape[1:])}, "
                         f"{d.X.dtype}): {str(e).splitlines()[0]}; match the model's input layer to the data") from e
    traj.objective.check_targets(theta, d, "data")
    if traj.objective.losses(theta, d.X[:1], d.y[:1]).dtype != dtype:
        raise TypeError("the loss returned a different dtype than the model; check the targets' dtype")
    with torch.no_grad():
        loss_cap = LOSS_GROWTH * max(1.0, float(traj.objective.losses(theta, d.X, d.y).max()))
    size_cap = PARAM_GROWTH * max(1.0, float(theta.abs().max()))
    checkpoints = {0: theta}
    batch_losses = torch.empty(len(schedule), dtype=torch.float64)
    for t in range(len(schedule)):
        _, X, y = traj.batch(t)
        with torch.no_grad():
            batch_losses[t] = traj.objective.losses(theta, X, y).mean()
        L = float(batch_losses[t])
        if not math.isfinite(L) or L > loss_cap:
            what = f"is {L}" if not math.isfinite(L) else \
                f"is {L:.3g}, over {LOSS_GROWTH:g} × max(1, the largest example loss at θ_0)"
            raise FloatingPointError(f"training diverged at step {t}: the batch loss {what}; "
                                     f"try a smaller lr (η_{t} = {float(lrs[t]):g})")
        theta = traj.step(theta, t).detach()
        if not torch.isfinite(theta).all():
            raise FloatingPointError(f"training diverged at step {t}: parameters became inf/NaN; "
                                     f"try a smaller lr (η_{t} = {float(lrs[t]):g})")
        if float(theta.abs().max()) > size_cap:
            raise FloatingPointError(f"training diverged at step {t}: max |θ_{t + 1}| = {float(theta.abs().max()):.3g} "
                                     f"grew over {PARAM_GROWTH:g} × max(1, max |θ_0|); try a smaller lr "
                                     f"(η_{t} = {float(lrs[t]):g})")
        if (t + 1) % checkpoint_every == 0 or t + 1 == len(schedule):
            checkpoints[t + 1] = theta
    traj.checkpoints, traj.batch_losses = checkpoints, batch_losses
    traj.flat.load_into(net, theta)  # the stored module holds θ_T, like a normal training loop
    return traj
