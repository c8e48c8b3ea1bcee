"""`exact_loo`: the ground truth — trajectory-specific leave-one-out by replaying the run.

For each removal k (a training point i_k, removed at one step t_k or at all its occurrences)
the counterfactual run is the recorded one with ``w_{i_k} = 0`` at the affected steps
(DEVELOPERS.md, "The maths"; paper §2, Definition 1; Hara et al. 2019), for any update rule:

    s'_{t+1} = F_t(s'_t, (1/d_t) Σ_{j∈B_t} w_j ∇ℓ(θ'_t, z_j)),   s'_{t_0} = s_{t_0}
    (plain SGD: θ'_{t+1} = θ'_t − η_t ((1/d_t) Σ w_j ∇ℓ(θ'_t, z_j) + λ θ'_t)),
    TSLOO_k(z_test) = m(θ'_T, z_test) − m(θ_T, z_test)       (m: the test loss or the user's measure)

with divisor ``d_t = b`` (zero-weight, the default) or ``d_t = |B_t| − 1`` at an affected step
(``renormalize=True``, what a DataLoader that drops the point does). Positive = the point helped.

Replays are exact and start at their first affected step from the recorded state s_t (θ_t and the
optimizer's buffers, which the removal then changes too). Removals are sorted by that step and run
``chunk_size`` at a time as one step of the replay engine (`dve_teach.training.replay`) over the
replays' states, per-replay weights and divisors.
Within a chunk a replay only joins the computation at its first affected step.
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence, Union

import torch
from torch.func import vmap

from ..data.progress import bar as progress_bar
from ..data.checks import as_flag, as_index_list, as_int
from ..data.container import Data, DataLike
from ..training.functional import Measure
from ..training.trajectory import Trajectory

__all__ = ["exact_loo"]

IndexLike = Union[Sequence[int], torch.Tensor]


def _removals(traj: Trajectory, points: IndexLike, steps: Optional[IndexLike],
              renormalize: bool) -> list[dict[int, int]]:
    """For each removal, {step: position of the point in that step's batch} (possibly empty)."""
    sched, T = traj.schedule, traj.T
    renormalize = as_flag(renormalize, "renormalize")
    pts = as_index_list(points, "points")
    bad = [p for p in pts if not 0 <= p < sched.n]
    if bad:
        raise IndexError(f"point {bad[0]} is outside the training set [0, {sched.n})")
    if steps is None:
        where: dict[int, dict[int, int]] = {}
        for t, batch in enumerate(sched.batches):
            for pos, i in enumerate(batch):
                where.setdefault(i, {})[t] = pos
        rem = [dict(where.get(p, {})) for p in pts]
    else:
        sts = as_index_list(steps, "steps")
        if len(sts) != len(pts):
            raise ValueError(f"steps has {len(sts)} entries but points has {len(pts)}: give one step per "
                             "point, or steps=None to remove every occurrence")
        rem = []
        for p, t in zip(pts, sts):
            if not -T <= t < T:
                raise IndexError(f"step {t} is out of range: the trajectory has {T} steps (0..{T - 1})")
            t = t % T
            batch = sched.batches[t]
            if p not in batch:
                occ = sched.occurrences(p)
                held = f"it is in steps {occ}" if occ else "it is in no batch of the schedule"
                raise ValueError(f"point {p} is not in the batch of step {t}; {held}")
            rem.append({t: batch.index(p)})
    if renormalize:
        for p, r in zip(pts, rem):
            for t in r:
                if len(sched.batches[t]) == 1:
                    raise ValueError(f"point {p} is the only member of the batch of step {t}: renormalize=True "
                                     "would divide by |B_t| - 1 = 0; use renormalize=False")
    return rem


def _base_states(traj: Trajectory, start: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(t, s_t) of the recorded run for t = start..T−1, stepping between stored checkpoints."""
    s = traj.state(start)
    for t in range(start, traj.T):
        yield t, s
        nxt = traj.checkpoints.get(t + 1)
        s = nxt if nxt is not None else traj.step(s, t).detach()


def _measure_rows(traj: Trajectory, f, thetas: torch.Tensor, test: Data) -> torch.Tensor:
    """f(θ_r, test) for each row θ_r: Tensor[R, n_test]; vmapped, or a loop if f cannot be."""
    try:
        out = vmap(lambda th: f(th, test))(thetas)
    except Exception:  # e.g. .item() / numpy inside the user's measure: fall back to a loop
        out = torch.stack([f(th, test) for th in thetas])
    if out.shape != (thetas.shape[0], len(test)):
        raise ValueError(f"the measure must return one value per test point (Tensor[{len(test)}]), got "
                         f"shape {tuple(out.shape[1:])}")
    return out


def exact_loo(traj: Trajectory, test: DataLike, points: IndexLike, steps: Optional[IndexLike] = None, *,
              renormalize: bool = False, measure: Optional[Measure] = None, chunk_size: int = 64,
              progress: Optional[bool] = None) -> torch.Tensor:
    """Exact trajectory-specific LOO by replay: Tensor[len(points), n_test].

    Row k is ``m(θ'_T, z_test) − m(θ_T, z_test)`` for the run without point ``points[k]``:
    removed at every occurrence (``steps=None``; a point never visited gives a zero row) or only
    at step ``steps[k]`` (its batch must hold the point). ``renormalize=True`` divides the batch
    gradient of an affected step by |B_t| − 1 instead of b. ``measure(model, params, data) ->
    Tensor[n]`` replaces the per-example test loss (vmapped when possible, else looped).

    ``chunk_size`` replays run together (memory ~ chunk_size × (P + batch activations)); a
    tqdm bar shows ``progress`` (None: only if it runs longer than ~2 s). Raises
    FloatingPointError naming the step if a replay stops being finite. Paper §2 (Definition 1).
    """
    chunk_size = as_int(chunk_size, "chunk_size", 1)
    data = traj.check_data(test)
    rem = _removals(traj, points, steps, renormalize)
    f = traj.objective.measure_fn(measure)
    dev, dt, T = traj.device, traj.dtype, traj.T
    with torch.no_grad():
        base = f(traj.final, data)
    if base.shape != (len(data),):
        raise ValueError(f"the measure must return one value per test point (Tensor[{len(data)}]), got "
                         f"shape {tuple(base.shape)}")
    out = torch.zeros(len(rem), len(data), dtype=base.dtype, device=dev)

    active = [k for k, r in enumerate(rem) if r]
    active.sort(key=lambda k: min(rem[k]))
    chunks = [active[s:s + chunk_size] for s in range(0, len(active), chunk_size)]
    work = sum(T - min(rem[c[0]]) for c in chunks)
    rule, engine, guard = traj.optimizer, traj.engine, traj.guard

    bar = progress_bar(work, "exact LOO replays", progress)
    try:
        for chunk in chunks:
            firsts = [min(rem[k]) for k in chunk]  # ascending within the chunk
            t0, R = firsts[0], len(chunk)
            # per affected step: (row in chunk, position in batch)
            hits: dict[int, list[tuple[int, int]]] = {}
            for r, k in enumerate(chunk):
                for t, pos in rem[k].items():
                    hits.setdefault(t, []).append((r, pos))
            states = torch.empty(R, traj.checkpoints[0].shape[0], dtype=dt, device=dev)
            n_act = 0
            for t, s_t in _base_states(traj, t0):
                n_new = n_act
                while n_new < R and firsts[n_new] <= t:
                    n_new += 1
                if n_new > n_act:  # replays whose first removal is at t start from the recorded s_t
                    states[n_act:n_new] = s_t
                    n_act = n_new
                _, X, y = traj.batch(t)
                W, D = engine.unit(states[:n_act], len(X))
                if t in hits:
                    rows = torch.tensor([r for r, _ in hits[t]], device=dev)
                    W[rows, torch.tensor([p for _, p in hits[t]], device=dev)] = 0.0
                    if renormalize:
                        D[rows] = float(len(X) - 1)
                states[:n_act], L = engine.step(states[:n_act], t, X, y, W, D)
                guard.check(L, rule.theta(states[:n_act]), t, engine.lr(t),
                            who=lambda r: f"the replay without point {_point_of(points, chunk[r])}")
                bar.update(1)
            with torch.no_grad():
                out[torch.tensor(chunk, device=dev)] = _measure_rows(traj, f, rule.theta(states), data) - base
    finally:
        bar.close()
    return out


def _point_of(points: IndexLike, k: int) -> int:
    return int(points[k])
