"""Data-fitted projections: principal directions of per-sample gradients (paper §4.2–4.3 project
gradients to R^d; here R is fitted to the run instead of drawn at random).

Random projections spread their error over every direction, and small dot products (most pairs of
training and test gradients) drown in it. Per-sample gradients concentrate in few directions, so a
projection onto their top principal directions keeps most of what the recursion and the scores use.

- ``"pca"``: draw `samples` training points (seeded), take their per-sample gradients at θ_step,
  G Tensor[s, P], and let R [d, P] be the top-d right singular vectors of G (uncentred: the top
  eigenvectors of the empirical Fisher (1/s) GᵀG at θ_step). Rows are orthonormal, R Rᵀ = I_d. If every
  gradient of the run (training and test) lies in the span of R's rows, projected scores equal the
  unprojected ones exactly (RᵀR is then the identity on them). ``layerwise=True``: one PCA per layer
  of `FlatModel.layers`, d split over layers by size (each share ≤ min(layer size, samples)).
- ``"kronecker_pca"``: the factored variant for Linear layers, which never forms [s, P] gradients
  (in the spirit of LoGra's PCA initialisation): for each layer, P_in [k_i, in+1] = top principal
  directions of the inputs [a; 1] (bias included) and P_out [k_o, out] = those of the output
  gradients δ over the sampled points, combined as P_out ⊗ P_in (`KroneckerProjection`), so
  R g = vec(P_out G P_inᵀ) with orthonormal rows.

Signs of singular vectors are fixed (largest-magnitude entry positive), so the same seed, step and
data give the same R. Build them through the one factory,
`dve_teach.influence.projection_factory.build_projection` (as `DataValueEmbedding` does).
"""
from __future__ import annotations

import torch

from ..training.trajectory import Trajectory
from .projection import (DenseProjection, KroneckerProjection, allocate_dims, factored_grads, kron_shape,
                         linear_factors, linear_io)

__all__ = ["pca_projection", "kronecker_pca_projection", "principal_directions"]


def principal_directions(A: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k right singular vectors of A [s, n] as orthonormal rows Tensor[k, n] (float64, signs
    fixed: each row's largest-magnitude entry is positive). Needs k ≤ min(s, n)."""
    _, _, Vh = torch.linalg.svd(A.double(), full_matrices=False)
    V = Vh[:k]
    pivot = V.abs().argmax(dim=1, keepdim=True)
    return V * torch.sign(V.gather(1, pivot))


def _sample(traj: Trajectory, samples: int, step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = len(traj.data)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"pca_samples must be a positive int (training points to fit the projection on), "
                         f"got {samples!r}")
    if not 0 <= step <= traj.T:
        raise ValueError(f"pca_step={step} must be a step of the run, 0..{traj.T} (0 = θ_0, {traj.T} = θ_T)")
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(n, generator=gen)[:min(samples, n)].sort().values.to(traj.device)
    return traj.params(step), traj.data.X[idx], traj.data.y[idx]


def pca_projection(traj: Trajectory, proj_dim: int, samples: int = 256, step: int = 0, seed: int = 0,
                   layerwise: bool = False) -> DenseProjection:
    """R [d, P]: top-d principal directions of the per-sample gradients of `samples` training points
    (seeded draw; at least proj_dim of them when the training set has that many) at θ_step, one PCA
    per layer when `layerwise` (see the module doc)."""
    if isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1:
        samples = max(samples, proj_dim)   # d directions need at least d samples: draw them
    theta, X, y = _sample(traj, samples, step, seed)
    s, P = X.shape[0], traj.flat.P
    if layerwise:
        slices = [sl for _, sl in traj.flat.layers]
        caps = [min(sl.stop - sl.start, s) for sl in slices]
        if not len(slices) <= proj_dim <= sum(caps):
            raise ValueError(f"projection='pca' with layerwise=True needs {len(slices)} <= proj_dim <= "
                             f"{sum(caps)} (per layer at most min(layer size, {s} sampled points)); got "
                             f"proj_dim={proj_dim}: lower proj_dim")
        dims = allocate_dims(proj_dim, caps)
    else:
        slices, dims = [slice(0, P)], [proj_dim]
        if proj_dim > s:
            raise ValueError(f"projection='pca' finds at most {s} principal directions (the training set has "
                             f"{s} points), but proj_dim={proj_dim}: lower proj_dim")
    G = factored_grads(traj.objective, theta, X, y)
    G = G if G is not None else traj.objective.per_sample_grads(theta, X, y).detach()
    parts = [(sl, principal_directions(G[:, sl], k).to(traj.device, traj.dtype)) for sl, k in zip(slices, dims)]
    return DenseProjection(parts, P, name="pca", layerwise=layerwise)


def kronecker_pca_projection(traj: Trajectory, proj_dim: int, samples: int = 256, step: int = 0,
                             seed: int = 0) -> KroneckerProjection:
    """P_out ⊗ P_in per Linear layer from the principal directions of its output gradients and its
    inputs [a; 1] over `samples` training points at θ_step (see the module doc). d ≤ proj_dim."""
    theta, X, y = _sample(traj, samples, step, seed)
    factors = linear_factors(traj.flat)
    if proj_dim < len(factors):
        raise ValueError(f"proj_dim={proj_dim} is below the number of Linear layers ({len(factors)}): "
                         "kronecker_pca needs at least one dimension per layer")
    io = linear_io(traj.objective, theta, X, y, factors)
    if io is None:
        raise ValueError("projection='kronecker_pca' needs every Linear layer to be used exactly once per "
                         "forward pass; use projection='pca' for this model")
    fans = [f["inp"] + (f["bias"] is not None) for f in factors]
    sizes = [f["out"] * k for f, k in zip(factors, fans)]
    for f, fan, d_l, (a, delta) in zip(factors, fans, allocate_dims(proj_dim, sizes), io):
        A, D = a.reshape(-1, fan), delta.reshape(-1, f["out"])
        ko, ki = kron_shape(d_l, min(f["out"], D.shape[0]), min(fan, A.shape[0]))
        f["P_out"] = principal_directions(D, ko).to(traj.device, traj.dtype)
        f["P_in"] = principal_directions(A, ki).to(traj.device, traj.dtype)
    return KroneckerProjection(factors, traj.flat.P)
