"""`train`: run functional SGD over a `Schedule` and record the `Trajectory`.

    θ_{t+1} = θ_t − η_t · ((1/b) Σ_{i∈B_t} ∇ℓ(θ_t, z_i) + λ θ_t)      (DEVELOPERS.md; paper §2)
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from ..data.container import DataLike, as_data
from .functional import LossLike
from .schedule import Schedule
from .trajectory import Trajectory

__all__ = ["train", "resolve_lrs"]

LR = Union[float, Sequence[float], Callable[[int], float]]


def resolve_lrs(lr: LR, T: int) -> torch.Tensor:
    """η_t for t = 0..T−1 from a float, a sequence of T values or a callable of the step."""
    if callable(lr):
        values = [float(lr(t)) for t in range(T)]
    elif isinstance(lr, (int, float)):
        values = [float(lr)] * T
    else:
        values = [float(v) for v in lr]
        if len(values) != T:
            raise ValueError(f"lr has {len(values)} values but the schedule has {T} steps: give one per step")
    bad = [t for t, v in enumerate(values) if not math.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"learning rate at step {bad[0]} is {values[bad[0]]}: it must be finite and >= 0")
    return torch.tensor(values, dtype=torch.float64)


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
    Raises FloatingPointError naming the step if a batch loss or the parameters stop being finite.
    """
    d = as_data(data, "data")
    if not isinstance(schedule, Schedule):
        raise TypeError("schedule must be a dt.Schedule (e.g. dt.Schedule.shuffled(len(data), 32))")
    if schedule.n != len(d):
        raise ValueError(f"the schedule indexes {schedule.n} points but the data has {len(d)}: "
                         f"build it with n={len(d)}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    if checkpoint_every < 1:
        raise ValueError("checkpoint_every must be >= 1")
    if weight_decay < 0 or not math.isfinite(weight_decay):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
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
    if d.X.shape[0] and traj.objective.losses(theta, d.X[:1], d.y[:1]).dtype != dtype:
        raise TypeError("the loss returned a different dtype than the model; check the targets' dtype")
    checkpoints = {0: theta}
    batch_losses = torch.empty(len(schedule), dtype=torch.float64)
    for t in range(len(schedule)):
        _, X, y = traj.batch(t)
        with torch.no_grad():
            batch_losses[t] = traj.objective.losses(theta, X, y).mean()
        if not math.isfinite(float(batch_losses[t])):
            raise FloatingPointError(f"training diverged at step {t}: the batch loss is {float(batch_losses[t])}; "
                                     f"try a smaller lr (η_{t} = {float(lrs[t]):g})")
        theta = traj.step(theta, t).detach()
        if not torch.isfinite(theta).all():
            raise FloatingPointError(f"training diverged at step {t}: parameters became inf/NaN; "
                                     f"try a smaller lr (η_{t} = {float(lrs[t]):g})")
        if (t + 1) % checkpoint_every == 0 or t + 1 == len(schedule):
            checkpoints[t + 1] = theta
    traj.checkpoints, traj.batch_losses = checkpoints, batch_losses
    traj.flat.load_into(net, theta)  # the stored module holds θ_T, like a normal training loop
    return traj
