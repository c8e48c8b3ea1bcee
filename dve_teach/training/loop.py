"""`train`: run an update rule (plain SGD by default) over a `Schedule` and record the `Trajectory`.

    g_t = (1/b) Σ_{i∈B_t} ∇ℓ(θ_t, z_i),   s_{t+1} = F_t(s_t, g_t)     (DEVELOPERS.md; paper §2)

plain SGD: θ_{t+1} = θ_t − η_t (g_t + λ θ_t); momentum, Adam, AdamW: `dve_teach.training.optim`.
"""
from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..data.checks import as_device, as_number
from ..data.container import Data, DataLike, as_data, check_finite
from .functional import FlatModel, LossLike, Objective, check_constant_buffers
from .optim import RuleLike, as_rule
from .stages import StagedRule
from .replay import LOSS_GROWTH, PARAM_GROWTH, Engine, Guard
from .schedule import Schedule
from .trajectory import Trajectory

__all__ = ["train", "train_stages", "Stage", "resolve_lrs", "LOSS_GROWTH", "PARAM_GROWTH"]

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
        values = [as_number(v, f"lr[{t}]") for t, v in zip(range(T + 1), lr)]   # bounded: never reads an
        if len(values) > T:                                                       # endless iterator to its end
            n = f"{len(lr)}" if hasattr(lr, "__len__") else "more than"
            raise ValueError(f"lr has {n} values but the schedule has {T} steps: give one per step (an endless "
                             "iterator is cut off, not read to its end)")
        if len(values) < T:
            raise ValueError(f"lr has {len(values)} values but the schedule has {T} steps: give one per step")
    else:
        raise TypeError(f"lr must be a number, a sequence of {T} numbers or a callable lr(t), got "
                        f"{type(lr).__name__}")
    bad = [t for t, v in enumerate(values) if not math.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"learning rate at step {bad[0]} is {values[bad[0]]}: it must be finite and >= 0")
    return torch.tensor(values, dtype=torch.float64)


def check_setup(model: nn.Module, data: DataLike, dtype: torch.dtype, weight_decay) -> tuple[Data, float]:
    """The checks `train` and `orders.train_orders` share: (the data as `Data`, λ as a float).
    Refuses a non-Module model, a non-floating dtype, a bad λ and non-finite rows (named)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (e.g. dt.models.mlp((4, 16, 3))), got "
                        f"{type(model).__name__}")
    if any(p.is_meta for p in model.parameters()):
        raise TypeError("the model's parameters are on the meta device (shapes without values): materialise "
                        "and initialise it first, e.g. model.to_empty(device='cpu') then reset_parameters()")
    d = as_data(data, "data")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype (e.g. torch.float64), got {dtype!r}")
    if dtype in (torch.float16, torch.bfloat16):
        raise TypeError(f"dtype {dtype} is too coarse to replay a run (exact LOO differences and the replay "
                        "checks need more digits than it keeps): use torch.float32 or torch.float64")
    weight_decay = as_number(weight_decay, "weight_decay")
    if weight_decay < 0 or not math.isfinite(weight_decay):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
    check_finite(d, "data")
    return d, weight_decay


def check_model_fits(objective: Objective, theta: torch.Tensor, d: Data, dtype: torch.dtype) -> None:
    """One forward pass on the first row: the model takes the inputs, labels fit its outputs, the
    loss accepts the targets and keeps the dtype — clear errors before training starts."""
    objective.check_inputs(d, "data")
    check_constant_buffers(objective.flat.model, d.X[:1])
    try:
        with torch.no_grad():
            objective.flat.forward(theta, d.X[:1])
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise ValueError(f"the model cannot take the training inputs (rows of shape {list(d.X.shape[1:])}, "
                         f"{d.X.dtype}): {str(e).splitlines()[0]}; match the model's input layer to the data") from e
    with torch.no_grad():
        out = objective.flat.forward(theta, d.X[:1])
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model's forward returned a {type(out).__name__}, not a Tensor of outputs: return the "
                        "outputs only (e.g. wrap it: forward(x) -> self.net(x)[0]), so the loss can be applied")
    objective.check_targets(theta, d, "data")
    if objective.losses(theta, d.X[:1], d.y[:1]).dtype != dtype:
        raise TypeError("the loss returned a different dtype than the model; check the targets' dtype")


def train(model: nn.Module, data: DataLike, schedule: Schedule, lr: LR, *,
          loss: LossLike = "cross_entropy", weight_decay: float = 0.0, optimizer: RuleLike = None,
          device=None, dtype: torch.dtype = torch.float64, checkpoint_every: int = 1) -> Trajectory:
    """Train a copy of `model` along `schedule` and record the run.

    model: any `nn.Module` without batch norm or dropout (left untouched; a copy is trained).
    data: `Data` or (X, y); ``schedule.n`` must equal ``len(data)``.
    lr: float, sequence of T floats, or callable ``lr(t)``.
    loss: ``"cross_entropy"``, ``"mse"`` (averaged over output dims) or ``loss(outputs, targets) -> Tensor[n]``.
    optimizer: None (plain SGD with `weight_decay`, the paper's setting), ``"adam"``, ``"adamw"`` or a
      rule such as ``dt.optim.SGD(momentum=0.9)``, ``dt.optim.Adam(betas=(0.9, 0.99))``,
      ``dt.optim.AdamW(weight_decay=0.01)`` (torch.optim's semantics; its λ is set on the rule).
    device: where to train (default: where the data lives). dtype: floating dtype of model and inputs.
    checkpoint_every: store the state s_t every k steps (s_T always); the rest is replayed exactly.
    Raises ValueError naming the rows if X or y holds NaN/inf, and FloatingPointError naming the
    step when training diverges (`dve_teach.training.replay`): a batch loss or θ stops being finite,
    a batch loss exceeds ``LOSS_GROWTH`` (1e3) × max(1, the largest per-example training loss at θ_0),
    or max |θ_t| exceeds ``PARAM_GROWTH`` (1e8) × max(1, max |θ_0|). Every estimator would otherwise
    report meaningless (often exactly zero) influence for such a run.
    """
    d, weight_decay = check_setup(model, data, dtype, weight_decay)
    rule = as_rule(optimizer, weight_decay)
    if not isinstance(schedule, Schedule):
        raise TypeError("schedule must be a dt.Schedule (e.g. dt.Schedule.shuffled(len(data), 32))")
    if schedule.n != len(d):
        raise ValueError(f"the schedule indexes {schedule.n} points but the data has {len(d)}: "
                         f"build it with n={len(d)}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Integral) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1 (an integer), got {checkpoint_every!r}")
    device = as_device(device) if device is not None else d.device
    d = d.to(device, dtype)
    net = copy.deepcopy(model).to(device=device, dtype=dtype)
    net.eval()  # no train-mode behaviour; unsupported layers are refused by FlatModel
    lrs = resolve_lrs(lr, len(schedule))
    objective = Objective(FlatModel(net), loss)
    theta = objective.flat.flatten().to(device, dtype)
    check_model_fits(objective, theta, d, dtype)
    engine, guard = Engine(objective, rule, lrs, schedule.batch_size), Guard.of(objective, theta, d)
    state = rule.init(theta)
    checkpoints = {0: state}
    batch_losses = torch.empty(len(schedule), dtype=torch.float64)
    for t, batch in enumerate(schedule.batches):
        idx = torch.as_tensor(batch, dtype=torch.int64, device=device)
        state, batch_losses[t] = engine.step(state, t, d.X[idx], d.y[idx])
        guard.check(batch_losses[t], rule.theta(state), t, engine.lr(t))
        if (t + 1) % checkpoint_every == 0 or t + 1 == len(schedule):
            checkpoints[t + 1] = state
    objective.flat.load_into(net, rule.theta(state))  # the stored module holds θ_T, like a normal training loop
    traj = Trajectory(net, d, schedule, lrs, rule, loss, checkpoints, batch_losses, checkpoint_every)
    traj._guard = guard
    return traj


@dataclass(frozen=True)
class Stage:
    """One stage of `train_stages`: its training ``data`` (`Data` or (X, y)), ``schedule`` over that
    data's own indices 0..n_k−1, step sizes ``lr`` (as in `train`), update rule ``optimizer`` (as in
    `train`; a fresh optimizer state at the stage's first step) and a ``name``."""
    data: DataLike
    schedule: Schedule
    lr: LR
    optimizer: RuleLike = None
    name: str = ""


def train_stages(model: nn.Module, stages, *, loss: LossLike = "cross_entropy", device=None,
                 dtype: torch.dtype = torch.float64, checkpoint_every: int = 1) -> Trajectory:
    """Train a copy of `model` through the `Stage`s in order — θ carried over, each stage with its own
    data, schedule, step sizes and a fresh optimizer — and record them as one `Trajectory`
    (`dve_teach.training.stages`: stage k's point i is global index offsets[k] + i, its step u global
    step starts[k] + u; ``traj.stages`` lists them). Every estimator and `Trajectory.save`/`load` then
    treat the stages as one run. All stages share the loss and the nominal batch size b (their
    schedules' ``batch_size``), and their inputs and targets have the same shapes and dtypes.
    """
    if isinstance(stages, Stage) or not isinstance(stages, (list, tuple)) or not stages:
        raise TypeError("stages must be a non-empty list of dt.Stage(data, schedule, lr, optimizer, name)")
    if any(not isinstance(st, Stage) for st in stages):
        raise TypeError("every entry of stages must be a dt.Stage(data, schedule, lr, optimizer, name)")
    datas, rules, lrs, batches, starts, offsets = [], [], [], [], [], [0]
    for k, st in enumerate(stages):
        d = as_data(st.data, f"stages[{k}].data")
        if not isinstance(st.schedule, Schedule):
            raise TypeError(f"stages[{k}].schedule must be a dt.Schedule over its own data")
        if st.schedule.n != len(d):
            raise ValueError(f"stages[{k}].schedule indexes {st.schedule.n} points but its data has {len(d)}: "
                             f"build it with n={len(d)}")
        if st.schedule.batch_size != stages[0].schedule.batch_size:
            raise ValueError(f"stages[{k}] has batch_size {st.schedule.batch_size}, stage 0 has "
                             f"{stages[0].schedule.batch_size}: the stages of one run share the nominal batch size b")
        if datas and (d.X.shape[1:] != datas[0].X.shape[1:] or d.y.shape[1:] != datas[0].y.shape[1:]
                      or d.X.dtype != datas[0].X.dtype or d.y.dtype != datas[0].y.dtype):
            raise ValueError(f"stages[{k}].data has rows {list(d.X.shape[1:])} {d.X.dtype} / targets "
                             f"{list(d.y.shape[1:])} {d.y.dtype}, stage 0 {list(datas[0].X.shape[1:])} "
                             f"{datas[0].X.dtype} / {list(datas[0].y.shape[1:])} {datas[0].y.dtype}: make them alike")
        if not isinstance(st.name, str):
            raise TypeError(f"stages[{k}].name must be a str")
        datas.append(d)
        rules.append(as_rule(st.optimizer))
        lrs.append(resolve_lrs(st.lr, len(st.schedule)))
        starts.append(len(batches))
        batches += [[offsets[-1] + i for i in b] for b in st.schedule.batches]
        offsets.append(offsets[-1] + len(d))
    names = [st.name or f"stage {k + 1}" for k, st in enumerate(stages)]
    if datas[0].device != datas[-1].device or any(d.device != datas[0].device for d in datas):
        raise ValueError("the stages' data live on different devices: move them to one with .to(device)")
    data = Data(torch.cat([d.X for d in datas]), torch.cat([d.y for d in datas]))
    schedule = Schedule(batches, stages[0].schedule.batch_size, offsets[-1])
    rule = StagedRule(rules, starts, offsets, names)
    return train(model, data, schedule, torch.cat(lrs), loss=loss, optimizer=rule, device=device, dtype=dtype,
                 checkpoint_every=checkpoint_every)
