"""Baselines for trajectory-specific LOO: TracIn, the plain gradient dot product (K = I) and the
influence function of Koh & Liang (2017) at θ_T.

All share the sign and scale of TSLOO (DEVELOPERS.md, "The maths"): a score estimates
``m(θ'_T) − m(θ_T)`` for the run without the point, so positive = helpful for the test loss,
and an occurrence at step t carries the step's own scale η_t/b (zero-weight removal).
Paper §2 (IF), §5 (baselines); Pruthi et al. 2020 (TracIn).

They keep these definitions on a run of any update rule, and then ignore what the rule does: momentum
carries a gradient on into later steps (its total step is about η/(1 − μ), not η), Adam and AdamW
divide each coordinate by √v̂ + ε (at the first step the update is nearly η·sign(g)), and AdamW's
decay is decoupled. `dt.unrolled_influence` and `DataValueEmbedding(optimizer="recorded")` follow
the rule itself.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch.func import grad, jacrev

from ..data.checks import as_int, as_number
from ..data.container import DataLike
from ..training.functional import Measure, no_second_derivatives
from .scores import Influence
from ..training.trajectory import Trajectory

__all__ = ["tracin", "grad_dot", "influence_function", "damping_rule"]


def _per_step(traj: Trajectory, test: DataLike, measure: Optional[Measure], at_each_step: bool,
              method: str) -> Influence:
    data = traj.check_data(test)
    obj, b = traj.objective, traj.batch_size
    U = None if at_each_step else obj.measure_grads(traj.final, data, measure)
    rows = []
    for t, theta in traj.iter_params():
        _, X, y = traj.batch(t)
        Ut = obj.measure_grads(theta, data, measure) if at_each_step else U
        rows.append((float(traj.lrs[t]) / b) * (obj.per_sample_grads(theta, X, y) @ Ut.T))
    points, steps = traj.schedule.occurrence_pairs()
    return Influence(torch.cat(rows, 0).detach(), points, steps, traj.schedule.n, method=method, lrs=traj.lrs)


def tracin(traj: Trajectory, test: DataLike, measure: Optional[Measure] = None) -> Influence:
    """TracIn (Pruthi et al. 2020) on the recorded run, one row per occurrence:

        score(i, t) = (η_t/b) ∇m(θ_t, z_test) · ∇ℓ(θ_t, z_i)

    — the test gradient at the checkpoint θ_t of the same step (exact checkpoints, every step).
    ``per_occurrence`` Tensor[n_occ, n_test] in ``schedule.occurrence_pairs()`` order.
    """
    return _per_step(traj, test, measure, True, "tracin")


def grad_dot(traj: Trajectory, test: DataLike, measure: Optional[Measure] = None) -> Influence:
    """Gradient dot product with the final test gradient (Eq. (1) of the paper with K_t = I):

        score(i, t) = (η_t/b) ∇m(θ_T, z_test) · ∇ℓ(θ_t, z_i)

    It ignores how later steps transport the change (no Hessians, no weight decay shrinkage).
    ``per_occurrence`` Tensor[n_occ, n_test] in ``schedule.occurrence_pairs()`` order.
    """
    return _per_step(traj, test, measure, False, "grad_dot")


def _chunks(n: int, size: int):
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def damping_rule(lam_min: float) -> float:
    """The lessons' damping rule (lesson 01): μ = 2 |λ_min| when the Hessian has a negative
    eigenvalue λ_min (so H + μI is positive definite with margin), else 1e-3."""
    return 2.0 * abs(lam_min) if lam_min < 0 else 1e-3


def _smallest_eigenvalue(apply, P: int, dtype, device) -> float:
    """λ_min of the symmetric operator `apply` (rows W [k, P] -> W H) by Lanczos (scipy's eigsh)."""
    import numpy as np
    from scipy.sparse.linalg import LinearOperator, eigsh

    def matvec(v):
        w = torch.as_tensor(np.asarray(v).reshape(1, -1), dtype=dtype, device=device)
        return apply(w).reshape(-1).detach().cpu().numpy()
    op = LinearOperator((P, P), matvec=matvec, dtype=np.float64)
    return float(eigsh(op, k=1, which="SA", tol=1e-6, return_eigenvectors=False)[0])


def influence_function(traj: Trajectory, test: DataLike, damping=1e-3,
                       measure: Optional[Measure] = None, solver: str = "auto", *,
                       tol: float = 1e-10, max_iter: Optional[int] = None,
                       chunk_size: int = 256, return_damping: bool = False):
    """Influence function at θ_T (Koh & Liang 2017; paper §2): Tensor[n_train, n_test].

    The training objective is the mean L(θ) = (1/n) Σ_{j<n} ℓ(θ, z_j) + (λ/2)‖θ‖² over all n
    training points (also those the schedule never visits), with Hessian
    H = (1/n) Σ_j ∇²ℓ(θ_T, z_j) + λI. Removing point i from L moves its minimiser by
    ≈ (1/n) H⁻¹ ∇ℓ(θ_T, z_i), so

        IF(i, z_test) = (1/n) ∇m(θ_T, z_test)ᵀ (H + damping·I)⁻¹ ∇ℓ(θ_T, z_i).

    Scale: the 1/n is that of removing i from the *mean* objective. It matches TSLOO of every
    occurrence when SGD has converged (the expected zero-weight update without i is the
    gradient of L − (1/n)ℓ_i), whereas per-occurrence scores carry η_t/b. Sign: positive = helpful.
    λ is the run's weight decay taken as an L2 term, which is what it is for SGD and Adam; for
    AdamW's decoupled decay it is only an approximation. Training order and optimizer state are
    invisible to it by construction.

    damping: a number >= 0 (default 1e-3), or ``"auto"``: the lessons' rule `damping_rule`,
    2 |λ_min(H)| when H has a negative eigenvalue (common for a non-convex model away from a
    minimum), else 1e-3 — λ_min from the dense H (exact solver) or by Lanczos with Hessian-vector
    products (cg).
    solver: ``"exact"`` forms H with ``jacrev(grad(...))`` (summed over data chunks) and solves
    densely — it warns (does not fail) when H + damping·I is not positive definite; ``"cg"`` runs conjugate gradient with
    Hessian-vector products (chunked over the data), one system per test point, to relative
    residual `tol` in at most `max_iter` (default min(P, 1000)) iterations, warning on negative
    curvature or no convergence; ``"auto"`` uses exact for P ≤ 3000.
    return_damping: also return the damping used (the number ``"auto"`` chose): ``(scores, damping)``.
    """
    if not isinstance(solver, str) or solver not in ("auto", "exact", "cg"):
        raise ValueError(f"unknown solver {solver!r}: use 'auto', 'exact' or 'cg'")
    auto = isinstance(damping, str) and damping == "auto"
    if not auto:
        if isinstance(damping, str):
            raise ValueError(f"damping must be a number >= 0 or 'auto' (the lessons' rule), got {damping!r}")
        damping = as_number(damping, "damping")
        if not math.isfinite(damping) or damping < 0:
            raise ValueError(f"damping must be a finite number >= 0 or 'auto', got {damping}")
    chunk_size = as_int(chunk_size, "chunk_size", 1)
    tol = as_number(tol, "tol")
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0 (a relative residual such as 1e-10), got {tol}")
    if max_iter is not None:
        max_iter = as_int(max_iter, "max_iter", 1)
    if len(traj.stages) > 1:
        raise NotImplementedError("influence_function removes a point from one training objective at θ_T; this run has "
                                  f"{len(traj.stages)} stages with their own data and optimizers: use "
                                  "dt.unrolled_influence, DataValueEmbedding or exact_loo, which follow the stages")
    data = traj.check_data(test)
    obj, theta, P = traj.objective, traj.final, traj.flat.P
    Xtr, ytr = traj.data.X, traj.data.y
    n, lam = len(Xtr), traj.weight_decay
    if solver == "auto":
        solver = "exact" if P <= 3000 else "cg"
    U = obj.measure_grads(theta, data, measure)  # [n_test, P]
    parts = _chunks(n, int(chunk_size))

    if solver == "exact":
        H = torch.zeros(P, P, dtype=theta.dtype, device=theta.device)
        # forward-over-reverse vmaps P tangents over the chunk: keep rows × P bounded
        for s in _chunks(n, max(1, min(int(chunk_size), 2 ** 19 // P))):
            try:
                # jacrev(grad), not torch.func.hessian: in torch 2.13 hessian (jacfwd∘jacrev) of a model
                # with nn.LayerNorm after a parameterised layer is wrong (asymmetric); jacrev(grad) is not
                H += jacrev(grad(lambda th: obj.losses(th, Xtr[s], ytr[s]).sum() / n))(theta)
            except (NotImplementedError, RuntimeError) as e:
                raise no_second_derivatives(e) from e
        if auto:
            damping = damping_rule(float(torch.linalg.eigvalsh((H + H.T) / 2)[0]) + lam)
        A = H + (lam + damping) * torch.eye(P, dtype=theta.dtype, device=theta.device)
        A = (A + A.T) / 2
        if not bool(torch.isfinite(A).all()):
            raise ValueError(f"H + damping·I is not finite (damping = {damping:g}): use a damping of the "
                             "order of the Hessian's eigenvalues (e.g. 1e-3 to 10)")
        try:
            evals = torch.linalg.eigvalsh(A)
        except torch.linalg.LinAlgError as e:
            raise ValueError(f"H + damping·I cannot be decomposed ({e}); damping = {damping:g} is out of scale "
                             "with the Hessian: use a damping of the order of its eigenvalues (e.g. 1e-3 to 10)") from e
        if float(evals[0]) <= 0:
            warnings.warn(f"H + damping·I is not positive definite at θ_T (smallest eigenvalue "
                          f"{float(evals[0]):.3g}); the influence function is unreliable here: raise "
                          "damping above the magnitude of the negative eigenvalue, or pass damping='auto'",
                          RuntimeWarning,
                          stacklevel=2)
        try:
            V = torch.linalg.solve(A, U.T).T  # [n_test, P] = rows (H + δI)⁻¹ ∇m
        except torch.linalg.LinAlgError as e:
            raise ValueError(f"H + damping·I is singular at θ_T (damping = {damping:g}; a parameter the loss does "
                             "not use has an all-zero row): use damping > 0 (e.g. 1e-3 to 10)") from e
    else:
        def hessian_rows(W: torch.Tensor) -> torch.Tensor:
            out = lam * W
            for s in parts:
                out = out + obj.hvp(theta, Xtr[s], ytr[s], n, W)
            return out
        if auto:
            damping = damping_rule(_smallest_eigenvalue(hessian_rows, P, theta.dtype, theta.device))

        def apply(W: torch.Tensor) -> torch.Tensor:
            return hessian_rows(W) + damping * W
        V = _cg(apply, U, tol, max_iter if max_iter is not None else min(P, 1000))

    out = torch.empty(n, len(data), dtype=theta.dtype, device=theta.device)
    for s in parts:
        out[s] = obj.per_sample_grads(theta, Xtr[s], ytr[s]) @ V.T / n
    if return_damping:
        return out.detach(), float(damping)
    return out.detach()


def _cg(apply, B: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """Solve A x_r = b_r for every row of B [k, P] by conjugate gradient (A symmetric, applied to rows)."""
    X = torch.zeros_like(B)
    R = B.clone()
    Pd = R.clone()
    rs = (R * R).sum(1)
    target = (tol * B.norm(dim=1)) ** 2
    done = rs <= target
    negative = False
    for _ in range(max_iter):
        if bool(done.all()):
            break
        AP = apply(Pd)
        curv = (Pd * AP).sum(1)
        if bool((curv[~done] <= 0).any()):
            negative = True
        alpha = torch.where(done | (curv == 0), torch.zeros_like(rs), rs / curv)
        X = X + alpha[:, None] * Pd
        R = R - alpha[:, None] * AP
        rs_new = (R * R).sum(1)
        beta = torch.where(done, torch.zeros_like(rs), rs_new / rs.clamp_min(torch.finfo(rs.dtype).tiny))
        Pd = R + beta[:, None] * Pd
        rs = rs_new
        done = done | (rs <= target)
    if negative:
        warnings.warn("conjugate gradient met negative curvature: H + damping·I is not positive definite "
                      "at θ_T; raise damping", RuntimeWarning, stacklevel=3)
    elif not bool(done.all()):
        warnings.warn(f"conjugate gradient did not reach relative residual {tol:g} in {max_iter} "
                      "iterations; raise max_iter or damping", RuntimeWarning, stacklevel=3)
    return X
