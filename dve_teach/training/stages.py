"""Multi-stage runs (issue 13; the paper's multi-stage training, Figure 1(a)): pretraining, then a
fine-tune with a fresh optimizer, recorded, saved and replayed as *one* run.

One `Trajectory` holds every stage, over one index space and one step counter:

- data: the stages' training sets concatenated, stage k's point i has global index
  ``offsets[k] + i``;
- steps: the stages' schedules concatenated, stage k's step u is global step ``starts[k] + u``
  (η_t likewise);
- the update rule `StagedRule`: at global step t in stage k it applies stage k's rule F^(k) at
  the stage's own step u = t − starts[k] (bias correction and momentum start afresh per stage),
  on a state laid out for the largest rule (θ, then up to k buffers; unused slots stay 0).

At a stage boundary t = starts[k] (k ≥ 1) the optimizer is fresh: the step first resets the state,
ρ(s) = (θ, 0, …, 0) — θ carried over, the old buffers dropped — and then steps:

    s_{t+1} = F^(k)_0(ρ(s_t), g_t),      ∂ρ/∂s = [[I, 0], [0, 0]]  (adjoint: u_old = (u_θ, 0)).

Because the reset is inside the rule (a pure function of s, g and t), everything derived from the
rule with torch.func — removal deltas, vjps, Jacobians, the embedding's per-coordinate blocks
(`training.linearize`) — and every replay (`training.replay.Engine`) crosses the boundary with no
special case: removing a stage-1 point replays through both stages, and the estimators' reverse
sweeps pass the boundary through ∂ρ/∂s. All stages share the nominal batch size b and the loss.
A staged rule is never `plain_sgd` (even when every stage is plain SGD): the estimators use the
state-space paths, which follow each step's own rule and λ.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .optim import UpdateRule

__all__ = ["StagedRule", "StageInfo"]


@dataclass(frozen=True)
class StageInfo:
    """One stage of a run: its ``name``, its global ``steps`` and ``points`` (ranges) and its ``rule``."""
    name: str
    steps: range
    points: range
    rule: UpdateRule


class StagedRule(UpdateRule):
    """The update rule of a multi-stage run (module docstring).

    rules: one `UpdateRule` per stage (not itself staged); starts: the global step where each stage
    begins (starts[0] = 0, increasing); offsets: the global index where each stage's points begin,
    plus the total n (len(rules) + 1 numbers, increasing from 0); names: one per stage.
    """
    name = "staged"

    def __init__(self, rules: Sequence[UpdateRule], starts: Sequence[int], offsets: Sequence[int],
                 names: Optional[Sequence[str]] = None):
        rules, starts, offsets = tuple(rules), tuple(int(s) for s in starts), tuple(int(o) for o in offsets)
        if not rules or any(not isinstance(r, UpdateRule) or isinstance(r, StagedRule) for r in rules):
            raise TypeError("a StagedRule needs one dt.optim rule (SGD, Adam, AdamW) per stage")
        if len(starts) != len(rules) or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"stage starts must begin at 0 and increase, one per stage; got {list(starts)}")
        if len(offsets) != len(rules) + 1 or offsets[0] != 0 or any(b <= a for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f"stage offsets must be 0 < n_1 < n_1 + n_2 < … (one more than the stages); "
                             f"got {list(offsets)}")
        names = tuple(names) if names is not None else tuple(f"stage {k + 1}" for k in range(len(rules)))
        if len(names) != len(rules) or not all(isinstance(n, str) for n in names):
            raise ValueError("give one name (a str) per stage")
        self.rules, self.starts, self.offsets, self.names = rules, starts, offsets, names
        self.slots = max((r.slots for r in rules), key=len)

    # ---- the rule -----------------------------------------------------------------------------
    def stage_of_step(self, t: int) -> int:
        """The stage that global step t belongs to."""
        k = 0
        while k + 1 < len(self.starts) and t >= self.starts[k + 1]:
            k += 1
        return k

    def update(self, s: torch.Tensor, g: torch.Tensor, lr: float, t: int, v_grad=None) -> torch.Tensor:
        """Δs at global step t: stage k's rule at its own step t − starts[k], after the reset ρ at a
        boundary (module docstring). s [..., S], g [..., P]."""
        k = self.stage_of_step(t)
        rule, u = self.rules[k], t - self.starts[k]
        P = s.shape[-1] // self.k
        own = s[..., :rule.k * P]
        if u == 0 and k > 0:   # fresh optimizer: θ carried over, every buffer dropped
            start = torch.cat([own[..., :P], torch.zeros_like(own[..., P:])], dim=-1)
            shift = start - own                               # exactly 0 on θ
        else:
            start, shift = own, None
        kw = {} if v_grad is None else {"v_grad": v_grad}
        d_own = rule.update(start, g, lr, u, **kw)
        if shift is not None:
            d_own = shift + d_own
        rest = s[..., rule.k * P:]
        d_rest = -rest if (u == 0 and k > 0) else torch.zeros_like(rest)
        return torch.cat([d_own, d_rest], dim=-1) if rest.shape[-1] else d_own

    @property
    def plain_sgd(self) -> bool:
        return False

    # ---- description --------------------------------------------------------------------------
    @property
    def weight_decay(self) -> float:
        """λ shared by every stage; a ValueError when the stages differ (then `weight_decay_at`)."""
        lams = {r.weight_decay for r in self.rules}
        if len(lams) != 1:
            raise ValueError(f"the stages of this run use different weight decays {sorted(lams)}: ask "
                             "rule.weight_decay_at(t) for step t's")
        return lams.pop()

    def weight_decay_at(self, t: int) -> float:
        """λ of step t's stage."""
        return self.rules[self.stage_of_step(t)].weight_decay

    def stage_infos(self, T: int) -> list[StageInfo]:
        """The stages of a run of T steps (a prefix may stop inside a stage or before one starts)."""
        ends = list(self.starts[1:]) + [max(T, self.starts[-1])]
        return [StageInfo(n, range(min(a, T), min(b, T)), range(o, p), r)
                for n, a, b, o, p, r in zip(self.names, self.starts, ends, self.offsets, self.offsets[1:], self.rules)]

    def spec(self) -> dict:
        """JSON-ready: ``{"name": "staged", "stages": [{"name", "rule", "start", "first_index"}], "n"}``."""
        return {"name": "staged", "n": self.offsets[-1],
                "stages": [{"name": n, "rule": r.spec(), "start": s, "first_index": o}
                           for n, r, s, o in zip(self.names, self.rules, self.starts, self.offsets)]}

    @classmethod
    def from_spec(cls, spec: dict, rule_from_spec) -> "StagedRule":
        """Rebuild from `spec` (ValueError/TypeError on anything else)."""
        stages = spec.get("stages")
        if not isinstance(stages, list) or not 1 <= len(stages) <= 1000 or set(spec) != {"name", "n", "stages"}:
            raise ValueError("a staged spec holds 'n' and a list of 1 to 1000 stages")
        if any(not isinstance(st, dict) or set(st) != {"name", "rule", "start", "first_index"} for st in stages):
            raise ValueError("each stage of a staged spec holds exactly name, rule, start and first_index")
        ints = [spec["n"]] + [st[k] for st in stages for k in ("start", "first_index")]
        if any(type(v) is not int or not 0 <= v < 2 ** 62 for v in ints):
            raise ValueError("stage starts, first indices and n must be integers >= 0")
        if any(isinstance(st["rule"], dict) and st["rule"].get("name") == "staged" for st in stages):
            raise ValueError("a stage's rule cannot itself be staged")
        return cls([rule_from_spec(st["rule"]) for st in stages], [st["start"] for st in stages],
                   [st["first_index"] for st in stages] + [spec["n"]], [st["name"] for st in stages])

    def _settings(self) -> dict:
        return {"stages": self.spec()["stages"]}

    def __repr__(self) -> str:
        parts = ", ".join(f"{n!r}: {r!r} from step {s}" for n, r, s in zip(self.names, self.rules, self.starts))
        return f"dt.optim.StagedRule({parts})"
