"""The one replay loop: a step of a recorded run for one state or R states at once, and the one
divergence rule. Training (`train`, `train_orders`, `select_and_train`), exact LOO and the
counterfactual replays all step through it.

Step t with batch B_t (inputs X, targets y), per-example weights w (1 in the recorded run, 0 for a
removed point) and divisor d (the nominal batch size b, or |B_t| − 1 for a renormalized removal):

    g_t = ∇_θ (1/d) Σ_{i∈B_t} w_i ℓ(θ_t, z_i),     s_{t+1} = F_t(s_t, g_t)      (`dve_teach.training.optim`)

R states [R, S] are stepped as one computation (``vmap(grad_and_value(...))`` over the replays'
parameters, weights and divisors; their batches are shared, or per replay for `train_orders`).

Divergence (the same for every caller): a run is refused, naming the step and the replay, when
its batch loss (the weighted mean over the kept points, at θ_t) or θ_{t+1} stops being finite, the
batch loss exceeds ``LOSS_GROWTH`` · max(1, L_0) or max |θ_{t+1}| exceeds ``PARAM_GROWTH`` ·
max(1, max |θ_0|), with L_0 the largest per-example training loss at θ_0 (no batch mean can
exceed it at θ_0, so only growth of three orders of magnitude trips it). Every estimator would
report meaningless (often exactly zero) influence for such a run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch.func import grad_and_value, vmap

from ..data.container import Data
from .functional import Objective
from .optim import UpdateRule

__all__ = ["Engine", "Guard", "LOSS_GROWTH", "PARAM_GROWTH"]

LOSS_GROWTH, PARAM_GROWTH = 1e3, 1e8


@dataclass(frozen=True)
class Guard:
    """The divergence rule's two caps (module docstring), fixed by θ_0 and the training data."""
    loss_cap: float
    size_cap: float

    @classmethod
    def of(cls, objective: Objective, theta0: torch.Tensor, data: Data) -> "Guard":
        """The caps of a run from θ_0 and its training data; finite rows whose loss at θ_0 is NaN/inf
        are refused by name (a model whose output is not finite there), not reported as divergence."""
        objective.check_finite_losses(theta0, data, "training", "θ_0")
        with torch.no_grad():
            L0 = float(objective.losses(theta0, data.X, data.y).max()) if len(data) else 0.0
        return cls(LOSS_GROWTH * max(1.0, L0), PARAM_GROWTH * max(1.0, float(theta0.abs().max())))

    def check(self, losses: torch.Tensor, thetas: torch.Tensor, t: int, lr: float,
              who: Callable[[int], str] = lambda r: "training") -> None:
        """FloatingPointError naming step t and the run if a batch loss (Tensor[R] or 0-d) or θ_{t+1}
        ([R, P] or [P]) breaks the rule."""
        losses, thetas = losses.reshape(-1), thetas.reshape(losses.numel(), -1)
        bad_loss = ~torch.isfinite(losses) | (losses > self.loss_cap)
        if bool(bad_loss.any()):
            r = int(bad_loss.nonzero()[0])
            L = float(losses[r])
            what = f"is {L}" if not math.isfinite(L) else \
                f"is {L:.3g}, over {LOSS_GROWTH:g} × max(1, the largest example loss at θ_0)"
            raise FloatingPointError(f"{who(r)} diverged at step {t}: the batch loss {what}; "
                                     f"try a smaller lr (η_{t} = {lr:g})")
        finite = torch.isfinite(thetas).all(1)
        big = thetas.abs().amax(1) if thetas.shape[1] else torch.zeros_like(losses)
        bad = ~finite | (big > self.size_cap)
        if bool(bad.any()):
            r = int(bad.nonzero()[0])
            if not bool(finite[r]):
                raise FloatingPointError(f"{who(r)} diverged at step {t}: parameters became inf/NaN; "
                                         f"try a smaller lr (η_{t} = {lr:g})")
            raise FloatingPointError(f"{who(r)} diverged at step {t}: max |θ_{t + 1}| = {float(big[r]):.3g} grew "
                                     f"over {PARAM_GROWTH:g} × max(1, max |θ_0|); try a smaller lr (η_{t} = {lr:g})")


class Engine:
    """Model + loss (`Objective`) + update rule + step sizes η_t + nominal batch size b.

    ``step(s, t, X, y, W, D)`` returns (s_{t+1}, batch loss) for one state s [S] (W [m], D 0-d) or R
    states [R, S] (W [R, m], D [R]; X, y shared [m, ...] or per replay [R, m, ...] with
    ``per_replay=True``). The batch loss is the weighted mean Σ w ℓ / Σ w at θ_t (Tensor[R] or 0-d).
    """

    def __init__(self, objective: Objective, rule: UpdateRule, lrs: torch.Tensor, batch_size: int):
        self.objective, self.rule, self.batch_size = objective, rule, int(batch_size)
        self.lrs = lrs   # read per step (building an engine costs nothing, whatever T)
        self._gv = grad_and_value(objective.weighted_loss)

    def lr(self, t: int) -> float:
        """η_t as a float."""
        return float(self.lrs[t])

    def unit(self, s: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit weights and the nominal divisor b for a batch of m points, shaped for state(s) s."""
        lead = s.shape[:-1]
        W = torch.ones(*lead, m, dtype=s.dtype, device=s.device)
        D = torch.full(lead, float(self.batch_size), dtype=s.dtype, device=s.device)
        return W, D

    def step(self, s: torch.Tensor, t: int, X: torch.Tensor, y: torch.Tensor, W: Optional[torch.Tensor] = None,
             D: Optional[torch.Tensor] = None, per_replay: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if W is None or D is None:
            W0, D0 = self.unit(s, X.shape[1] if per_replay else X.shape[0])
            W, D = (W0 if W is None else W), (D0 if D is None else D)
        theta = self.rule.theta(s)
        with torch.enable_grad():
            if s.ndim == 1:
                g, value = self._gv(theta, X, y, W, D)
            else:
                dims = (0, 0, 0, 0, 0) if per_replay else (0, None, None, 0, 0)
                g, value = vmap(self._gv, in_dims=dims)(theta, X, y, W, D)
        g, value = g.detach(), value.detach()
        loss = value * D / W.sum(-1).clamp_min(1.0)
        return self.rule.step(s, g, self.lr(t), t).detach(), loss

    def grad(self, s: torch.Tensor, t: int, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """g_t of the recorded batch (unit weights, divisor b) at state s [S]: Tensor[P]."""
        W, D = self.unit(s, X.shape[0])
        return self._gv(self.rule.theta(s), X, y, W, D)[0].detach()
