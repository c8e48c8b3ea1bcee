"""Influence checkpointing (paper §4.4): the backward recursion split into K segments of steps that
run independently (in worker processes), then composed into final-model embeddings.

The recursion of `DataValueEmbedding` tracks P = I − M from the last step back,
P ← P Z_t with Z_t = (1 − η_t λ) I − η_t H_t, and DVE(i, t) = P δ_{i,t}, P = Z_{T−1} ··· Z_{t+1}.
Cut the steps at 0 = s_0 < s_1 < … < s_K = T. Segment k = [s_k, s_{k+1}) runs the same recursion
with P = I at its own end (`recursion.run_recursion`), which gives

    local DVE(i, t) = Z_{s_{k+1}−1} ··· Z_{t+1} δ_{i,t}   (the embedding relative to θ_{s_{k+1}}),
    Π_k = Z_{s_{k+1}−1} ··· Z_{s_k}                        (its d×d propagation matrix),

(Π_0 is kept too, although composing does not need it: Π_K−1 ··· Π_0 maps a direction at θ_0 to θ_T).

and since the product over later segments factors,

    DVE(i, t) = Π_{K−1} Π_{K−2} ··· Π_{k+1} · local DVE(i, t)        (t in segment k).

For a run whose optimizer has a state (momentum, Adam; `state_recursion`) the segments run in state
space instead: Q = I_S at a segment's end gives local embeddings relative to s_{s_{k+1}} (rows of
length S) and Π_k = J_{s_{k+1}−1} ··· J_{s_k} [S, S]; then DVE(i, t) = [R, 0] Π_{K−1} ··· Π_{k+1} · local.

This is an identity of the recursion (not an approximation): in exact arithmetic the result is the
sequential one for every Hessian choice (Fisher, GGN), weight decay, learning-rate schedule,
projection and per-layer blocks (Π_k is then block-diagonal and composed block by block).

Cost: the segments do the sequential work between them (plus the update of each segment's first
step); composing costs Σ_k n_k d² (n_k rows of segment k) plus up to (K − 2) d³ for the products of
Π's (the cheaper of two orders is chosen per block). Memory: K propagation matrices of d² entries.
Workers receive the trajectory and projection by pickling, so a custom loss must be a module-level
function; with the "spawn" start method a script must guard its entry point with
``if __name__ == "__main__":``.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import pickle
import sys
from typing import Sequence, Union

import torch

from ..training.trajectory import Trajectory
from .projection import Projection
from .recursion import run_recursion
from .state_recursion import compose_state_segments, run_state_recursion

__all__ = ["segment_bounds", "check_workers", "segmented_recursion", "compose_segments", "SegmentsLike"]

SegmentsLike = Union[int, Sequence[int]]
START_METHODS = ("spawn", "fork", "forkserver")


def segment_bounds(T: int, segments: SegmentsLike) -> list[int]:
    """Cut points [0, s_1, …, s_{K−1}, T] of the steps 0..T−1.

    segments: an int K (K nearly even segments, s_k = round(k T / K)) or the interior cut points
    themselves, a strictly increasing sequence in 1..T−1 (uneven segments)."""
    if isinstance(segments, bool):
        raise TypeError("segments must be an int (number of segments) or a list of cut steps")
    if isinstance(segments, int):
        if not 1 <= segments <= T:
            raise ValueError(f"segments={segments} must be between 1 and the number of steps T={T}")
        cuts = [round(k * T / segments) for k in range(segments + 1)]
    else:
        try:
            inner = [int(s) for s in segments]
        except TypeError:
            raise TypeError(f"segments must be an int (number of segments) or a list of cut steps, "
                            f"got {segments!r}") from None
        if any(not 0 < s < T for s in inner) or any(a >= b for a, b in zip(inner, inner[1:])):
            raise ValueError(f"segment cut points {list(segments)} must increase strictly within 1..{T - 1} "
                             f"(T = {T} steps), e.g. [{T // 2}] for two segments")
        cuts = [0, *inner, T]
    return cuts


def compose_segments(local: list[torch.Tensor], props: list[list[torch.Tensor]], slices: list,
                     how: str = "auto") -> torch.Tensor:
    """Final-model embeddings from per-segment ones: rows of segment k times (Π_{K−1}···Π_{k+1})ᵀ.

    local: K Tensors [n_k, d] (segment order); props: per segment, the block matrices Π_k [d_b, d_b]
    on ``slices``. how: "products" forms C_k = Π_{K−1}···Π_{k+1} (d³ per segment) and applies it once;
    "chain" applies Π_{k+1}ᵀ, Π_{k+2}ᵀ, … to the rows in turn (n_k d² per factor); "auto" takes the
    cheaper per block. Returns Tensor[Σ n_k, d] (the local tensors are overwritten)."""
    K = len(local)
    for b, sl in enumerate(slices):
        d_b = sl.stop - sl.start
        rows = [e.shape[0] for e in local]
        cost_products = max(K - 2, 0) * d_b + sum(rows[:-1])
        cost_chain = sum(sum(rows[:j]) for j in range(1, K))
        mode = how if how != "auto" else ("products" if cost_products < cost_chain else "chain")
        if mode == "products":
            C = None
            for k in range(K - 2, -1, -1):
                Pi = props[k + 1][b]
                C = Pi if C is None else C @ Pi
                local[k][:, sl] = local[k][:, sl] @ C.T
        elif mode == "chain":
            for j in range(1, K):
                PiT = props[j][b].T
                for k in range(j):
                    local[k][:, sl] = local[k][:, sl] @ PiT
        else:
            raise ValueError(f"how must be 'auto', 'products' or 'chain', got {how!r}")
    return torch.cat(local) if K > 1 else local[0]


def check_workers(workers: int, start_method: str) -> None:
    """Refuse a bad worker count or start method with an error naming the fix."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int (1 = in this process), got {workers!r}")
    if start_method not in START_METHODS:
        raise ValueError(f"start_method must be one of {START_METHODS}, got {start_method!r}")


def _refuse_interactive_definitions(traj: Trajectory, start_method: str) -> None:
    """A class or loss defined in a notebook (a __main__ without a file) cannot be imported by a
    spawned worker; say so before the pool fails with an obscure unpickling error."""
    if start_method == "fork" or getattr(sys.modules.get("__main__"), "__file__", None):
        return
    defined_here = [f"{type(m).__name__} (model layer)" for m in traj.model.modules()
                    if type(m).__module__ == "__main__"]
    if getattr(traj.loss, "__module__", None) == "__main__":
        defined_here.append(f"{getattr(traj.loss, '__name__', 'loss')} (loss)")
    if defined_here:
        raise ValueError(f"workers with start_method={start_method!r} import the model and loss in new processes, "
                         f"but {', '.join(defined_here)} is defined in this notebook/session; move it to a .py "
                         "module, use start_method='fork' (Linux, CPU), or workers=1")


def _run_segment(traj: Trajectory, proj: Projection, slices: list, options: dict, start: int, stop: int):
    """One segment with P = I (or Q = I_S, in state space) at its end: (local E, [propagation blocks])."""
    options = dict(options)
    if options.pop("state", False):   # momentum / Adam: rows over the whole state (state_recursion)
        eye = torch.eye(traj.checkpoints[0].shape[0], dtype=traj.dtype, device=traj.device)
        E, Q = run_state_recursion(traj, proj, start=start, stop=stop, rows=eye, propagate_first=True, **options)
        return E, [Q]
    return run_recursion(traj, proj, slices, start=start, stop=stop, propagate_first=True, **options)


def _segment_job(args: tuple) -> tuple[torch.Tensor, list[torch.Tensor]]:
    traj, proj, slices, options, start, stop, threads = args
    if threads is None:   # in this process
        return _run_segment(traj, proj, slices, options, start, stop)
    torch.set_num_threads(threads)
    E, Ps = _run_segment(traj, proj, slices, options, start, stop)
    # CUDA tensors sent between processes stay owned by the sender, and a pool worker exits: send CPU copies
    return E.cpu(), [Pi.cpu() for Pi in Ps]


def segmented_recursion(traj: Trajectory, proj: Projection, slices: list, cuts: list[int],
                        workers: int = 1, start_method: str = "spawn", **options
                        ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """Run each segment [cuts[k], cuts[k+1]) of the recursion, in-process (workers=1) or in a pool of
    `workers` processes, and compose them. options: those of `run_recursion` (hessian, renormalize,
    block_rank, fisher_samples, seed). Returns (E Tensor[n_occ, d] in step order, the propagation
    matrices per segment and block)."""
    check_workers(workers, start_method)
    K = len(cuts) - 1
    jobs = [(traj, proj, slices, options, a, c) for a, c in zip(cuts[:-1], cuts[1:])]
    workers = min(workers, K)
    if workers == 1:
        results = [_segment_job(job + (None,)) for job in jobs]
    else:
        if start_method == "fork" and traj.device.type == "cuda":
            raise ValueError("CUDA cannot be used in forked workers: use start_method='spawn' "
                             "(or workers=1)")
        _refuse_interactive_definitions(traj, start_method)
        try:   # the parts that may not pickle (the data and checkpoints are tensors)
            pickle.dumps((traj.loss, traj.model, proj))
        except Exception as e:
            raise TypeError(f"workers={workers} sends the trajectory to other processes, but it does not "
                            f"pickle ({type(e).__name__}: {e}); define a custom loss at module level (not "
                            "a lambda), or use workers=1") from e
        threads = max(1, torch.get_num_threads() // workers)
        try:
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(start_method)) as pool:
                results = list(pool.map(_segment_job, [job + (threads,) for job in jobs]))
        except cf.process.BrokenProcessPool as e:
            raise RuntimeError(f"a worker process of DataValueEmbedding(workers={workers}) died. With "
                               f"start_method={start_method!r} a script must guard its entry point with "
                               "`if __name__ == '__main__':` (the workers import it); or use workers=1") from e
    local = [E.to(traj.device) for E, _ in results]
    props = [[Pi.to(traj.device) for Pi in Ps] for _, Ps in results]
    if options.get("state"):
        return compose_state_segments(local, [Ps[0] for Ps in props], proj, traj), props
    return compose_segments(local, props, slices), props
