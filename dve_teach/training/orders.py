"""Train the same model on the same data in many orders at once (lesson 01: order matters).

Every order r follows the update of `dt.train` (DEVELOPERS.md, "The maths"; paper §2):

    θ^r_{t+1} = θ^r_t − η_t · ((1/b) Σ_{i∈B^r_t} ∇ℓ(θ^r_t, z_i) + λ θ^r_t),   θ^r_0 = θ_0,

with the same initialisation θ_0, step sizes η_t, nominal batch size b and weight decay λ; only
the batches B^r_t differ. The R replays run as one computation: ``vmap(grad(weighted_loss))``
over the stacked parameters [R, P] and the batches gathered per replay [R, m_t, ...]. This
needs every schedule to have the same number of steps and, at each step, the same batch size.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torch.func import grad_and_value, vmap

from ..data.container import DataLike, as_data
from .functional import FlatModel, LossLike, Objective
from .schedule import Schedule
from .loop import LOSS_GROWTH, LR, PARAM_GROWTH, check_growth, check_model_fits, check_setup, resolve_lrs
from .trajectory import sgd_update

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
                 loss: LossLike = "cross_entropy", weight_decay: float = 0.0,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Final parameters θ^r_T of SGD along each schedule, all trained at once: Tensor[R, P].

    model: the untrained `nn.Module` (left untouched; every order starts from its weights).
    data: `Data` or (X, y) with ``len(data) == schedule.n``. schedules: R `Schedule`s with the same
    number of steps and equal batch sizes step by step (a clear error otherwise). lr, loss,
    weight_decay, dtype: as in `dt.train`; row r equals ``dt.train(model, data, schedules[r],
    lr, ...).final`` up to rounding. Raises FloatingPointError naming the order and step if a run
    stops being finite. Paper §1-2: the same data in another order gives another model.
    """
    d, weight_decay = check_setup(model, data, dtype, weight_decay)
    scheds = _check_schedules(schedules, len(d))
    net = copy.deepcopy(model).to(device=d.device, dtype=dtype)
    net.eval()
    flat = FlatModel(net)
    objective = Objective(flat, loss)
    d = d.to(d.device, dtype)
    check_model_fits(objective, flat.flatten().to(d.device, dtype), d, dtype)
    T, b, R = len(scheds[0]), scheds[0].batch_size, len(scheds)
    lrs = [float(v) for v in resolve_lrs(lr, T)]
    step_grad = vmap(grad_and_value(objective.weighted_loss), in_dims=(0, 0, 0, None, None))
    divisor = torch.tensor(float(b), dtype=dtype, device=d.device)
    thetas = flat.flatten().to(d.device, dtype).expand(R, -1).clone()
    size_cap = PARAM_GROWTH * max(1.0, float(thetas.abs().max()))
    with torch.no_grad():  # the divergence thresholds of dt.train
        loss_cap = LOSS_GROWTH * max(1.0, float(objective.losses(thetas[0], d.X, d.y).max()))
    for t in range(T):
        idx = torch.tensor([s.batches[t] for s in scheds], dtype=torch.int64, device=d.device)  # [R, m_t]
        X, y = d.X[idx], d.y[idx]  # [R, m_t, ...]
        w = torch.ones(idx.shape[1], dtype=dtype, device=d.device)
        g, value = step_grad(thetas, X, y, w, divisor)  # value: (1/b) Σ ℓ, the batch mean × m_t/b
        batch_mean = value.detach() * b / idx.shape[1]
        too_big = ~torch.isfinite(batch_mean) | (batch_mean > loss_cap)
        if bool(too_big.any()):
            r = int(too_big.nonzero()[0])
            raise FloatingPointError(f"order {r} diverged at step {t}: the batch loss is {float(batch_mean[r]):.3g}, "
                                     f"over {LOSS_GROWTH:g} × max(1, the largest example loss at θ_0); try a "
                                     f"smaller lr (η_{t} = {lrs[t]:g})")
        thetas = sgd_update(thetas, g, lrs[t], weight_decay).detach()
        bad = ~torch.isfinite(thetas).all(1) | (thetas.abs().amax(1) > size_cap)
        if bool(bad.any()):
            r = int(bad.nonzero()[0])
            check_growth(thetas[r], size_cap, t, lrs[t], run=f"order {r}")
    return thetas


def final_test_losses(model: nn.Module, data: DataLike, test: DataLike, schedules: Sequence[Schedule],
                      lr: LR, *, loss: LossLike = "cross_entropy", weight_decay: float = 0.0,
                      dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Per-example test loss ℓ(θ^r_T, z_j) of each order: Tensor[R, n_test].

    Trains with `train_orders` (same arguments) and evaluates every final model on `test`
    (`Data` or (X, y), shaped like the training data). ``.mean(1)`` gives each order's test loss.
    """
    thetas = train_orders(model, data, schedules, lr, loss=loss, weight_decay=weight_decay, dtype=dtype)
    d, te = as_data(data, "data"), as_data(test, "test")
    if tuple(te.X.shape[1:]) != tuple(d.X.shape[1:]):
        raise ValueError(f"test.X has feature shape {tuple(te.X.shape[1:])}, the training data "
                         f"{tuple(d.X.shape[1:])}: pass rows shaped like the training inputs")
    if te.device != d.device:
        raise ValueError(f"test data is on {te.device} but the training data on {d.device}: move it with .to()")
    net = copy.deepcopy(model).to(device=d.device, dtype=dtype)
    objective = Objective(FlatModel(net), loss)
    te = te.to(d.device, dtype)
    with torch.no_grad():
        return vmap(objective.losses, in_dims=(0, None, None))(thetas, te.X, te.y)
