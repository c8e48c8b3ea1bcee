"""Explicit, small-model versions of the quantities that the estimators never form (lessons 03-04).

`sgd_influence` and `DataValueEmbedding` work with Hessian-vector products and P-vectors only.
To *see* what they compute, these functions build the matrices themselves, for tiny models
(P up to a few thousand): the Hessian H_t of one step's batch loss, the Jacobian product

    K_t = Π_{k=t+1}^{T−1} (I − η_k (H_k + λI))        (later steps on the left; paper §3.1, Eq. (1))

and the exact removal direction δ_{i,t} = θ'_{t+1} − θ_{t+1}. Then K_t δ_{i,t} is the first-order
estimate of θ'_T − θ_T and ∇m(θ_T)ᵀ K_t δ_{i,t} that of TSLOO(i, t) (DEVELOPERS.md, "The maths").

For a run whose optimizer has a state (momentum, Adam) the same objects live in state space,
s = (θ, buffers) ∈ R^S: `step_jacobian` J_t = ∂s_{t+1}/∂s_t, K_t = J_{T−1} ··· J_{t+1} [S, S] and δ ∈ R^S;
its first P rows and entries are the θ parts. All are derived from the rule's one definition with
``torch.func.jacrev`` (`dve_teach.training.linearize`); for plain SGD, J_t = I − η_t (H_t + λI).

`with_copies` builds the duplicate experiment of lesson 04 (paper §4.1: later similar points
soak up an earlier point's influence).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.func import hessian

from ..data.checks import as_index_list, as_int
from ..data.container import Data
from ..training.schedule import Schedule
from ..training.linearize import removal_deltas, step_jacobian as _step_jacobian
from ..training.trajectory import Trajectory

__all__ = ["MAX_EXPLICIT_P", "batch_hessian", "step_jacobian", "unrolled_product", "removal_direction",
           "with_copies"]

#: Explicit P x P matrices are refused above this many parameters (use the HVP-based estimators).
MAX_EXPLICIT_P = 5000


def _check_small(traj: Trajectory) -> None:
    if traj.flat.P > MAX_EXPLICIT_P:
        raise ValueError(f"the model has P = {traj.flat.P} parameters; explicit P x P matrices are only "
                         f"built for P <= {MAX_EXPLICIT_P}. Use dt.sgd_influence (Hessian-vector "
                         "products) or dt.DataValueEmbedding instead")


def _check_step(traj: Trajectory, t: int) -> int:
    t = as_int(t, "step")
    if not -traj.T <= t < traj.T:
        raise IndexError(f"step {t} is out of range: the trajectory has {traj.T} steps (0..{traj.T - 1})")
    return t % traj.T


def batch_hessian(traj: Trajectory, t: int) -> torch.Tensor:
    """H_t: the Hessian at θ_t of step t's batch loss (1/b) Σ_{j∈B_t} ℓ(θ, z_j): Tensor[P, P].

    b is the nominal batch size (also for a short batch), weight decay excluded. Built with
    ``torch.func.hessian``; for tiny models only (P <= `MAX_EXPLICIT_P`).
    """
    _check_small(traj)
    t = _check_step(traj, t)
    _, X, y = traj.batch(t)
    b = float(traj.batch_size)
    H = hessian(lambda th: traj.objective.losses(th, X, y).sum() / b)(traj.params(t))
    return H.detach()


def step_jacobian(traj: Trajectory, t: int) -> torch.Tensor:
    """J_t = ∂s_{t+1}/∂s_t of the recorded run at step t: Tensor[S, S] (S = P for plain SGD, where it
    is I − η_t (H_t + λI); 2P with momentum, 3P for Adam). Exact (``jacrev`` through the gradient)."""
    _check_small(traj)
    t = _check_step(traj, t)
    _, X, y = traj.batch(t)
    return _step_jacobian(traj.objective, traj.optimizer, traj.state(t), X, y, float(traj.lrs[t]), t,
                          traj.batch_size)


def unrolled_product(traj: Trajectory, t: int) -> torch.Tensor:
    """K_t = J_{T−1} ··· J_{t+1}: Tensor[S, S]; for plain SGD (S = P)
    K_t = (I − η_{T−1}(H_{T−1} + λI)) ··· (I − η_{t+1}(H_{t+1} + λI)).

    The Jacobian ∂s_T/∂s_{t+1} of the recorded run (exact, not an approximation): it carries a
    change made right after step t to the end of training. K_{T−1} = I. Paper §3.1, Eq. (1).
    """
    _check_small(traj)
    t = _check_step(traj, t)
    S = traj.checkpoints[0].shape[0]
    K = torch.eye(S, dtype=traj.dtype, device=traj.device)
    for k in range(t + 1, traj.T):
        K = step_jacobian(traj, k) @ K
    return K


def removal_direction(traj: Trajectory, point: int, step: int, renormalize: bool = False) -> torch.Tensor:
    """δ_{i,t} = s'_{t+1} − s_{t+1} when `point` is dropped at `step` (exact): Tensor[S] (= θ'_{t+1} − θ_{t+1},
    Tensor[P], for plain SGD).

    Plain SGD: zero-weight (η_t/b) g_i, or with ``renormalize=True`` η_t [g_i/(m−1) − S (1/(m−1) − 1/b)]
    (`dve_teach.training.trajectory.removal_directions`); any rule: its step with the batch gradient
    without the point minus the recorded step (`training.linearize.removal_deltas`). The point must
    be in that step's batch.
    """
    t, point = _check_step(traj, step), as_int(point, "point")
    if not 0 <= point < traj.schedule.n:
        raise IndexError(f"point {point} is outside the training set [0, {traj.schedule.n})")
    idx, X, y = traj.batch(t)
    members = idx.tolist()
    if int(point) not in members:
        held = traj.schedule.occurrences(int(point))
        raise ValueError(f"point {point} is not in the batch of step {t}; it is in steps {held}")
    G = traj.objective.per_sample_grads(traj.params(t), X, y)
    D = removal_deltas(traj.optimizer, traj.state(t), G, float(traj.lrs[t]), t, traj.batch_size, renormalize)
    return D[members.index(int(point))].detach()


def with_copies(data: Data, schedule: Schedule, point: int, steps: Sequence[int]) -> tuple[Data, Schedule]:
    """Append one exact copy of training point `point` per entry of `steps` and add copy k to
    the batch of ``steps[k]``: returns (data with n + len(steps) rows, schedule over them).

    The original batches keep their members (a batch with a copy is one larger; the SGD divisor
    stays the nominal b). Copies get the indices n, n+1, ...; the original point is unchanged.
    """
    n = len(data)
    point, steps = as_int(point, "point"), as_index_list(steps, "steps")
    if schedule.n != n:
        raise ValueError(f"the schedule indexes {schedule.n} points but the data has {n} rows")
    if not 0 <= int(point) < n:
        raise IndexError(f"point {point} is outside the training set [0, {n})")
    T = len(schedule)
    bad = [s for s in steps if not 0 <= int(s) < T]
    if bad:
        raise IndexError(f"step {bad[0]} is out of range: the schedule has {T} steps (0..{T - 1})")
    k = len(steps)
    rows = torch.full((k,), int(point), dtype=torch.int64, device=data.X.device)
    new = Data(torch.cat([data.X, data.X[rows]]), torch.cat([data.y, data.y[rows]]))
    batches = [list(b) for b in schedule.batches]
    for c, s in enumerate(steps):
        batches[int(s)].append(n + c)
    return new, Schedule(batches, schedule.batch_size, n + k)
