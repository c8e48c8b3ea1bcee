"""The backward recursion of data value embeddings over a range of steps (paper §4.1 Theorem 2,
§4.3), shared by the sequential fit and influence checkpointing (§4.4).

In the P = I − M form of `DataValueEmbedding` (weight decay included), the update of step t is
Z_t = (1 − η_t λ) I − η_t H_t (H_t ≈ (1/b) Σ_{j∈B_t} g_j g_jᵀ, or the GGN). Run over steps
[start, stop) with P = I at stop − 1:

    DVE_i = P δ_i  (i ∈ B_t, t = stop−1 .. start),    P ← P Z_t,

so the embeddings are relative to θ_stop (`Trajectory.prefix(stop)`), and the P left at the end is
the segment's propagation matrix Z_{stop−1} ··· Z_start (later steps on the left) when
``propagate_first``; otherwise the update of step `start` is skipped (it only feeds earlier steps).
Everything lives in the projected space R^d, block-diagonal over ``slices`` (per-layer M).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.func import hessian, jacrev, vmap

from ..data.progress import step_bar
from ..training.functional import Objective
from ..training.trajectory import Trajectory, removal_directions
from .projection import Projection

__all__ = ["ggn_factors", "sampled_targets", "run_recursion"]


#: the most outputs per example `ggn_factors` factors (an eigh of [C, C] per example)
GGN_MAX_OUTPUTS = 2048


def ggn_factors(obj: Objective, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor):
    """Signed rank-one factors of the per-sample GGN: Jᵢᵀ H_out,i Jᵢ = Σ_r s_{ir} k_{ir} k_{ir}ᵀ.

    J_i = ∂f(θ, x_i)/∂θ [C, P] (``vmap(jacrev)``), H_out,i = ∂²ℓ/∂f² [C, C] (``vmap(hessian)``),
    H_out,i = U diag(w) Uᵀ (eigh), k_{ir} = √|w_r| J_iᵀ u_r, s_{ir} = sign(w_r).
    Returns K [r, P] and s [r] (s = +1 for convex losses such as cross-entropy and MSE), r ≤ m·C:
    rows with |w| ≤ 1e-13 max|w| (exact null directions, such as softmax's all-ones) are dropped.
    """
    flat = obj.flat

    def out1(th, x):
        return flat.forward(th, x.unsqueeze(0))[0]

    def loss1(o, t):
        return obj.loss_fn(o.unsqueeze(0), t.unsqueeze(0))[0]

    m = X.shape[0]
    outs = flat.forward(theta, X).detach()
    C = outs[0].numel()
    if C > GGN_MAX_OUTPUTS:
        raise ValueError(f"hessian='ggn' factors the loss's Hessian in the model's {C} outputs per example "
                         f"(outputs {list(outs.shape)}; a sequence model has L·V of them), an eigh of [{C}, {C}] per "
                         f"example, over the limit of {GGN_MAX_OUTPUTS}: use hessian='fisher' (the paper's choice)")
    if flat.row_vmap:
        J = vmap(jacrev(out1), in_dims=(None, 0))(theta, X)
    else:  # recurrent layers cannot be vmapped over their inputs (FlatModel.row_vmap)
        J = torch.stack([jacrev(out1)(theta, x) for x in X])
    J = J.reshape(m, -1, flat.P)                                                    # [m, C, P]
    C = J.shape[1]
    H = vmap(hessian(loss1))(outs, y).reshape(m, C, C)                            # [m, C, C]
    w, U = torch.linalg.eigh(H)
    K = (U.transpose(1, 2) @ J * w.abs().sqrt().unsqueeze(-1)).reshape(m * C, flat.P)  # [m·C, P]
    w = w.reshape(m * C)
    keep = w.abs() > 1e-13 * float(w.abs().max())   # null directions (e.g. softmax's 1) add nothing
    return K[keep], torch.sign(w[keep])


class _Block:
    """P (d×d) of one block of coordinates, with pending updates kept as a compact product.

    Within a run of steps, Q = Π Z_s (Z_s = β_s I − α_s W_sᵀ V_s, right-multiplied in processing
    order) is stored as Q = γ I − Uᵀ V (U, V: stacked rows); Y_t = G_t Qᵀ is cheap, and only at a
    flush are the embeddings Y Pᵀ and P ← P Q formed with large matrix products."""

    def __init__(self, d: int, dtype, device):
        self.P = torch.eye(d, dtype=dtype, device=device)
        self._reset()

    def _reset(self):
        self.gamma, self.U, self.V, self.Y, self.ucoef = 1.0, [], [], [], []
        self.rank = 0

    def _applyQT(self, A: torch.Tensor) -> torch.Tensor:   # A Qᵀ = γ A − (A Vᵀ) U
        if not self.U:
            return self.gamma * A
        U, V = torch.cat(self.U), torch.cat(self.V)
        return torch.addmm(A, A @ V.T, U, beta=self.gamma, alpha=-1.0)

    def step(self, G: torch.Tensor, alpha: float, beta: float, update: Optional[tuple]) -> None:
        """Record Y = G Qᵀ (embeddings before this step's update), then Q ← Q (β I − α Wᵀ V).
        update None: Fisher (W = V = G, so Q Wᵀ = Yᵀ is reused); else (W, V) for the GGN."""
        Y = self._applyQT(G)
        self.Y.append(Y)
        if alpha == 0.0 and beta == 1.0:
            self.ucoef.append(None)
            return
        # new factor α W Qᵀ with the current Q, then scale the old ones: Q Z = β Q − α (Q Wᵀ) V
        Unew = alpha * Y if update is None else alpha * self._applyQT(update[0])
        self.U = [u * beta for u in self.U]
        self.ucoef = [None if c is None else (c[0], c[1] * beta) for c in self.ucoef]
        self.U.append(Unew)
        self.V.append(G if update is None else update[1])
        self.ucoef.append((len(self.U) - 1, alpha) if update is None else None)
        self.gamma *= beta
        self.rank += self.V[-1].shape[0]

    def flush(self) -> torch.Tensor:
        """Embeddings Y Pᵀ of the pending steps (rows concatenated); then P ← P Q."""
        YP = torch.cat(self.Y) @ self.P.T
        if self.U:
            # P Uᵀ: for Fisher steps U_s = c_s Y_s, so P U_sᵀ = c_s (Y_s Pᵀ)ᵀ is already in YP.
            cols, row = [], 0
            fisher_rows = {}
            for y, c in zip(self.Y, self.ucoef):
                if c is not None:
                    fisher_rows[c[0]] = (row, y.shape[0], c[1])
                row += y.shape[0]
            for k, u in enumerate(self.U):
                if k in fisher_rows:
                    r0, n, coef = fisher_rows[k]
                    cols.append(coef * YP[r0:r0 + n])
                else:
                    cols.append(u @ self.P.T)
            PU = torch.cat(cols)                      # rows = (P Uᵀ)ᵀ = U Pᵀ
            self.P.addmm_(PU.T, torch.cat(self.V), beta=self.gamma, alpha=-1.0)
        elif self.gamma != 1.0:
            self.P.mul_(self.gamma)
        self._reset()
        return YP


def sampled_targets(obj: Objective, theta: torch.Tensor, X: torch.Tensor, samples: int, seed: int,
                    step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets drawn from the model's own predictive distribution at θ, `samples` per row of X.

    cross-entropy: ŷ ~ Categorical(softmax f(θ, x)), so E[∇ℓ(ŷ)∇ℓ(ŷ)ᵀ] = Jᵀ(diag p − p pᵀ)J;
    mse (mean over K outputs): ŷ = f + √(K/2) ε, ε ~ N(0, I), so E[∇ℓ∇ℓᵀ] = (2/K) JᵀJ —
    in both cases the GGN Jᵀ H_out J (the "true" Fisher; Kunstner et al. 2019). Returns
    (X repeated, Tensor[samples·m, ...]; ŷ): rows s·m + i are draw s for row i. Drawn on the CPU
    from a generator seeded by (seed, step), so any device and any segmentation give the same ŷ.
    """
    from ..training.functional import cross_entropy, mse
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    out = obj.flat.forward(theta, X).detach()
    Xs = X.repeat(samples, *([1] * (X.ndim - 1)))
    if out.ndim == 3:
        raise ValueError("hessian='sampled_fisher' draws one target per example from a [n, k] output; this model "
                         f"outputs sequences {list(out.shape)} ([n, L, V]), whose per-sequence mean loss it does not "
                         "serve: use hessian='fisher' (the paper's choice) or hessian='ggn'")
    if obj.loss_fn is cross_entropy:
        p = torch.softmax(out.double().cpu(), dim=1)
        ys = torch.multinomial(p, samples, replacement=True, generator=gen).T.reshape(-1)
        return Xs, ys.to(X.device)
    if obj.loss_fn is mse:
        o = out.reshape(out.shape[0], -1)
        eps = torch.randn(samples, *o.shape, generator=gen, dtype=torch.float64)
        ys = o.repeat(samples, 1) + (o.shape[1] / 2) ** 0.5 * eps.reshape(-1, o.shape[1]).to(o.device, o.dtype)
        return Xs, ys
    raise ValueError("hessian='sampled_fisher' draws targets from the model's predictive distribution, "
                     "defined for loss='cross_entropy' and loss='mse'; for a custom loss use "
                     "hessian='fisher' or hessian='ggn'")


def run_recursion(traj: Trajectory, proj: Projection, slices: list, hessian: str = "fisher",
                  renormalize: bool = False, block_rank: Optional[int] = None, start: int = 0,
                  stop: Optional[int] = None, propagate_first: bool = False, fisher_samples: int = 1,
                  seed: int = 0, progress: Optional[bool] = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Embeddings of the occurrences of steps [start, stop) relative to θ_stop, and P per block.

    Returns E Tensor[n_rows, d] (rows in step order, batch order within a step) and the list of
    block matrices P_k [d_k, d_k] (d_k = size of ``slices[k]``) described in the module doc.
    hessian: "fisher" (H_t = (1/b) Σ g gᵀ), "ggn" (`ggn_factors`) or "sampled_fisher"
    (H_t = (1/b) Σ_i (1/S) Σ_s g̃_is g̃_isᵀ, g̃ the gradients at S = `fisher_samples` targets from
    `sampled_targets`, seeded by `seed` and the step: an unbiased estimate of the GGN at the
    Fisher's rank-(m·S) cost).
    block_rank: rank of pending updates kept before the d×d matrices are touched (None = automatic).
    progress: a bar over the steps (`dve_teach.data.progress`; None: once the fit has run ~2 s).
    """
    stop = traj.T if stop is None else stop
    d = proj.dim
    sizes = [s.stop - s.start for s in slices]
    block_rank = block_rank if block_rank is not None else min(128, max(sizes) // 4)
    blocks = [_Block(k, traj.dtype, traj.device) for k in sizes]
    obj, b, rule = traj.objective, traj.batch_size, traj.optimizer
    offsets = [0]
    for t in range(start, stop):
        offsets.append(offsets[-1] + len(traj.schedule.batches[t]))
    E = torch.empty(offsets[-1], d, dtype=traj.dtype, device=traj.device)
    pending: list[tuple] = []   # (t, lr, m) of steps whose embeddings are not yet formed

    def flush():
        YPs = [blk.flush() for blk in blocks]
        row = 0
        for t, lr, m in pending:
            A = torch.cat([yp[row:row + m] for yp in YPs], dim=1)
            try:
                E[offsets[t - start]:offsets[t - start] + m] = removal_directions(A, lr, b, renormalize)
            except ValueError as e:
                raise ValueError(f"step {t}: {e}") from e
            row += m
        pending.clear()

    with torch.no_grad():
        for t, theta in step_bar(traj.iter_params(reverse=True, start=start, stop=stop), stop - start,
                                 "embedding fit", progress):
            _, X, y = traj.batch(t)
            lr = float(traj.lrs[t])
            G = proj.per_sample_grads(obj, theta, X, y)
            last = t == start
            skip = last and not propagate_first
            alpha, beta = (0.0, 1.0) if skip else (lr / b, 1.0 - lr * rule.weight_decay_at(t))   # λ of step t's stage
            upd = None
            if hessian == "ggn" and alpha != 0.0:
                Kf, s = ggn_factors(obj, theta, X, y)
                Kp = proj.project(Kf.detach())
                upd = (Kp * s.unsqueeze(1), Kp)
            elif hessian == "sampled_fisher" and alpha != 0.0:
                Gs = proj.per_sample_grads(obj, theta, *sampled_targets(obj, theta, X, fisher_samples, seed, t))
                upd = (Gs / fisher_samples, Gs)
            for blk, sl in zip(blocks, slices):
                u = None if upd is None else (upd[0][:, sl], upd[1][:, sl])
                blk.step(G[:, sl], alpha, beta, u)
            pending.append((t, lr, X.shape[0]))
            if last or blocks[0].rank >= block_rank:
                flush()
    return E, [blk.P for blk in blocks]
