"""Update rules, defined once: plain SGD, SGD with momentum, Adam and AdamW (torch.optim's semantics).

A rule is a pure function of the optimizer state s_t and the batch gradient g_t,

    s_{t+1} = F_t(s_t, g_t) = s_t + rule.update(s_t, g_t, η_t, t),

where s is one flat Tensor[..., k·P] holding θ and the rule's buffers side by side (``slots``):

    SGD, momentum 0:   s = θ                    θ' = θ − η (g + λθ)
    SGD, momentum μ:   s = (θ, buf)             d = g + λθ;  buf' = d at t = 0, else μ buf + (1 − τ) d;
                                                θ' = θ − η (d + μ buf' if nesterov else buf')
    Adam:              s = (θ, m, v)            g ← g + λθ;  m' = β₁m + (1 − β₁)g;  v' = β₂v + (1 − β₂)g²;
                                                θ' = θ − (η/c₁) m' / (√v' / √c₂ + ε),  c_i = 1 − β_i^{t+1}
    AdamW:             as Adam, λ decoupled:    θ' = θ(1 − ηλ) − (η/c₁) m' / (√v' / √c₂ + ε)

t is the 0-based step of the optimizer's life (bias correction restarts with a fresh optimizer).
Everything is elementwise, so the same code steps one run [S] or R runs [R, S] at once and works
under ``torch.func.vmap``; estimators derive the rule's removal direction, vector-Jacobian products
and Jacobian from `update` with torch.func instead of writing them by hand (`removal_difference`,
`dve_teach.influence.unroll`, `dve_teach.influence.explain`).

Adam's √v has an infinite derivative at v = 0. A coordinate whose gradient has been exactly zero so
far has m = v = 0 and does not move; `_sqrt0` gives it derivative 0 there, so its terms in every
linearisation are zero instead of 0 · ∞ = NaN.
"""
from __future__ import annotations

import math
from typing import Union

import torch

from ..data.checks import as_flag, as_number

__all__ = ["UpdateRule", "SGD", "Adam", "AdamW", "StagedRule", "as_rule", "rule_from_spec", "RuleLike"]


def _sqrt0(v: torch.Tensor) -> torch.Tensor:
    """√v with derivative 0 (not ∞) where v = 0 (then √v = 0 too)."""
    pos = v > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))), torch.zeros_like(v))


def _number(x, name: str, low: float = 0.0, below: float = math.inf, strict_low: bool = False) -> float:
    v = as_number(x, name)
    ok = math.isfinite(v) and (v > low if strict_low else v >= low) and v < below
    if not ok:
        rng = f"{'>' if strict_low else '>='} {low:g}" + (f" and < {below:g}" if below < math.inf else "")
        raise ValueError(f"{name} must be a finite number {rng}, got {x!r}")
    return v


class UpdateRule:
    """Base class: a pure update rule on the flat state s = (θ, buffers...) [..., k·P].

    Subclasses set ``slots`` (names of the k pieces of s, θ first) and implement `update`.
    """
    slots: tuple[str, ...] = ("theta",)
    name = "rule"

    # ---- the rule -----------------------------------------------------------------------------
    def update(self, s: torch.Tensor, g: torch.Tensor, lr: float, t: int) -> torch.Tensor:
        """Δs = s_{t+1} − s_t for state s [..., k·P] and batch gradient g [..., P]."""
        raise NotImplementedError

    def step(self, s: torch.Tensor, g: torch.Tensor, lr: float, t: int, **kw) -> torch.Tensor:
        """s_{t+1} = s_t + Δs (`update`)."""
        return s + self.update(s, g, lr, t, **kw)

    # ---- the state ----------------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Pieces of the state (1 for plain SGD, 2 with momentum, 3 for Adam)."""
        return len(self.slots)

    def init(self, theta: torch.Tensor) -> torch.Tensor:
        """s_0 = (θ_0, zero buffers): Tensor[..., k·P]."""
        return torch.cat([theta] + [torch.zeros_like(theta)] * (self.k - 1), dim=-1)

    def split(self, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The k pieces of s, each [..., P] (views)."""
        return s.tensor_split(self.k, dim=-1) if self.k > 1 else (s,)

    def theta(self, s: torch.Tensor) -> torch.Tensor:
        """θ, the first piece of s: Tensor[..., P]."""
        return s[..., :s.shape[-1] // self.k]

    @property
    def plain_sgd(self) -> bool:
        """True for the rule whose state is θ alone (momentum 0): the paper's setting."""
        return self.k == 1

    # ---- description --------------------------------------------------------------------------
    @property
    def weight_decay(self) -> float:
        return self._settings()["weight_decay"]

    def weight_decay_at(self, t: int) -> float:
        """λ at step t (the same at every step; a staged run's differs per stage)."""
        return self.weight_decay

    def _settings(self) -> dict:
        raise NotImplementedError

    def spec(self) -> dict:
        """A JSON-ready description (``rule_from_spec`` rebuilds the rule)."""
        out = {"name": self.name, **self._settings()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def __eq__(self, other) -> bool:
        return isinstance(other, UpdateRule) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"dt.optim.{type(self).__name__}({args})"


class SGD(UpdateRule):
    """torch.optim.SGD: plain (momentum=0, the default: state θ) or with momentum (state θ, buf)."""
    name = "sgd"

    def __init__(self, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)
        self.dampening = _number(dampening, "dampening", 0.0, 1.0 + 1e-12)
        self.nesterov = as_flag(nesterov, "nesterov")
        self._wd = _number(weight_decay, "weight_decay")
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0 (as in torch.optim.SGD)")
        self.slots = ("theta", "buf") if self.momentum else ("theta",)

    def _settings(self) -> dict:
        return {"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov,
                "weight_decay": self._wd}

    def update(self, s, g, lr, t):
        lam, mu = self._wd, self.momentum
        if not mu:
            return -(lr * (g + lam * s)) if lam else -(lr * g)
        theta, buf = self.split(s)
        d = g + lam * theta if lam else g
        new_buf = d if t == 0 else mu * buf + (1.0 - self.dampening) * d
        direction = d + mu * new_buf if self.nesterov else new_buf
        return torch.cat([-(lr * direction), new_buf - buf], dim=-1)


class Adam(UpdateRule):
    """torch.optim.Adam (amsgrad=False): state (θ, m, v); weight decay added to the gradient."""
    name = "adam"
    slots = ("theta", "m", "v")
    decoupled = False

    def __init__(self, betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (β₁, β₂), e.g. (0.9, 0.999), got {betas!r}") from None
        self.betas = (_number(b1, "betas[0]", 0.0, 1.0), _number(b2, "betas[1]", 0.0, 1.0))
        self.eps = _number(eps, "eps", 0.0, strict_low=True)
        self._wd = _number(weight_decay, "weight_decay")

    def _settings(self) -> dict:
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self._wd}

    def update(self, s, g, lr, t, v_grad=None):
        """As the base class; ``v_grad`` (for the frozen-preconditioner linearisation only) feeds
        the second moment a fixed gradient instead of g."""
        (b1, b2), lam = self.betas, self._wd
        theta, m, v = self.split(s)
        if lam and not self.decoupled:
            g = g + lam * theta
        gv = g if v_grad is None else v_grad
        new_m = b1 * m + (1.0 - b1) * g
        new_v = b2 * v + (1.0 - b2) * gv * gv
        c1, c2 = 1.0 - b1 ** (t + 1), 1.0 - b2 ** (t + 1)
        dtheta = -(lr / c1) * new_m / (_sqrt0(new_v) / math.sqrt(c2) + self.eps)
        if lam and self.decoupled:
            dtheta = dtheta - (lr * lam) * theta
        return torch.cat([dtheta, new_m - m, new_v - v], dim=-1)


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay θ ← θ(1 − ηλ) (default λ = 0.01)."""
    name = "adamw"
    decoupled = True

    def __init__(self, betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(betas, eps, weight_decay)


RuleLike = Union[UpdateRule, str, None]
_NAMES = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def as_rule(optimizer: RuleLike, weight_decay: float = 0.0) -> UpdateRule:
    """The rule for `dt.train(..., optimizer=...)`: None or "sgd" = plain SGD with `weight_decay`; "adam",
    "adamw" = their defaults; or an `UpdateRule` instance (then weight_decay belongs to it)."""
    lam = _number(weight_decay, "weight_decay")
    if optimizer is None:
        return SGD(weight_decay=lam)
    if isinstance(optimizer, str):
        if optimizer not in _NAMES:
            raise ValueError(f"unknown optimizer {optimizer!r}: use 'sgd', 'adam', 'adamw' or an instance such "
                             "as dt.optim.SGD(momentum=0.9)")
        optimizer = _NAMES[optimizer]() if optimizer != "sgd" else SGD(weight_decay=lam)
        if lam and optimizer.weight_decay != lam:
            raise ValueError(f"weight_decay={lam:g} was given to train and optimizer={optimizer.name!r}: set it on "
                             f"the rule instead, e.g. optimizer=dt.optim.{type(optimizer).__name__}(weight_decay={lam:g})")
        return optimizer
    if not isinstance(optimizer, UpdateRule):
        if isinstance(optimizer, torch.optim.Optimizer) or (isinstance(optimizer, type)
                                                            and issubclass(optimizer, torch.optim.Optimizer)):
            raise TypeError("optimizer must be a dve_teach rule, not a torch.optim optimizer (dve_teach replays "
                            "the update itself): use dt.optim.SGD / Adam / AdamW with the same arguments")
        raise TypeError(f"optimizer must be 'sgd', 'adam', 'adamw' or a dt.optim rule, got {type(optimizer).__name__}")
    if lam:
        raise ValueError(f"weight_decay={lam:g} was given to train and to the optimizer: set it on the rule only, "
                         f"e.g. dt.optim.{type(optimizer).__name__}(..., weight_decay={lam:g})")
    return optimizer


def rule_from_spec(spec: dict) -> UpdateRule:
    """Rebuild a rule from `UpdateRule.spec()` (ValueError/TypeError on anything else), also the
    `dve_teach.training.stages.StagedRule` of a multi-stage run."""
    if isinstance(spec, dict) and spec.get("name") == "staged":
        from .stages import StagedRule   # stages builds on this module
        return StagedRule.from_spec(spec, rule_from_spec)
    if not isinstance(spec, dict) or spec.get("name") not in _NAMES:
        raise ValueError(f"not an update-rule spec: {spec!r:.120}")
    args = {k: v for k, v in spec.items() if k != "name"}
    if "betas" in args and isinstance(args["betas"], list):
        args["betas"] = tuple(args["betas"])
    return _NAMES[spec["name"]](**args)


from .stages import StagedRule  # noqa: E402  (a multi-stage run's rule; stages builds on UpdateRule above)
