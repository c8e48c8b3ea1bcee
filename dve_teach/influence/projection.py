"""Random projections of flat per-sample gradients, R^P -> R^d, for data value embeddings.

Paper §4.2 (storage) and §4.3 ("∇θℓ ∈ R^p̃ in the subsequent contents"): the backward recursion
runs on projected gradients R g, so M and the embeddings live in R^d instead of R^P. Every
projection here is a fixed linear map R: Tensor[d, P]; `Projection.project(V)` maps rows
V [..., P] -> V Rᵀ [..., d] and test gradients go through the same R.

- ``"gaussian"``: entries N(0, 1/d), so E[RᵀR] = I and E[(R u)ᵀ(R g)] = uᵀg (unbiased for the
  first-step term; the recursion is a polynomial in R, so with M ≠ 0 the average over seeds
  carries an O(1/d) bias). ``layerwise=True`` makes R block-diagonal: each layer of
  `FlatModel.layers` is projected on its own, d split across layers in proportion to their size.
- ``"orthogonal"``: orthonormal rows (QR of a Gaussian), d ≤ P; with d = P an orthogonal matrix,
  so scores equal the unprojected ones. (With d < P, E[RᵀR] = (d/P) I: scores shrink by d/P.)
- a Tensor [d, P] of the user's.
- ``"kronecker"`` (LoGra, Choe et al. 2024; paper §4.2): for every ``nn.Linear`` the per-sample
  gradient of [W | b] is an [out, in+1] matrix G = δ_out [a; 1]ᵀ (output gradient times the
  input activation with a 1 for the bias); it is projected as P_out G P_inᵀ, P_out [k_o, out],
  P_in [k_i, in+1] Gaussian, i.e. (P_out ⊗ P_in) vec(G) = (P_out δ_out) ⊗ (P_in [a; 1]): the
  activation and output-gradient factors are projected separately. proj_dim is split over the
  Linear layers in proportion to their size and each share rounded down to a product k_o·k_i
  (k_o ≤ out, k_i ≤ in+1), so d = Σ k_o k_i ≤ proj_dim (``embedding_dim_`` reports it).

`blocks` lists, per layer, the slice of the projected dimension it occupies (None when the
projection mixes layers); `DataValueEmbedding(layerwise=True)` keeps M block-diagonal on them.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn

from ..training.functional import FlatModel

__all__ = ["Projection", "IdentityProjection", "DenseProjection", "KroneckerProjection",
           "make_projection", "matrix_projection", "random_projection", "allocate_dims", "kron_shape",
           "linear_factors", "linear_io", "factored_grads", "ProjectionLike"]

#: what may be passed as ``projection``: a kind's name, a matrix [d, P] or a `Projection` object
ProjectionLike = Union[str, torch.Tensor, "Projection"]


class Projection:
    """A linear map R: R^P -> R^d on the last dimension. ``dim`` = d, ``in_dim`` = P,
    ``blocks``: list of slices of [0, d) per layer, or None when the projection mixes layers."""

    name = "projection"
    in_dim: int
    dim: int
    blocks: Optional[list]

    def project(self, V: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """V [..., P] -> V Rᵀ [..., d]."""
        raise NotImplementedError

    def per_sample_grads(self, obj, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """R ∇_θ ℓ(θ, z_i) for every row of the batch: Tensor[m, d] (full gradients, then projected;
        from the Linear layers' factors when the model allows it, `factored_grads`)."""
        G = factored_grads(obj, theta, X, y)
        return self.project(G if G is not None else obj.per_sample_grads(theta, X, y).detach())

    def matrix(self) -> torch.Tensor:
        """R as a dense Tensor[d, P] (for small models and tests)."""
        ref = self._ref()
        return self.project(torch.eye(self.in_dim, dtype=ref.dtype, device=ref.device)).T.contiguous()

    def _ref(self) -> torch.Tensor:  # a tensor giving dtype and device
        raise NotImplementedError

    def __repr__(self) -> str:
        layers = None if self.blocks is None else len(self.blocks)
        return f"{type(self).__name__}(P={self.in_dim} -> d={self.dim}, layers={layers})"


class IdentityProjection(Projection):
    """No projection (d = P); blocks are the parameter slices of `FlatModel.layers`."""

    name = "none"

    def __init__(self, flat: FlatModel):
        self.in_dim = self.dim = flat.P
        self.blocks = [s for _, s in flat.layers]
        self._dtype, self._device = flat.dtype, flat.device

    def project(self, V: torch.Tensor) -> torch.Tensor:
        return V

    def matrix(self) -> torch.Tensor:
        return torch.eye(self.dim, dtype=self._dtype, device=self._device)

    def _ref(self) -> torch.Tensor:
        return torch.empty(0, dtype=self._dtype, device=self._device)


class DenseProjection(Projection):
    """R given by blocks: parts = [(input slice of θ, R_l [d_l, n_l])]; the outputs are concatenated.
    One part covering all of θ is a plain dense R; several make R block-diagonal (``layerwise``)."""

    def __init__(self, parts: Sequence[tuple], P: int, name: str = "dense", layerwise: bool = False):
        self.parts = [(s, R) for s, R in parts]
        self.in_dim, self.name = int(P), name
        self.dim = sum(R.shape[0] for _, R in self.parts)
        offs = [0]
        for _, R in self.parts:
            offs.append(offs[-1] + R.shape[0])
        self.blocks = [slice(a, b) for a, b in zip(offs[:-1], offs[1:])] if layerwise else None

    def project(self, V: torch.Tensor) -> torch.Tensor:
        if len(self.parts) == 1 and self.parts[0][0] == slice(0, self.in_dim):
            return V @ self.parts[0][1].T
        return torch.cat([V[..., s] @ R.T for s, R in self.parts], dim=-1)

    def matrix(self) -> torch.Tensor:
        """R Tensor[d, P] assembled from its blocks (no P×P identity is formed: P may be 10^5)."""
        ref = self.parts[0][1]
        R = torch.zeros(self.dim, self.in_dim, dtype=ref.dtype, device=ref.device)
        row = 0
        for s, Rl in self.parts:
            R[row:row + Rl.shape[0], s] = Rl
            row += Rl.shape[0]
        return R

    def _ref(self) -> torch.Tensor:
        return self.parts[0][1]


class KroneckerProjection(Projection):
    """LoGra-style projection of every Linear layer: vec(P_out [W | b] P_inᵀ), row-major [k_o, k_i].

    factors: list of dicts with keys name, weight (slice of θ), bias (slice or None), out, inp,
    P_out [k_o, out], P_in [k_i, inp + has_bias]."""

    name = "kronecker"

    def __init__(self, factors: list, P: int):
        self.factors, self.in_dim = factors, int(P)
        sizes = [f["P_out"].shape[0] * f["P_in"].shape[0] for f in factors]
        self.dim = sum(sizes)
        offs = [0]
        for k in sizes:
            offs.append(offs[-1] + k)
        self.blocks = [slice(a, b) for a, b in zip(offs[:-1], offs[1:])]

    def project(self, V: torch.Tensor) -> torch.Tensor:
        lead = V.shape[:-1]
        outs = []
        for f in self.factors:
            G = V[..., f["weight"]].reshape(*lead, f["out"], f["inp"])
            if f["bias"] is not None:
                G = torch.cat([G, V[..., f["bias"]].unsqueeze(-1)], dim=-1)  # [..., out, in+1]
            Y = f["P_out"] @ G @ f["P_in"].T                                 # [..., k_o, k_i]
            outs.append(Y.reshape(*lead, -1))
        return torch.cat(outs, dim=-1)

    def _ref(self) -> torch.Tensor:
        return self.factors[0]["P_out"]

    def per_sample_grads(self, obj, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Projected per-sample gradients from the factors, never forming a [m, P] gradient (LoGra).

        One forward pass records every Linear layer's input a_i (Tensor[m, ..., in]) and one backward
        pass of Σ_i ℓ_i gives the output gradients δ_i = ∂ℓ_i/∂z_i (examples do not interact: the model
        has no batch norm). Then P_out G_i P_inᵀ = Σ_s (P_out δ_is)(P_in [a_is; 1])ᵀ, s over extra
        (e.g. sequence) positions: Tensor[m, d], equal to ``project(per-sample gradients)``. Falls back
        to full gradients if a layer is used more or less than once per forward pass."""
        io = linear_io(obj, theta, X, y, self.factors)
        if io is None:
            return super().per_sample_grads(obj, theta, X, y)
        cols = []
        for f, (a, delta) in zip(self.factors, io):
            left = delta @ f["P_out"].T      # [m, S, k_o]
            right = a @ f["P_in"].T          # [m, S, k_i]
            cols.append(torch.einsum("msk,msj->mkj", left, right).reshape(X.shape[0], -1))
        return torch.cat(cols, dim=1)


def linear_io(obj, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, factors: list) -> Optional[list]:
    """Per-sample factors of every Linear layer's gradient: [(a, δ)] with a = [input; 1 if bias]
    Tensor[m, S, in(+1)] and δ = ∂ℓ_i/∂output Tensor[m, S, out] (S: extra, e.g. sequence, positions),
    so ∇_{[W|b]} ℓ_i = Σ_s δ_is a_isᵀ. One forward pass with hooks and one backward pass of Σ_i ℓ_i
    (examples do not interact: the model has no batch norm). None if a layer is not used exactly
    once per forward pass."""
    acts: dict = {}
    outs: dict = {}

    def recorder(name):
        def hook(module, inputs, output):
            acts.setdefault(name, []).append(inputs[0].detach())
            outs.setdefault(name, []).append(output)
        return hook

    model = obj.flat.model
    handles = [model.get_submodule(f["name"]).register_forward_hook(recorder(f["name"])) for f in factors]
    try:
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            losses = obj.losses(th, X, y)
            if any(len(outs.get(f["name"], [])) != 1 for f in factors):
                return None
            deltas = torch.autograd.grad(losses.sum(), [outs[f["name"]][0] for f in factors])
    finally:
        for h in handles:
            h.remove()
    m, io = X.shape[0], []
    for f, delta in zip(factors, deltas):
        a = acts[f["name"]][0].reshape(m, -1, f["inp"])
        if f["bias"] is not None:
            a = torch.cat([a, torch.ones_like(a[..., :1])], dim=-1)
        io.append((a, delta.detach().reshape(m, -1, f["out"])))
    return io


def factored_grads(obj, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> Optional[torch.Tensor]:
    """Per-sample gradients Tensor[m, P] from one forward and one backward pass (paper §4.2's
    activation × output-gradient decomposition): ∇_{[W|b]} ℓ_i = Σ_s δ_is [a_is; 1]ᵀ (`linear_io`),
    the same numbers as ``vmap(grad)`` at a fraction of the cost. None when a trainable parameter
    lives outside nn.Linear or a layer is not used exactly once per forward pass."""
    flat = obj.flat
    factors = getattr(flat, "_factor_cache", None)
    if factors is None:
        try:
            factors = linear_factors(flat)
        except ValueError:
            factors = []
        flat._factor_cache = factors
    if not factors:
        return None
    io = linear_io(obj, theta, X, y, factors)
    if io is None:
        return None
    m = X.shape[0]
    G = torch.empty(m, flat.P, dtype=theta.dtype, device=theta.device)
    for f, (a, delta) in zip(factors, io):
        W = torch.einsum("mso,msi->moi", delta, a)                  # [m, out, in(+1)]
        G[:, f["weight"]] = W[..., :f["inp"]].reshape(m, -1)
        if f["bias"] is not None:
            G[:, f["bias"]] = W[..., f["inp"]]
    return G


def allocate_dims(total: int, sizes: Sequence[int]) -> list[int]:
    """Split `total` dimensions over layers in proportion to `sizes`: each gets ≥ 1 and ≤ its size,
    and they sum to `total` (largest-remainder rounding). Needs len(sizes) ≤ total ≤ sum(sizes)."""
    sizes = [int(s) for s in sizes]
    S = sum(sizes)
    if not len(sizes) <= total <= S:
        raise ValueError(f"cannot split {total} dimensions over {len(sizes)} layers of sizes {sizes}: "
                         f"need {len(sizes)} <= proj_dim <= {S}")
    raw = [total * s / S for s in sizes]
    k = [min(s, max(1, math.floor(r))) for s, r in zip(sizes, raw)]
    while sum(k) < total:
        j = max((i for i in range(len(k)) if k[i] < sizes[i]), key=lambda i: raw[i] - k[i])
        k[j] += 1
    while sum(k) > total:
        j = min((i for i in range(len(k)) if k[i] > 1), key=lambda i: raw[i] - k[i])
        k[j] -= 1
    return k


def kron_shape(d: int, out: int, inp: int) -> tuple[int, int]:
    """k_o ≤ out, k_i ≤ inp with k_o k_i ≤ d as large as possible, aspect ratio close to out/inp."""
    best = None
    for ko in range(1, min(out, d) + 1):
        ki = min(inp, d // ko)
        if ki < 1:
            continue
        key = (ko * ki, -abs(math.log(ko / ki) - math.log(out / inp)))
        if best is None or key > best[0]:
            best = (key, ko, ki)
    return best[1], best[2]


def _gaussian(gen: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=gen, dtype=torch.float64) / math.sqrt(rows)


def _orthonormal_rows(gen: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    A = torch.randn(cols, rows, generator=gen, dtype=torch.float64)
    Q, Rr = torch.linalg.qr(A)                      # Q [cols, rows], orthonormal columns
    Q = Q * torch.sign(torch.diagonal(Rr)).where(torch.diagonal(Rr) != 0, torch.ones(()))  # Haar
    return Q.T.contiguous()


def linear_factors(flat: FlatModel) -> list[dict]:
    """The (weight slice, bias slice) of every nn.Linear owning parameters of θ; clear errors otherwise."""
    owners: dict[str, dict] = {}
    outside = []
    for n, s in zip(flat.names, flat.slices):
        owner, _, leaf = n.rpartition(".")
        mod = flat.model.get_submodule(owner)
        if not isinstance(mod, nn.Linear) or leaf not in ("weight", "bias"):
            outside.append(f"{n} ({type(mod).__name__})")
            continue
        owners.setdefault(owner, {"name": owner, "module": mod, "weight": None, "bias": None})[leaf] = s
    if not owners:
        raise ValueError("projection='kronecker' needs nn.Linear layers, but the model has none: use "
                         "projection='gaussian' (or 'orthogonal') for this model")
    if outside:
        raise ValueError("projection='kronecker' projects nn.Linear layers only, but these trainable "
                         f"parameters live elsewhere: {', '.join(outside[:5])}"
                         f"{' ...' if len(outside) > 5 else ''}; use projection='gaussian' "
                         "(layerwise=True keeps it per layer) or freeze them")
    out = []
    for f in owners.values():
        if f["weight"] is None:
            raise ValueError(f"Linear layer {f['name'] or 'model'} has a trainable bias but a frozen weight: "
                             "projection='kronecker' needs the weight; use projection='gaussian'")
        mod = f.pop("module")
        f["out"], f["inp"] = mod.out_features, mod.in_features
        out.append(f)
    return out


def make_projection(flat: FlatModel, proj_dim: Optional[int] = None, projection: ProjectionLike = "gaussian",
                    layerwise: bool = False, seed: int = 0, dtype: Optional[torch.dtype] = None,
                    device=None) -> Projection:
    """Build the projection R: R^P -> R^d of a model (see the module doc) — the model-only entry to
    the one factory, `dve_teach.influence.projection_factory.build_projection` (the kinds fitted to a
    run, "pca" and "kronecker_pca", need the `Trajectory` there).

    proj_dim=None with a string projection means no projection (d = P, identity); "orthogonal" and
    "kronecker" need a proj_dim. A Tensor [d, P] is used as given (proj_dim None or d); a `Projection`
    object (or anything with ``project``, ``dim`` and ``in_dim``) is checked and used as given.
    Random matrices are drawn in float64 on the CPU from `seed`, then moved to (dtype, device), so
    the same seed gives the same R on every device.
    """
    from .projection_factory import build_projection   # the factory builds on this module's classes
    return build_projection(flat, proj_dim, projection, layerwise, seed, dtype=dtype, device=device)


def matrix_projection(flat: FlatModel, R: torch.Tensor, proj_dim: Optional[int], layerwise: bool, dtype,
                      device) -> DenseProjection:
    """A user's matrix R [d, P] as a projection (checked: shape, finite real numbers, proj_dim)."""
    P = flat.P
    if R.ndim != 2 or R.shape[1] != P:
        raise ValueError(f"a projection matrix must be a Tensor [d, P] with P = {P} (the parameter "
                         f"count); got shape {tuple(R.shape)}")
    if R.is_complex() or not R.is_floating_point() or not bool(torch.isfinite(R).all()):
        raise ValueError(f"a projection matrix must hold finite real numbers (got dtype {R.dtype}"
                         f"{'' if R.is_complex() or not R.is_floating_point() else ' with NaN/inf'}): "
                         "pass a float Tensor [d, P]")
    if proj_dim is not None and int(proj_dim) != R.shape[0]:
        raise ValueError(f"proj_dim={proj_dim} disagrees with the projection matrix's {R.shape[0]} rows: "
                         "leave proj_dim=None when passing a matrix")
    if layerwise:
        raise ValueError("layerwise=True needs a projection that keeps layers apart; a user matrix mixes "
                         "them: use projection='gaussian' with layerwise=True, or layerwise=False")
    return DenseProjection([(slice(0, P), R.detach().to(device, dtype))], P, name="matrix")


def random_projection(flat: FlatModel, proj_dim: int, kind: str, layerwise: bool, seed: int, dtype,
                      device) -> Projection:
    """A seeded random R of `kind` "gaussian", "orthogonal" or "kronecker" (module doc); proj_dim is
    already checked (1 <= proj_dim <= P) by the factory."""
    P = flat.P
    gen = torch.Generator().manual_seed(int(seed))
    if kind == "kronecker":
        factors = linear_factors(flat)
        fans = [f["inp"] + (f["bias"] is not None) for f in factors]
        sizes = [f["out"] * k for f, k in zip(factors, fans)]
        if proj_dim < len(factors):
            raise ValueError(f"proj_dim={proj_dim} is below the number of Linear layers ({len(factors)}): "
                             "kronecker needs at least one dimension per layer")
        for f, fan, d_l in zip(factors, fans, allocate_dims(proj_dim, sizes)):
            ko, ki = kron_shape(d_l, f["out"], fan)
            f["P_out"] = _gaussian(gen, ko, f["out"]).to(device, dtype)
            f["P_in"] = _gaussian(gen, ki, fan).to(device, dtype)
        return KroneckerProjection(factors, P)
    draw = _gaussian if kind == "gaussian" else _orthonormal_rows
    if layerwise:
        slices = [s for _, s in flat.layers]
        if proj_dim < len(slices):
            raise ValueError(f"proj_dim={proj_dim} is below the number of layers ({len(slices)}): "
                             "layerwise projection needs at least one dimension per layer")
        dims = allocate_dims(proj_dim, [s.stop - s.start for s in slices])
        parts = [(s, draw(gen, k, s.stop - s.start).to(device, dtype)) for s, k in zip(slices, dims)]
        return DenseProjection(parts, P, name=kind, layerwise=True)
    return DenseProjection([(slice(0, P), draw(gen, proj_dim, P).to(device, dtype))], P, name=kind)
