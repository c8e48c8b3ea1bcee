"""The counterfactual run itself: θ'_t along the whole trajectory, and how far it drifts from θ_t.

`exact_loo` (dve_teach.influence.loo) returns only the end point's effect on a test measure; lesson 02 and
the `RemovalExplorer` also want the path. With w_i = 0 for the removed point at the affected
steps (DEVELOPERS.md, "The maths"; paper §2, Definition 1), for the run's update rule F_t:

    s'_{t+1} = F_t(s'_t, (1/d_t) Σ_{j∈B_t} w_j ∇ℓ(θ'_t, z_j)),   s'_t = s_t up to the first removal
    (plain SGD: θ'_{t+1} = θ'_t − η_t ((1/d_t) Σ w_j ∇ℓ(θ'_t, z_j) + λ θ'_t)),

with d_t = b (zero-weight, the default) or d_t = |B_t| − 1 at an affected step (``renormalize``).
The divergence is ‖θ'_t − θ_t‖₂ for t = 0..T: exactly zero up to and including the first removal
step t_s, and ``‖δ‖`` at t_s + 1 where δ is the removal direction (paper §3.1). The same
validation and replay engine as `exact_loo` (it shares its removal bookkeeping).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data.checks import as_index_list, as_int
from .loo import IndexLike, _removals
from ..training.trajectory import Trajectory

__all__ = ["counterfactual_params", "divergence", "divergences"]


def _recorded(traj: Trajectory) -> torch.Tensor:
    """s_t of the recorded run for t = 0..T: Tensor[T+1, S] (S = P for plain SGD)."""
    return torch.stack([s for _, s in traj.iter_states()] + [traj.state(traj.T)])


def _replay(traj: Trajectory, points: IndexLike, steps: Optional[IndexLike], renormalize: bool,
            base: torch.Tensor) -> torch.Tensor:
    """s'_t for every removal and t = 0..T: Tensor[K, T+1, S]; `base` = `_recorded(traj)`.
    Row k equals base exactly up to its first removal (and everywhere if it has none)."""
    rem = _removals(traj, points, steps, renormalize)
    K, T = len(rem), traj.T
    dev = traj.device
    out = base.expand(K, -1, -1).clone()
    active = [k for k, r in enumerate(rem) if r]
    if not active:
        return out
    firsts = torch.tensor([min(rem[k]) for k in active], device=dev)
    t0 = int(firsts.min())
    engine, rule = traj.engine, traj.optimizer
    states = base[t0].expand(len(active), -1).clone()
    rows = torch.tensor(active, device=dev)
    labels = as_index_list(points, 'points')
    for t in range(t0, T):
        waiting = firsts > t  # not removed yet: these follow the recorded run exactly
        states[waiting] = base[t + 1]
        _, X, y = traj.batch(t)
        W, D = engine.unit(states, len(X))
        for a, k in enumerate(active):
            if t in rem[k]:
                W[a, rem[k][t]] = 0.0
                if renormalize:
                    D[a] = float(len(X) - 1)
        live = ~waiting
        states[live], L = engine.step(states[live], t, X, y, W[live], D[live])
        live_rows = live.nonzero().reshape(-1).tolist()
        traj.guard.check(L, rule.theta(states[live]), t, engine.lr(t),
                         who=lambda r: f"the replay without point {labels[active[live_rows[r]]]}")
        out[rows, t + 1] = states
    return out


def counterfactual_params(traj: Trajectory, point: int, step: Optional[int] = None, *,
                          renormalize: bool = False) -> torch.Tensor:
    """θ'_t for t = 0..T of the run without `point`: Tensor[T+1, P].

    step=None removes the point at every occurrence; an int removes it only at that step (its
    batch must hold the point). ``renormalize=True`` divides an affected batch by |B_t| − 1
    instead of b. θ'_t = θ_t (exactly) up to the first removal; ``[-1]`` is the θ'_T whose test
    loss `exact_loo` compares with θ_T's. Paper §2, Definition 1.
    """
    s = _replay(traj, [as_int(point, 'point')], None if step is None else [as_int(step, 'step')], renormalize,
                _recorded(traj))[0]
    return traj.optimizer.theta(s)


def divergences(traj: Trajectory, points: IndexLike, steps: Optional[IndexLike] = None, *,
                renormalize: bool = False) -> torch.Tensor:
    """‖θ'_t − θ_t‖₂ for each removal (one batched replay): Tensor[len(points), T+1].

    Row k removes ``points[k]`` at ``steps[k]`` (or at every occurrence when steps is None).
    Memory: len(points) × (T+1) × P numbers.
    """
    base = _recorded(traj)
    theta = traj.optimizer.theta
    return (theta(_replay(traj, points, steps, renormalize, base)) - theta(base)).norm(dim=2)


def divergence(traj: Trajectory, point: int, step: Optional[int] = None, *,
               renormalize: bool = False) -> torch.Tensor:
    """‖θ'_t − θ_t‖₂ for t = 0..T when `point` is removed at `step` (every occurrence when None):
    Tensor[T+1]. Zero up to the first removal step t_s; at t_s + 1 it is ‖δ‖ (paper §3.1)."""
    return divergences(traj, [as_int(point, 'point')], None if step is None else [as_int(step, 'step')], renormalize=renormalize)[0]
