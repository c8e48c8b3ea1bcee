"""The data value embedding recursion for runs whose optimizer has a state (momentum, Adam, AdamW).

A step is s_{t+1} = F_t(s_t, g_t) with s = (θ, buffers) ∈ R^S, S = k·P (`dve_teach.training.optim`).
Removing point i at step t changes s_{t+1} by δ_{i,t} (exact, `training.linearize.removal_deltas`),
and later steps carry the change through their Jacobians

    J_k = ∂F_k/∂s + ∂F_k/∂g · H_k · E        (E: θ out of s; H_k the Hessian of step k's batch loss),

so the test-free embedding is the θ-rows of their product applied to δ (DEVELOPERS.md, "The maths"):

    DVE(i, t) = Q_t δ_{i,t},   Q_t = R E J_{T−1} ··· J_{t+1}  Tensor[d, S],
    influence(i, t; z_test) = (R ∇m(θ_T, z_test))ᵀ DVE(i, t),

R [d, P] the projection (the identity without one). The backward recursion: Q = [R, 0] at the end;
for t = T−1, ..., 0: DVE_i = Q δ_i for every i ∈ B_t (all with the same Q), then Q ← Q J_t with H_t
replaced by the curvature of `DataValueEmbedding` — H̃_t = (1/b) Wᵀ V: Fisher W = V = G (per-sample
gradients), GGN W = diag(s) K, V = K (`recursion.ggn_factors`), sampled Fisher W = G̃/S, V = G̃ —
per layer when ``layerwise``. F acts on each coordinate of θ separately, so ∂F/∂s and ∂F/∂g are
k×k and k×1 blocks per coordinate (`training.linearize.rule_partials`), and

    Q J = Q A + ((Q C) H̃) E,     (Q A)[:, j, p] = Σ_l Q[:, l, p] A[l, j, p],  (Q C)[:, p] = Σ_l Q[:, l, p] C[l, p].

For plain SGD (k = 1, A = 1 − ηλ, C = −η) this is the P-form recursion of `recursion.run_recursion`
(with R applied on the output side); the tests hold the two equal. Adam's J includes how v — and
so every coordinate's step size — reacts to the gradient; ``frozen=True`` holds v at its recorded
values instead (v fed the recorded gradient, ∂F/∂v = 0): the "frozen preconditioner" variant.

Cost per step O(d·S·m) (m = batch size, times C outputs for the GGN); memory d·S numbers. Dense in
the gradient space (no low-rank batching): meant for the models of the lessons (P up to ~10⁴).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..data.progress import step_bar
from ..training.linearize import removal_deltas, rule_partials
from ..training.trajectory import Trajectory
from .projection import Projection
from .recursion import ggn_factors, sampled_targets

__all__ = ["run_state_recursion", "compose_state_segments"]


def _curvature(traj: Trajectory, theta: torch.Tensor, X, y, G: torch.Tensor, hessian: str, samples: int,
               seed: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, V) with H̃ = (1/b) Wᵀ V, both [r, P] (module docstring)."""
    obj = traj.objective
    if hessian == "fisher":
        return G, G
    if hessian == "ggn":
        K, s = ggn_factors(obj, theta, X, y)
        return K * s.unsqueeze(1), K
    Gs = obj.per_sample_grads(theta, *sampled_targets(obj, theta, X, samples, seed, t)).detach()
    return Gs / samples, Gs


def _mix(Qs: torch.Tensor, coef: torch.Tensor, j: int, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Σ_l Qs[:, l, :] · coef[l] (coef [k, P], per coordinate) — into out[:, j] when given, else a new
    [d, P]. Elementwise, skipping zero blocks and using scalars for constant ones (β₁, β₂, 1 − ηλ):
    this is memory-bound work on d × P arrays, so every pass saved counts."""
    dst = out[:, j] if out is not None else None
    first = True
    for l in range(coef.shape[0]):
        c = coef[l]
        if not bool(c.any()):
            continue
        const = bool((c == c[0]).all())
        if first:
            dst = torch.mul(Qs[:, l], float(c[0]) if const else c, out=dst) if dst is not None \
                else Qs[:, l] * (float(c[0]) if const else c)
            first = False
        elif const:
            dst.add_(Qs[:, l], alpha=float(c[0]))
        else:
            dst.addcmul_(Qs[:, l], c)
    if first:
        dst = dst.zero_() if dst is not None else torch.zeros_like(Qs[:, 0])
    return dst


def run_state_recursion(traj: Trajectory, proj: Projection, hessian: str = "fisher", renormalize: bool = False,
                        layerwise: bool = False, frozen: bool = False, fisher_samples: int = 1, seed: int = 0,
                        start: int = 0, stop: Optional[int] = None, rows: Optional[torch.Tensor] = None,
                        propagate_first: bool = False, probe: Optional[Callable] = None,
                        progress: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of the occurrences of steps [start, stop), Tensor[n, r], rows in step order (batch
    order within a step), and the Q left at the end, Tensor[r, S]. See the module docstring.

    rows: the Q at `stop` (default [R, 0], r = d: the embeddings of the final model); with the
    identity I_S (influence checkpointing, `checkpointing`) the embeddings are relative to the state
    s_stop and the returned Q is the segment's propagation J_{stop−1} ··· J_start when
    ``propagate_first`` (otherwise the Jacobian of step `start`, which only feeds earlier steps, is
    skipped). probe: called as ``probe(t, s_t, g_t, Q, v_grad)`` at every step before Q is updated (Q
    maps a change of s_{t+1} to the embedding space; v_grad is the gradient fed to Adam's v when
    ``frozen``, else None), e.g. to embed edits of the order (`order_effects`). progress: a bar over
    the steps (`dve_teach.data.progress`; None: once the fit has run ~2 s)."""
    rule, obj, b = traj.optimizer, traj.objective, traj.batch_size
    k, P = rule.k, traj.flat.P
    stop = traj.T if stop is None else stop
    if rows is None:
        R = proj.matrix().to(traj.dtype)                                  # [d, P]
        rows = torch.zeros(R.shape[0], k * P, dtype=traj.dtype, device=traj.device)
        rows[:, :P] = R
    Q, d = rows.clone(), rows.shape[0]
    spare = torch.empty_like(Q)   # Q and the next Q alternate between two buffers (no d×S allocation per step)
    slices = [sl for _, sl in traj.flat.layers] if layerwise else [slice(0, P)]
    out: list = [None] * (stop - start)
    decoupled = getattr(rule, "decoupled", True)
    with torch.no_grad():
        for t, s in step_bar(traj.iter_states(reverse=True, start=start, stop=stop), stop - start,
                             "embedding fit (optimizer state)", progress):
            _, X, y = traj.batch(t)
            lr, theta = float(traj.lrs[t]), rule.theta(s)
            G = obj.per_sample_grads(theta, X, y).detach()
            g = G.sum(0) / b
            v_grad = None
            if frozen:   # v fed the recorded (effective) gradient: it reacts to nothing
                v_grad = g + rule.weight_decay * theta if not decoupled and rule.weight_decay else g
            try:
                delta = removal_deltas(rule, s, G, lr, t, b, renormalize, v_grad=v_grad)
            except ValueError as e:
                raise ValueError(f"step {t}: {e}") from e
            out[t - start] = delta @ Q.T
            if probe is not None:
                probe(t, s, g, Q, v_grad)
            if t == start and not propagate_first:
                break
            A, C = rule_partials(rule, s, g, lr, t, v_grad=v_grad)
            if frozen:
                A[:, 2] = 0.0
            Qs, Qn = Q.view(d, k, P), spare.view(d, k, P)
            QC = _mix(Qs, C, 0)
            for j in range(k):
                _mix(Qs, A[:, j], j, out=Qn)
            W, V = _curvature(traj, theta, X, y, G, hessian, fisher_samples, seed, t)
            for sl in slices:
                Qn[:, 0, sl] += (QC[:, sl] @ W[:, sl].T) @ V[:, sl] / b
            Q, spare = spare, Q
    return torch.cat(out, 0), Q


def compose_state_segments(local: list[torch.Tensor], props: list[torch.Tensor], proj: Projection,
                           traj: Trajectory) -> torch.Tensor:
    """Final-model embeddings from per-segment ones in state space (influence checkpointing, §4.4):
    segment k's rows [n_k, S] times ([R, 0] Π_{K−1} ··· Π_{k+1})ᵀ, Π_j [S, S] the segments'
    propagations. Returns Tensor[Σ n_k, d]."""
    P = traj.flat.P
    R = proj.matrix().to(traj.dtype)
    C = torch.zeros(R.shape[0], props[0].shape[0], dtype=traj.dtype, device=traj.device)
    C[:, :P] = R
    out = [None] * len(local)
    for k in range(len(local) - 1, -1, -1):
        out[k] = local[k] @ C.T
        C = C @ props[k]
    return torch.cat(out, 0)
