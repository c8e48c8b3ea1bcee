"""`DataValueEmbedding`: test-independent embeddings whose dot product with a test gradient
estimates trajectory-specific LOO (Wang et al., ICLR 2025, §3.2 Eq. (2), §4.1 Theorem 2, §4.3).

With the update of DEVELOPERS.md, θ_{t+1} = θ_t − η_t((1/b) Σ_{i∈B_t} ∇ℓ(θ_t, z_i) + λθ_t),

    DVE(i, t) = K_t δ_{i,t},   K_t = Π_{k>t} (I − η_k (H_k + λI))   (later k on the left),
    influence(i, t; z_test) = ∇m(θ_T, z_test)ᵀ DVE(i, t)               (Eq. (2)),

δ_{i,t} = θ'_{t+1} − θ_{t+1} (`removal_directions`; (η_t/b) g_i zero-weight). H_k is replaced by
  - ``hessian="fisher"`` (the paper's choice, §4.1): (1/b) Σ_{j∈B_k} g_j g_jᵀ, the empirical Fisher;
  - ``hessian="sampled_fisher"``: (1/b) Σ_j (1/S) Σ_s g̃_js g̃_jsᵀ with g̃ the gradient at a target drawn
    from the model's predictive distribution, whose expectation is the GGN below;
  - ``hessian="ggn"``: (1/b) Σ_j J_jᵀ H_out,j J_j, the generalised Gauss–Newton (J_j the Jacobian
    of the model output, H_out,j the Hessian of ℓ in the outputs, factored by eigh into
    C signed rank-one terms k kᵀ), exact for least squares.
The backward recursion (Theorem 2: K_t = I − M, M = Σ_{later} DVE gᵀ) is run in its P = I − M
form, which also carries weight decay: P = I at the end; for t = T−1..0,

    DVE_i = P δ_i  (i ∈ B_t, all with the same P: points of one batch never affect each other),
    P ← (1 − η_t λ) P − η_t P H_t.

Everything lives in the projected space R^d (`dve_teach.influence.projection`, random, or
`dve_teach.influence.pca`, fitted to the run; §4.2–4.3); ``layerwise=True`` keeps P block-diagonal
per layer (§4.3). Cost O(T m d²) flops (m = batch size, times C for the GGN, times S + 1 for the
sampled Fisher), memory O(d²); the d×d updates are batched over several steps (a compact product of
low-rank factors) so they run as large matrix products (`dve_teach.influence.recursion`).
``segments``/``workers`` split the steps for influence checkpointing (§4.4,
`dve_teach.influence.checkpointing`): the same result, computed by segments in parallel.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data.checks import as_flag, as_int
from ..data.container import DataLike
from ..training.functional import Measure
from .scores import Influence
from .projection import Projection, ProjectionLike
from .projection_factory import build_projection
from .checkpointing import SegmentsLike, check_workers, segment_bounds, segmented_recursion
from .recursion import ggn_factors, run_recursion  # noqa: F401  (ggn_factors: its old home)
from .state_recursion import run_state_recursion
from ..training.trajectory import Trajectory

__all__ = ["DataValueEmbedding"]

_MAX_MATRIX_BYTES = 8 * 2 ** 30
#: the values of DataValueEmbedding(optimizer=...)
OPTIMIZER_MODES = ("recorded", "sgd_proxy", "frozen_preconditioner")


class DataValueEmbedding:
    """Data value embeddings (paper §3.2 Eq. (2); recursion §4.1 Theorem 2; per layer §4.3).

    hessian: ``"fisher"`` (empirical Fisher, the paper), ``"ggn"`` (generalised Gauss–Newton) or
      ``"sampled_fisher"``: the Fisher at `fisher_samples` targets per point drawn from the model
      (`recursion.sampled_targets`, seeded by `seed` and the step), an unbiased estimate of the GGN
      at the cost of the Fisher (cross-entropy and mse losses).
    proj_dim, projection, seed: the projection R: R^P -> R^d (`dve_teach.influence.projection`); proj_dim=None
      = no projection. projection: ``"gaussian"``, ``"orthogonal"``, ``"kronecker"``, a Tensor [d, P], a
      projection object (a `Projection`, or anything with ``project``, ``dim``, ``in_dim``; built by the one
      factory, `dve_teach.influence.projection_factory`), or
      fitted to the run (`dve_teach.influence.pca`): ``"pca"`` (top principal directions of the
      per-sample gradients of `pca_samples` training points, drawn with `seed`, at θ_{pca_step}) or
      ``"kronecker_pca"`` (the factored Linear-layer variant: PCA of inputs and output gradients).
    layerwise: keep P = I − M block-diagonal per layer (the paper's per-layer recursion).
    renormalize: δ for the DataLoader-style removal (the batch divides by |B_t| − 1).
    block_rank: performance knob, the rank of pending updates kept before the d×d matrix is
      touched (None = automatic, 0 = every step); results agree to rounding.
    segments: influence checkpointing (§4.4, `dve_teach.influence.checkpointing`): an int K (K nearly
      even segments of steps) or the interior cut steps (e.g. [30, 70]); each segment runs the
      recursion with P = I at its own end and the results are composed with the segments' d×d
      propagation matrices (equal to the sequential run up to rounding). 1 = sequential.
    workers: processes that run the segments (1 = this process); start_method: "spawn" (default,
      safe with CUDA and threads), "fork" or "forkserver".
    optimizer: how the run's update rule enters the recursion.
      ``"recorded"`` (default): the rule the run used. For plain SGD the recursion above; for
      momentum, Adam and AdamW the recursion over the whole optimizer state (θ and its buffers,
      including how Adam's v reacts to the gradient; `dve_teach.influence.state_recursion`), with the
      same curvature choices, projections (applied to the output side), ``layerwise`` and segments
      (then composed in state space: Π_k is S×S, S = k·P).
      ``"sgd_proxy"``: the plain-SGD recursion with the run's η_t and λ whatever the rule (what the
      paper does for its AdamW-trained language models, §5.3).
      ``"frozen_preconditioner"`` (Adam, AdamW): the state recursion with v held at its recorded
      values.
    progress: a bar over the steps while `fit` runs (`dve_teach.data.progress`): None (default) once
      the fit has run about two seconds, True at once, False never (segmented fits show none).

    Fitted state: ``embeddings_`` Tensor[n_occ, d] (rows in ``schedule.occurrence_pairs()`` order),
    ``points_``, ``steps_`` Tensor[n_occ] int64, ``projection_`` (`Projection`), ``embedding_dim_``,
    ``trajectory_``, ``segment_bounds_`` (cut steps [0, …, T]) and ``propagations_`` (per segment, the
    list of its block matrices Π_k; None for a sequential fit).
    ``influence(test)`` = embeddings_ @ test_gradients(test)ᵀ.
    """

    def __init__(self, hessian: str = "fisher", proj_dim: Optional[int] = None,
                 projection: ProjectionLike = "gaussian", layerwise: bool = False, seed: int = 0,
                 renormalize: bool = False, block_rank: Optional[int] = None,
                 segments: SegmentsLike = 1, workers: int = 1, start_method: str = "spawn",
                 pca_samples: int = 256, pca_step: int = 0, fisher_samples: int = 1,
                 optimizer: str = "recorded", progress: Optional[bool] = None):
        self.hessian, self.proj_dim, self.projection = hessian, proj_dim, projection
        self.layerwise, self.seed, self.renormalize, self.block_rank = layerwise, seed, renormalize, block_rank
        self.segments, self.workers, self.start_method = segments, workers, start_method
        self.pca_samples, self.pca_step, self.fisher_samples = pca_samples, pca_step, fisher_samples
        self.optimizer, self.progress = optimizer, progress

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, traj: Trajectory) -> "DataValueEmbedding":
        """Run the backward recursion over `traj` (reverse order of steps) and store the embeddings."""
        if self.hessian not in ("fisher", "ggn", "sampled_fisher"):
            raise ValueError(f"hessian must be 'fisher' (empirical Fisher, the paper), 'ggn' (generalised "
                             f"Gauss-Newton) or 'sampled_fisher' (its estimate from sampled targets), got "
                             f"{self.hessian!r}")
        if isinstance(self.fisher_samples, bool) or not isinstance(self.fisher_samples, int) or self.fisher_samples < 1:
            raise ValueError(f"fisher_samples must be a positive int, got {self.fisher_samples!r}")
        if not isinstance(traj, Trajectory):
            raise TypeError("fit needs a dt.Trajectory (the result of dt.train)")
        as_flag(self.layerwise, "layerwise"), as_flag(self.renormalize, "renormalize")
        if self.block_rank is not None:
            as_int(self.block_rank, "block_rank", 0)
        if self.optimizer not in OPTIMIZER_MODES:
            raise ValueError(f"optimizer must be one of {OPTIMIZER_MODES}, got {self.optimizer!r}")
        rule = traj.optimizer
        if self.optimizer == "frozen_preconditioner" and rule.name not in ("adam", "adamw"):
            raise ValueError(f"optimizer='frozen_preconditioner' holds Adam's v constant, but this run used "
                             f"{rule!r}: use 'recorded' or 'sgd_proxy'")
        stateful = self.optimizer != "sgd_proxy" and not rule.plain_sgd
        proj = build_projection(traj, self.proj_dim, self.projection, self.layerwise, self.seed,
                                self.pca_samples, self.pca_step)
        d = proj.dim
        if self.layerwise:
            if proj.blocks is None:
                raise ValueError("layerwise=True needs a projection that keeps layers apart "
                                 "(none, 'gaussian', 'orthogonal' or 'pca' with layerwise, or 'kronecker', "
                                 "'kronecker_pca')")
            slices = proj.blocks
        else:
            slices = [slice(0, d)]
        sizes = [s.stop - s.start for s in slices]
        nbytes = sum(k * k for k in sizes) * torch.finfo(traj.dtype).bits // 8
        shape = "d×d matrix"
        if stateful:   # Q: d rows over the whole state (k·P columns); with segments, S×S per segment
            S, K = traj.checkpoints[0].shape[0], len(segment_bounds(traj.T, self.segments)) - 1
            nbytes = (d * S if K == 1 else K * S * S) * torch.finfo(traj.dtype).bits // 8
            shape = "d×(k·P) matrix" if K == 1 else f"{K} state-space propagation matrices"
        if nbytes > _MAX_MATRIX_BYTES:
            raise MemoryError(f"the recursion needs {nbytes / 2**30:.1f} GiB for its {shape} (d = {d}): "
                              "use proj_dim (e.g. 1024)" + ("" if stateful else " or layerwise=True"))
        cuts = segment_bounds(traj.T, self.segments)
        check_workers(self.workers, self.start_method)
        options = dict(hessian=self.hessian, renormalize=self.renormalize, block_rank=self.block_rank,
                       fisher_samples=self.fisher_samples, seed=self.seed)
        if stateful:
            options = dict(hessian=self.hessian, renormalize=self.renormalize, layerwise=self.layerwise,
                           frozen=self.optimizer == "frozen_preconditioner", fisher_samples=self.fisher_samples,
                           seed=self.seed)
        # a bar over the steps for one sequential pass (None: once it has run ~2 s); none in segments
        options["progress"] = self.progress if len(cuts) == 2 else False
        if stateful and len(cuts) == 2:
            E, props = run_state_recursion(traj, proj, **options)[0], None
        elif stateful:
            E, props = segmented_recursion(traj, proj, slices, cuts, self.workers, self.start_method, state=True,
                                           **options)
        elif len(cuts) == 2:
            E, props = run_recursion(traj, proj, slices, **options)[0], None
        else:
            E, props = segmented_recursion(traj, proj, slices, cuts, self.workers, self.start_method, **options)
        self.segment_bounds_, self.propagations_ = cuts, props
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
        return self.projection_.project(U.detach())

    def influence(self, test: DataLike, measure: Optional[Measure] = None) -> Influence:
        """Estimated measure(θ'_T) − measure(θ_T) of every occurrence on every test point:
        `Influence` with ``per_occurrence`` = embeddings_ @ test_gradients(test)ᵀ [n_occ, n_test]."""
        self._check_fitted()
        scores = self.embeddings_ @ self.test_gradients(test, measure).T
        return Influence(scores, self.points_, self.steps_, self.trajectory_.schedule.n, method=self.method_name,
                         lrs=self.trajectory_.lrs)

    @property
    def method_name(self) -> str:
        name = f"dve_{self.hessian}"
        if self.layerwise:
            name += "_layerwise"
        if self.proj_dim is not None or not isinstance(self.projection, str):
            kind = self.projection if isinstance(self.projection, str) else \
                "matrix" if isinstance(self.projection, torch.Tensor) else getattr(self.projection, "name", "custom")
            name += f"_{kind}{getattr(self, 'embedding_dim_', self.proj_dim)}"
        name += {"recorded": "", "sgd_proxy": "_sgd_proxy", "frozen_preconditioner": "_frozen"}.get(self.optimizer, "")
        return name + ("_renormalized" if self.renormalize else "")

    def __repr__(self) -> str:
        fitted = f", fitted: {tuple(self.embeddings_.shape)}" if hasattr(self, "embeddings_") else ""
        return (f"DataValueEmbedding(hessian={self.hessian!r}, proj_dim={self.proj_dim}, projection="
                f"{repr(self.projection) if isinstance(self.projection, str) else type(self.projection).__name__}, "
                f"layerwise={self.layerwise}, seed={self.seed}, renormalize={self.renormalize}, "
                f"segments={self.segments}, workers={self.workers}, optimizer={self.optimizer!r}{fitted})")
