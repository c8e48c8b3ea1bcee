"""`DataValueEmbedding`: test-independent embeddings whose dot product with a test gradient
estimates trajectory-specific LOO (Wang et al., ICLR 2025, §3.2 Eq. (2), §4.1 Theorem 2, §4.3).

With the update of DEVELOPERS.md, θ_{t+1} = θ_t − η_t((1/b) Σ_{i∈B_t} ∇ℓ(θ_t, z_i) + λθ_t),

    DVE(i, t) = K_t δ_{i,t},   K_t = Π_{k>t} (I − η_k (H_k + λI))   (later k on the left),
    influence(i, t; z_test) = ∇m(θ_T, z_test)ᵀ DVE(i, t)               (Eq. (2)),

δ_{i,t} = θ'_{t+1} − θ_{t+1} (`removal_directions`; (η_t/b) g_i zero-weight). H_k is replaced by
  - ``hessian="fisher"`` (the paper's choice, §4.1): (1/b) Σ_{j∈B_k} g_j g_jᵀ, the empirical Fisher;
  - ``hessian="ggn"``: (1/b) Σ_j J_jᵀ H_out,j J_j, the generalised Gauss–Newton (J_j the Jacobian
    of the model output, H_out,j the Hessian of ℓ in the outputs, factored by eigh into
    C signed rank-one terms k kᵀ), exact for least squares.
The backward recursion (Theorem 2: K_t = I − M, M = Σ_{later} DVE gᵀ) is run in its P = I − M
form, which also carries weight decay: P = I at the end; for t = T−1..0,

    DVE_i = P δ_i  (i ∈ B_t, all with the same P: points of one batch never affect each other),
    P ← (1 − η_t λ) P − η_t P H_t.

Everything lives in the projected space R^d (`dve_teach.influence.projection`, §4.2–4.3); ``layerwise=True``
keeps P block-diagonal per layer (§4.3). Cost O(T m d²) flops (m = batch size, times C for the GGN),
memory O(d²); the d×d updates are batched over several steps (a compact product of low-rank
factors) so they run as large matrix products.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.func import hessian, jacrev, vmap

from ..data.checks import as_flag, as_int
from ..data.container import DataLike
from ..training.functional import Measure, Objective
from .scores import Influence
from .projection import Projection, ProjectionLike, make_projection
from ..training.trajectory import Trajectory, removal_directions

__all__ = ["DataValueEmbedding"]

_MAX_MATRIX_BYTES = 8 * 2 ** 30


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


class DataValueEmbedding:
    """Data value embeddings (paper §3.2 Eq. (2); recursion §4.1 Theorem 2; per layer §4.3).

    hessian: ``"fisher"`` (empirical Fisher, the paper) or ``"ggn"`` (generalised Gauss–Newton).
    proj_dim, projection, seed: the projection R: R^P -> R^d (`dve_teach.influence.projection`); proj_dim=None
      = no projection. projection: ``"gaussian"``, ``"orthogonal"``, ``"kronecker"`` or a Tensor [d, P].
    layerwise: keep P = I − M block-diagonal per layer (the paper's per-layer recursion).
    renormalize: δ for the DataLoader-style removal (the batch divides by |B_t| − 1).
    block_rank: performance knob, the rank of pending updates kept before the d×d matrix is
      touched (None = automatic, 0 = every step); results agree to rounding.

    Fitted state: ``embeddings_`` Tensor[n_occ, d] (rows in ``schedule.occurrence_pairs()`` order),
    ``points_``, ``steps_`` Tensor[n_occ] int64, ``projection_`` (`Projection`), ``embedding_dim_``,
    ``trajectory_``. ``influence(test)`` = embeddings_ @ test_gradients(test)ᵀ.
    """

    def __init__(self, hessian: str = "fisher", proj_dim: Optional[int] = None,
                 projection: ProjectionLike = "gaussian", layerwise: bool = False, seed: int = 0,
                 renormalize: bool = False, block_rank: Optional[int] = None):
        self.hessian, self.proj_dim, self.projection = hessian, proj_dim, projection
        self.layerwise, self.seed, self.renormalize, self.block_rank = layerwise, seed, renormalize, block_rank

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, traj: Trajectory) -> "DataValueEmbedding":
        """Run the backward recursion over `traj` (reverse order of steps) and store the embeddings."""
        if self.hessian not in ("fisher", "ggn"):
            raise ValueError(f"hessian must be 'fisher' (empirical Fisher, the paper) or 'ggn' "
                             f"(generalised Gauss-Newton), got {self.hessian!r}")
        if not isinstance(traj, Trajectory):
            raise TypeError("fit needs a dt.Trajectory (the result of dt.train)")
        as_flag(self.layerwise, "layerwise"), as_flag(self.renormalize, "renormalize")
        if self.block_rank is not None:
            as_int(self.block_rank, "block_rank", 0)
        traj.require_sgd("the data value embedding recursion")
        proj = make_projection(traj.flat, self.proj_dim, self.projection, self.layerwise, self.seed,
                               traj.dtype, traj.device)
        d = proj.dim
        if self.layerwise:
            if proj.blocks is None:
                raise ValueError("layerwise=True needs a projection that keeps layers apart "
                                 "(none, 'gaussian' or 'orthogonal' with layerwise, or 'kronecker')")
            slices = proj.blocks
        else:
            slices = [slice(0, d)]
        sizes = [s.stop - s.start for s in slices]
        nbytes = sum(k * k for k in sizes) * torch.finfo(traj.dtype).bits // 8
        if nbytes > _MAX_MATRIX_BYTES:
            raise MemoryError(f"the recursion needs {nbytes / 2**30:.1f} GiB for its d×d matrix (d = {d}): "
                              "use proj_dim (e.g. 1024) or layerwise=True")
        block_rank = self.block_rank if self.block_rank is not None else min(128, max(sizes) // 4)
        blocks = [_Block(k, traj.dtype, traj.device) for k in sizes]

        obj, b, lam = traj.objective, traj.batch_size, traj.weight_decay
        counts = [len(bt) for bt in traj.schedule.batches]
        offsets = [0]
        for c in counts:
            offsets.append(offsets[-1] + c)
        E = torch.empty(offsets[-1], d, dtype=traj.dtype, device=traj.device)
        pending: list[tuple] = []   # (t, lr, m) of steps whose embeddings are not yet formed

        def flush():
            YPs = [blk.flush() for blk in blocks]
            row = 0
            for t, lr, m in pending:
                A = torch.cat([yp[row:row + m] for yp in YPs], dim=1)
                try:
                    E[offsets[t]:offsets[t] + m] = removal_directions(A, lr, b, self.renormalize)
                except ValueError as e:
                    raise ValueError(f"step {t}: {e}") from e
                row += m
            pending.clear()

        with torch.no_grad():
            for t, theta in traj.iter_params(reverse=True):
                _, X, y = traj.batch(t)
                lr = float(traj.lrs[t])
                G = proj.per_sample_grads(obj, theta, X, y)
                last = t == 0   # the update at step 0 would only feed steps before 0
                alpha, beta = (0.0, 1.0) if last else (lr / b, 1.0 - lr * lam)
                upd = None
                if self.hessian == "ggn" and not last and alpha != 0.0:
                    Kf, s = ggn_factors(obj, theta, X, y)
                    Kp = proj.project(Kf.detach())
                    upd = (Kp * s.unsqueeze(1), Kp)
                for blk, sl in zip(blocks, slices):
                    u = None if upd is None else (upd[0][:, sl], upd[1][:, sl])
                    blk.step(G[:, sl], alpha, beta, u)
                pending.append((t, lr, X.shape[0]))
                if last or blocks[0].rank >= block_rank:
                    flush()

        self.embeddings_ = E
        pts, sts = traj.schedule.occurrence_pairs()
        self.points_ = torch.as_tensor(pts, dtype=torch.int64)
        self.steps_ = torch.as_tensor(sts, dtype=torch.int64)
        self.projection_: Projection = proj
        self.embedding_dim_ = d
        self.trajectory_ = traj
        return self

    # ---- querying -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "embeddings_"):
            raise RuntimeError("this DataValueEmbedding is not fitted yet: call .fit(traj) first")

    def test_gradients(self, test: DataLike, measure: Optional[Measure] = None) -> torch.Tensor:
        """R ∇_θ m(θ_T, z_j) for every test point: Tensor[n_test, d] (m = test loss by default)."""
        self._check_fitted()
        traj = self.trajectory_
        data = traj.check_data(test)
        U = traj.objective.measure_grads(traj.final, data, measure)
        if U.shape != (len(data), traj.flat.P):
            raise ValueError(f"the measure must return one value per test point (Tensor[{len(data)}]); its "
                             f"gradient has shape {tuple(U.shape)} instead of [{len(data)}, {traj.flat.P}]")
        return self.projection_.project(U.detach())

    def influence(self, test: DataLike, measure: Optional[Measure] = None) -> Influence:
        """Estimated measure(θ'_T) − measure(θ_T) of every occurrence on every test point:
        `Influence` with ``per_occurrence`` = embeddings_ @ test_gradients(test)ᵀ [n_occ, n_test]."""
        self._check_fitted()
        scores = self.embeddings_ @ self.test_gradients(test, measure).T
        return Influence(scores, self.points_, self.steps_, self.trajectory_.schedule.n, method=self.method_name)

    @property
    def method_name(self) -> str:
        name = f"dve_{self.hessian}"
        if self.layerwise:
            name += "_layerwise"
        if self.proj_dim is not None or isinstance(self.projection, torch.Tensor):
            kind = "matrix" if isinstance(self.projection, torch.Tensor) else self.projection
            name += f"_{kind}{getattr(self, 'embedding_dim_', self.proj_dim)}"
        return name + ("_renormalized" if self.renormalize else "")

    def __repr__(self) -> str:
        fitted = f", fitted: {tuple(self.embeddings_.shape)}" if hasattr(self, "embeddings_") else ""
        return (f"DataValueEmbedding(hessian={self.hessian!r}, proj_dim={self.proj_dim}, projection="
                f"{'Tensor' if isinstance(self.projection, torch.Tensor) else repr(self.projection)}, "
                f"layerwise={self.layerwise}, seed={self.seed}, renormalize={self.renormalize}{fitted})")
