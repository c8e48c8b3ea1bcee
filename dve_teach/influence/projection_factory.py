"""The one place that builds a projection R: R^P -> R^d (paper §4.2–4.3) from what a user passes.

``projection`` may be
- a kind's name: ``"gaussian"``, ``"orthogonal"``, ``"kronecker"`` (random, seeded; built from the
  model alone, `dve_teach.influence.projection`) or ``"pca"``, ``"kronecker_pca"`` (fitted to the
  run's per-sample gradients, `dve_teach.influence.pca`; they need the `Trajectory`);
  ``proj_dim=None`` with ``"gaussian"`` means no projection (d = P); ``"kronecker_pca"`` is per layer
  whatever ``layerwise`` says;
- a matrix Tensor [d, P];
- a projection object: a `dve_teach.influence.projection.Projection` (e.g. one built earlier, to
  reuse the same R), or anything with the documented interface — ``project(V [..., P]) -> [..., d]``
  and the ints ``dim`` (d) and ``in_dim`` (P), optionally ``blocks`` (slices of [0, d) per layer,
  for ``layerwise=True``) — which is wrapped so the recursion gets ``per_sample_grads`` and
  ``matrix`` from the base class.

Every argument is checked here once (proj_dim, the kind, the object's shapes), with errors that
name the fix.
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..data.checks import as_int
from ..training.functional import FlatModel
from ..training.trajectory import Trajectory
from .pca import kronecker_pca_projection, pca_projection
from .projection import IdentityProjection, Projection, ProjectionLike, matrix_projection, random_projection

__all__ = ["build_projection", "as_projection", "KINDS", "FITTED"]

#: the kinds built from the model alone
RANDOM = ("gaussian", "orthogonal", "kronecker")
#: the kinds fitted to the trajectory (they need it, not only the model)
FITTED = ("pca", "kronecker_pca")
KINDS = RANDOM + FITTED


class _Wrapped(Projection):
    """A user's object with ``project``, ``dim``, ``in_dim`` (and maybe ``blocks``) as a `Projection`."""

    def __init__(self, obj, dtype: torch.dtype, device):
        self.obj, self.dim, self.in_dim = obj, int(obj.dim), int(obj.in_dim)
        self.blocks = getattr(obj, "blocks", None)
        self.name = getattr(obj, "name", type(obj).__name__)
        self._dtype, self._device = dtype, device

    def project(self, V: torch.Tensor) -> torch.Tensor:
        return self.obj.project(V)

    def _ref(self) -> torch.Tensor:
        return torch.empty(0, dtype=self._dtype, device=self._device)


def as_projection(obj, flat: FlatModel, proj_dim: Optional[int] = None, layerwise: bool = False) -> Projection:
    """Check a projection object against the model (P, d, blocks, one probe row) and return it as a
    `Projection` (wrapped when it only has the documented interface)."""
    if not callable(getattr(obj, "project", None)) or not hasattr(obj, "dim") or not hasattr(obj, "in_dim"):
        raise TypeError(f"projection must be a kind's name {KINDS}, a Tensor [d, P] or an object with project(V), "
                        f"dim and in_dim; got {type(obj).__name__}")
    d, P = as_int(obj.dim, "projection.dim", 1), as_int(obj.in_dim, "projection.in_dim", 1)
    if P != flat.P:
        raise ValueError(f"the projection maps R^{P}, but the model has P = {flat.P} parameters: build it for this "
                         "model")
    if proj_dim is not None and as_int(proj_dim, "proj_dim", 1) != d:
        raise ValueError(f"proj_dim={proj_dim} disagrees with the projection's dim {d}: leave proj_dim=None when "
                         "passing a projection object")
    proj = obj if isinstance(obj, Projection) else _Wrapped(obj, flat.dtype, flat.device)
    probe = proj.project(torch.zeros(1, P, dtype=flat.dtype, device=flat.device))
    if not isinstance(probe, torch.Tensor) or tuple(probe.shape) != (1, d):
        got = tuple(probe.shape) if isinstance(probe, torch.Tensor) else type(probe).__name__
        raise ValueError(f"the projection's project(V [1, {P}]) returned {got}, not a Tensor [1, {d}] (= [.., dim])")
    if layerwise and proj.blocks is None:
        raise ValueError("layerwise=True needs a projection that keeps layers apart (its blocks are None): "
                         "use layerwise=False, or a layerwise projection ('gaussian', 'orthogonal', 'pca' with "
                         "layerwise=True, 'kronecker')")
    return proj


def build_projection(source: Union[Trajectory, FlatModel], proj_dim: Optional[int] = None,
                     projection: ProjectionLike = "gaussian", layerwise: bool = False, seed: int = 0,
                     samples: int = 256, step: int = 0, dtype: Optional[torch.dtype] = None,
                     device=None) -> Projection:
    """The projection R for a run (`Trajectory`) or a model (`FlatModel`; no fitted kinds) — see the
    module docstring. samples, step: the fitted kinds' training points and θ_step (`dve_teach.influence.pca`)."""
    if isinstance(source, Trajectory):
        traj, flat = source, source.flat
    elif isinstance(source, FlatModel):
        traj, flat = None, source
    else:
        raise TypeError(f"a projection is built for a dt.Trajectory (or a FlatModel), got {type(source).__name__}")
    dtype = dtype or flat.dtype
    device = torch.device(device) if device is not None else flat.device
    if isinstance(projection, torch.Tensor):
        return matrix_projection(flat, projection, proj_dim, layerwise, dtype, device)
    if not isinstance(projection, str):
        return as_projection(projection, flat, proj_dim, layerwise)
    if projection not in KINDS:
        raise ValueError(f"unknown projection {projection!r}: use one of {KINDS}, a Tensor [d, P] or a projection "
                         "object (dve_teach.influence.projection.Projection)")
    if proj_dim is None:
        if projection != "gaussian":
            raise ValueError(f"projection={projection!r} needs proj_dim (the projected dimension, e.g. "
                             "proj_dim=256); proj_dim=None means no projection")
        return IdentityProjection(flat)
    if isinstance(proj_dim, bool) or not isinstance(proj_dim, int) or proj_dim < 1:
        raise ValueError(f"proj_dim must be a positive int or None (no projection), got {proj_dim!r}")
    if proj_dim > flat.P:
        raise ValueError(f"proj_dim={proj_dim} is larger than the parameter count P={flat.P}: a projection cannot "
                         f"add dimensions; use proj_dim <= {flat.P}, or proj_dim=None for no projection")
    if projection in RANDOM:
        return random_projection(flat, proj_dim, projection, layerwise, seed, dtype, device)
    if traj is None:
        raise ValueError(f"projection={projection!r} is fitted to a run's gradients: build it from the Trajectory "
                         "(build_projection(traj, ...)), not from the model alone")
    if projection == "pca":
        return pca_projection(traj, proj_dim, samples, step, seed, layerwise)
    return kronecker_pca_projection(traj, proj_dim, samples, step, seed)
