"""The first-order (unrolled) estimate of trajectory-specific LOO by a reverse sweep, for every
update rule: `unrolled_influence`, and `sgd_influence` for plain SGD runs.

Paper §3.1, Eq. (1); Hara, Nitanda, Maehara, "Data Cleansing for Models Trained with SGD"
(NeurIPS 2019, "SGD-influence"). A step is s_{t+1} = F_t(s_t, g_t) (`dve_teach.training.optim`;
s = θ for plain SGD, (θ, buf) with momentum, (θ, m, v) for Adam). Removing point i at step t
changes s_{t+1} by δ_{i,t} (exact: both runs share s_t; `training.linearize.removal_deltas`), and
to first order the later steps carry that change through their Jacobians J_k = ∂s_{k+1}/∂s_k:

    TSLOO(i, t) ≈ [∇m(θ_T), 0]ᵀ J_{T−1} ··· J_{t+1} δ_{i,t}.

For plain SGD J_k = I − η_k (H_k + λI) and δ = (η_t/b) g_i, H_k the Hessian of (1/b) Σ_{j∈B_k} ℓ
(the nominal b, also for a short batch). The sweep never forms a Jacobian: it carries
U = [∇m(θ_T), 0] J_{T−1} ··· (rows = test points) backwards, U ← U J_k by a vjp of the rule plus one
exact Hessian-vector product per row (`training.linearize.step_vjp`; forward-over-reverse), so
the cost is one per-sample-gradient pass and one HVP pass per step for all test points at once.
For momentum and Adam U lives in state space (2P or 3P numbers per test point); Adam's J_k
includes how v (and so the step size of every coordinate) reacts to the gradient.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data.checks import as_flag
from ..data.container import DataLike
from ..data.progress import step_bar
from ..training.functional import Measure
from ..training.linearize import removal_deltas, step_vjp
from .scores import Influence
from ..training.trajectory import Trajectory

__all__ = ["unrolled_influence", "sgd_influence"]


def unrolled_influence(traj: Trajectory, test: DataLike, *, renormalize: bool = False,
                       measure: Optional[Measure] = None, progress: Optional[bool] = None) -> Influence:
    """First-order trajectory-specific LOO of every (point, step) occurrence, for any update rule:
    `Influence` with ``per_occurrence`` Tensor[n_occ, n_test], rows in ``schedule.occurrence_pairs()``
    order (module docstring).

    Reverse sweep, U: Tensor[n_test, S] (S = k·P, the optimizer state):

        U ← [∇m(θ_T, z_test), 0]                              (rows: test points)
        for t = T−1, ..., 0:
            G  = per-sample gradients of B_t at θ_t           Tensor[|B_t|, P]
            score(i, t) = δ_{i,t} · U                          (U before this step's update)
            U ← U J_t                                          (vjp of the rule + Hessian-vector products)

    δ_{i,t} = s'_{t+1} − s_{t+1}: the rule's step with the batch gradient without i (zero-weight,
    divisor b) or renormalized (``renormalize=True``: divisor m − 1) minus the recorded step.
    The score estimates ``m(θ'_T) − m(θ_T)`` (positive = helpful for the test loss); for plain SGD
    it equals `sgd_influence`. ``measure(model, params, data) -> Tensor[n]`` replaces the test loss.
    Summing a point's rows (``.total()``) is the first-order estimate of removing every occurrence.
    progress: a bar over the steps (`dve_teach.data.progress`; None: once the sweep has run ~2 s).
    """
    renormalize = as_flag(renormalize, "renormalize")
    data = traj.check_data(test)
    obj, b, rule = traj.objective, traj.batch_size, traj.optimizer
    theta_T = traj.final
    Ut = obj.measure_grads(theta_T, data, measure)
    U = torch.zeros(Ut.shape[0], traj.checkpoints[0].shape[0], dtype=Ut.dtype, device=Ut.device)
    U[:, :Ut.shape[1]] = Ut
    scores: list[Optional[torch.Tensor]] = [None] * traj.T
    for t, s in step_bar(traj.iter_states(reverse=True), traj.T, "first-order sweep", progress):
        _, X, y = traj.batch(t)
        lr = float(traj.lrs[t])
        G = obj.per_sample_grads(rule.theta(s), X, y)
        try:
            delta = removal_deltas(rule, s, G, lr, t, b, renormalize)
        except ValueError as e:
            raise ValueError(f"step {t}: {e}") from e
        scores[t] = delta @ U.T
        if t > 0 and U.shape[0]:  # an empty test set has nothing to carry back
            U = step_vjp(obj, rule, s, X, y, lr, t, b, U)
    per_occurrence = torch.cat(scores, 0).detach()
    points, steps = traj.schedule.occurrence_pairs()
    name = "unrolled" if not rule.plain_sgd else "sgd_influence"
    return Influence(per_occurrence, points, steps, traj.schedule.n,
                     method=name + ("_renormalized" if renormalize else ""), lrs=traj.lrs)


def sgd_influence(traj: Trajectory, test: DataLike, *, renormalize: bool = False,
                  measure: Optional[Measure] = None, progress: Optional[bool] = None) -> Influence:
    """SGD-influence (Hara et al. 2019): `unrolled_influence` of a plain SGD run, whose sweep is

        score(i, t) = δ_{i,t} · U,   U ← U − η_t (H_t U + λ U),   δ_{i,t} = (η_t/b) g_i

    (renormalized: δ = η_t [g_i/(m−1) − S (1/(m−1) − 1/b)], S = Σ_{j∈B_t} g_j, which for a full batch
    is (η_t/(b−1)) (g_i − ḡ): removing i also rescales the other gradients of its batch).
    A run of another rule is refused: call `dt.unrolled_influence` for momentum and Adam runs.
    """
    traj.require_sgd("sgd_influence", "dt.unrolled_influence(traj, test), the same sweep through the "
                     "optimizer's whole state")
    return unrolled_influence(traj, test, renormalize=renormalize, measure=measure, progress=progress)
