"""`sgd_influence`: the first-order (unrolled) estimate of trajectory-specific LOO by a reverse sweep.

Paper §3.1, Eq. (1); Hara, Nitanda, Maehara, "Data Cleansing for Models Trained with SGD"
(NeurIPS 2019, "SGD-influence"). With the update of DEVELOPERS.md ("The maths")

    θ_{t+1} = θ_t − η_t ((1/b) Σ_{j∈B_t} w_j ∇ℓ(θ_t, z_j) + λ θ_t),

removing point i at step t moves θ_{t+1} by δ_{i,t} (exact, both runs share θ_t), and to first
order the later steps carry that change through their Jacobians I − η_k (H_k + λI):

    TSLOO(i, t) ≈ ∇m(θ_T)ᵀ K_t δ_{i,t},   K_t = (I − η_{T−1}(H_{T−1} + λI)) ··· (I − η_{t+1}(H_{t+1} + λI)),

H_k the Hessian of (1/b) Σ_{j∈B_k} ℓ (the nominal b, also for a short batch). The sweep never
forms K_t: it carries U = ∇m(θ_T) Π (rows = test points) backwards with exact Hessian-vector
products (forward-over-reverse, ``Objective.hvp``), so the cost is one per-sample-gradient pass
and one HVP pass per step for all test points at once.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data.checks import as_flag
from ..data.container import DataLike
from ..training.functional import Measure
from .scores import Influence
from ..training.trajectory import Trajectory, removal_directions

__all__ = ["sgd_influence"]


def _test_gradients(traj: Trajectory, theta: torch.Tensor, data, measure: Optional[Measure]) -> torch.Tensor:
    """∇_θ m(θ, z_j) for every test point, Tensor[n_test, P], with a clear error on a bad measure."""
    U = traj.objective.measure_grads(theta, data, measure)
    if U.shape != (len(data), traj.flat.P):
        raise ValueError(f"the measure must return one value per test point (Tensor[{len(data)}]); its "
                         f"gradient has shape {tuple(U.shape)} instead of [{len(data)}, {traj.flat.P}]")
    return U.detach()


def sgd_influence(traj: Trajectory, test: DataLike, *, renormalize: bool = False,
                  measure: Optional[Measure] = None) -> Influence:
    """First-order trajectory-specific LOO of every (point, step) occurrence: `Influence`
    with ``per_occurrence`` Tensor[n_occ, n_test], rows in ``schedule.occurrence_pairs()`` order.

    Reverse sweep (Hara et al. 2019; paper §3.1 Eq. (1)), U: Tensor[n_test, P]:

        U ← ∇m(θ_T, z_test)                                   (rows: test points)
        for t = T−1, ..., 0:
            G  = per-sample gradients of B_t at θ_t           Tensor[|B_t|, P]
            score(i, t) = δ_{i,t} · U                          (U before this step's update)
            U ← U − η_t (H_t U + λ U)                          (Uᵀ ← (I − η_t(H_t + λI)) Uᵀ)

    δ_{i,t} = θ'_{t+1} − θ_{t+1} (`removal_directions`):
      - zero-weight (default, divisor stays b):  δ = (η_t/b) g_i;
      - ``renormalize=True`` (the run without i divides its batch by m − 1, m = |B_t|):
        δ = η_t [g_i/(m−1) − S (1/(m−1) − 1/b)],  S = Σ_{j∈B_t} g_j. Removing i also rescales the
        other gradients of its batch, so for a full batch (m = b) this is (η_t/(b−1)) (g_i − ḡ):
        the point's value is measured against its batch mean. Later steps are unchanged.

    The score estimates ``m(θ'_T) − m(θ_T)`` (positive = helpful for the test loss); it is exact
    when SGD is linear in θ (least squares) and m is linear in θ (a prediction).
    ``measure(model, params, data) -> Tensor[n]`` replaces the per-example test loss.
    Summing a point's rows (``.total()``) is the first-order estimate of removing every occurrence.
    """
    traj.require_sgd("sgd_influence")
    renormalize = as_flag(renormalize, "renormalize")
    data = traj.check_data(test)
    obj, b, lam = traj.objective, traj.batch_size, traj.weight_decay
    U = _test_gradients(traj, traj.final, data, measure)
    scores: list[Optional[torch.Tensor]] = [None] * traj.T
    for t, theta in traj.iter_params(reverse=True):
        _, X, y = traj.batch(t)
        lr = float(traj.lrs[t])
        G = obj.per_sample_grads(theta, X, y)
        try:
            delta = removal_directions(G, lr, b, renormalize)
        except ValueError as e:
            raise ValueError(f"step {t}: {e}") from e
        scores[t] = delta @ U.T
        if t > 0 and U.shape[0]:  # an empty test set has nothing to carry back
            U = U - lr * (obj.hvp(theta, X, y, b, U) + lam * U)
    per_occurrence = torch.cat(scores, 0).detach()
    points, steps = traj.schedule.occurrence_pairs()
    return Influence(per_occurrence, points, steps, traj.schedule.n,
                     method="sgd_influence" + ("_renormalized" if renormalize else ""))
