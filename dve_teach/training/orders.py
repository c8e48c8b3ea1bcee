"""Train the same model on the same data in many orders at once (lesson 01: order matters).

Every order r follows the update of `dt.train` (DEVELOPERS.md, "The maths"; paper §2):

    s^r_{t+1} = F_t(s^r_t, (1/b) Σ_{i∈B^r_t} ∇ℓ(θ^r_t, z_i)),   s^r_0 = s_0
    (plain SGD: θ^r_{t+1} = θ^r_t − η_t (g^r_t + λ θ^r_t)),

with the same initialisation, update rule, step sizes η_t and nominal batch size b; only the
batches B^r_t differ. The R replays run as one step of the replay engine
(`dve_teach.training.replay`) over the stacked states [R, S] and the batches gathered per replay
[R, m_t, ...]. This
needs every schedule to have the same number of steps and, at each step, the same batch size.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torch.func import vmap

from ..data.container import DataLike, as_data
from .functional import FlatModel, LossLike, Objective
from .schedule import Schedule
from .loop import LR, check_model_fits, check_setup, resolve_lrs
from .optim import RuleLike, as_rule
from .replay import Engine, Guard

__all__ = ["train_orders", "final_test_losses"]


def _check_schedules(schedules: Sequence[Schedule], n: int) -> list[Schedule]:
    if isinstance(schedules, Schedule):
        raise TypeError("schedules must be a list of dt.Schedule (wrap a single one: [schedule])")
    scheds = list(schedules)
    if not scheds:
        raise ValueError("schedules is empty: pass at least one dt.Schedule")
    for r, s in enumerate(scheds):
        if not isinstance(s, Schedule):
            raise TypeError(f"schedules[{r}] is a {type(s).__name__}, not a dt.Schedule "
                            "(build one with dt.Schedule.shuffled(n, batch_size, seed=...))")
        if s.n != n:
            raise ValueError(f"schedules[{r}] indexes {s.n} points but the data has {n}: build it with n={n}")
    ref = scheds[0]
    for r, s in enumerate(scheds[1:], start=1):
        if len(s) != len(ref):
            raise ValueError(f"schedules[{r}] has {len(s)} steps but schedules[0] has {len(ref)}: train_orders "
                             "needs the same number of steps in every order (same n, batch_size, epochs, "
                             "drop_last); train unequal runs separately with dt.train")
        if s.batch_size != ref.batch_size:
            raise ValueError(f"schedules[{r}] has batch_size {s.batch_size} but schedules[0] has "
                             f"{ref.batch_size}: the SGD divisor b must be the same in every order")
        for t, (a, c) in enumerate(zip(ref.batches, s.batches)):
            if len(a) != len(c):
                raise ValueError(f"at step {t} schedules[{r}] has a batch of {len(c)} points but schedules[0] "
                                 f"of {len(a)}: every order needs equal batch sizes per step (e.g. all "
                                 "built by Schedule.shuffled / from_order / curriculum with the same "
                                 "batch_size); train unequal runs separately with dt.train")
    return scheds


def train_orders(model: nn.Module, data: DataLike, schedules: Sequence[Schedule], lr: LR, *,
                 loss: LossLike = "cross_entropy", weight_decay: float = 0.0, optimizer: RuleLike = None,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Final parameters θ^r_T of each schedule's run, all trained at once: Tensor[R, P].

    model: the untrained `nn.Module` (left untouched; every order starts from its weights).
    data: `Data` or (X, y) with ``len(data) == schedule.n``. schedules: R `Schedule`s with the same
    number of steps and equal batch sizes step by step (a clear error otherwise). lr, loss,
    weight_decay, optimizer, dtype: as in `dt.train`; row r equals ``dt.train(model, data,
    schedules[r], lr, ...).final`` up to rounding. Raises FloatingPointError naming the order and
    step if a run diverges (the rule of `dve_teach.training.replay`). Paper §1-2: the same data in
    another order gives another model.
    """
    d, weight_decay = check_setup(model, data, dtype, weight_decay)
    rule = as_rule(optimizer, weight_decay)
    scheds = _check_schedules(schedules, len(d))
    net = copy.deepcopy(model).to(device=d.device, dtype=dtype)
    net.eval()
    flat = FlatModel(net)
    objective = Objective(flat, loss)
    d = d.to(d.device, dtype)
    theta0 = flat.flatten().to(d.device, dtype)
    check_model_fits(objective, theta0, d, dtype)
    T, R = len(scheds[0]), len(scheds)
    lrs = resolve_lrs(lr, T)
    engine, guard = Engine(objective, rule, lrs, scheds[0].batch_size), Guard.of(objective, theta0, d)
    states = rule.init(theta0).expand(R, -1).clone()
    for t in range(T):
        idx = torch.tensor([s.batches[t] for s in scheds], dtype=torch.int64, device=d.device)  # [R, m_t]
        states, losses = engine.step(states, t, d.X[idx], d.y[idx], per_replay=True)
        guard.check(losses, rule.theta(states), t, engine.lr(t), who=lambda r: f"order {r}")
    return rule.theta(states)


def final_test_losses(model: nn.Module, data: DataLike, test: DataLike, schedules: Sequence[Schedule],
                      lr: LR, *, loss: LossLike = "cross_entropy", weight_decay: float = 0.0,
                      optimizer: RuleLike = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Per-example test loss ℓ(θ^r_T, z_j) of each order: Tensor[R, n_test].

    Trains with `train_orders` (same arguments) and evaluates every final model on `test`
    (`Data` or (X, y), shaped like the training data). ``.mean(1)`` gives each order's test loss.
    """
    thetas = train_orders(model, data, schedules, lr, loss=loss, weight_decay=weight_decay, optimizer=optimizer,
                          dtype=dtype)
    d, te = as_data(data, "data"), as_data(test, "test")
    if tuple(te.X.shape[1:]) != tuple(d.X.shape[1:]):
        raise ValueError(f"test.X has feature shape {tuple(te.X.shape[1:])}, the training data "
                         f"{tuple(d.X.shape[1:])}: pass rows shaped like the training inputs")
    if te.device != d.device:
        raise ValueError(f"test data is on {te.device} but the training data on {d.device}: move it with .to()")
    net = copy.deepcopy(model).to(device=d.device, dtype=dtype)
    objective = Objective(FlatModel(net), loss)
    te = te.to(d.device, dtype)
    objective.check_inputs(te, "test")
    objective.check_targets(thetas[0], te, "test")
    with torch.no_grad():
        return vmap(objective.losses, in_dims=(0, None, None))(thetas, te.X, te.y)
