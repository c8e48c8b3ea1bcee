"""Solutions to the exercises of lesson 03 (unrolling SGD): the "Try it" exercises, then the
exercises at the end.

Run it inside the lesson, after the lesson's cells: ``%run -i solutions/03_unrolling_sgd_solutions.py``
(or ``%load`` it to read it first). It uses the lesson's objects (``traj``, ``split``, ``i``, ``t``,
``v``, ``traj_bad``, ``problem``, ``schedule``, ``prediction``, ...) and names everything it makes
``sol_…``, so the lesson's own variables stay as they were.
"""
import torch

import dve_teach as dt
from dve_teach import explain
from dve_teach.influence.counterfactual import counterfactual_params
from dve_teach.teach.exercises import lesson03 as ex

# ---- Try it: the removal direction by hand ------------------------------------------------------
# Leaving i out of step t removes its term (η_t/b) ∇ℓ(θ_t, z_i) from the update, and nothing else.
sol_theta = traj.params(t)
sol_g = traj.objective.per_sample_grads(sol_theta, split.train.X[[i]], split.train.y[[i]])[0]
sol_delta = float(traj.lrs[t]) / traj.batch_size * sol_g
print(ex.check_removal_direction(sol_delta, traj, i, t))

# ---- Try it: an HVP from two gradients ------------------------------------------------------------
# Central differences are accurate to O(ε²); in float64, ε = 1e-5 leaves ~1e-10 of truncation and
# ~1e-11 of rounding error. The exact HVP (forward over reverse mode) needs no ε at all.
_, sol_X, sol_y = traj.batch(t)
sol_grad = lambda theta: traj.objective.per_sample_grads(theta, sol_X, sol_y).sum(0) / traj.batch_size  # noqa: E731
sol_eps = 1e-5
sol_Hv = (sol_grad(sol_theta + sol_eps * v) - sol_grad(sol_theta - sol_eps * v)) / (2 * sol_eps)
print(ex.check_hvp(sol_Hv, traj, t, v))

# ---- Try it: find the worst estimate ----------------------------------------------------------------
# `error` of the lesson holds |estimate − exact| for every occurrence of the mislabelled run, in the
# order of its occurrence_pairs(). Whether the worst one is the mislabelled point depends on the run.
sol_pts, sol_sts = traj_bad.schedule.occurrence_pairs()
sol_worst = int(error.argmax())
print(f"worst: point {sol_pts[sol_worst]} at step {sol_sts[sol_worst]} (the mislabelled point is {flip})")
print(ex.check_largest_error((sol_pts[sol_worst], sol_sts[sol_worst]), traj_bad, split.test))

# ---- Exercise 1: renormalized removal -------------------------------------------------------
# Dividing the batch by |B_t| - 1 also scales the other members' gradients up by b / (b - 1), so
# for a full batch δ = η/(b-1) (g_i - ḡ): a point counts by how much it differs from its batch.
sol_t = 0
sol_idx, sol_X0, sol_y0 = traj.batch(sol_t)    # a full batch (16 points)
sol_G = traj.objective.per_sample_grads(traj.params(sol_t), sol_X0, sol_y0)
sol_i = int(sol_idx[0])
sol_expected = float(traj.lrs[sol_t]) / (traj.batch_size - 1) * (sol_G[0] - sol_G.mean(0))
print("Ex. 1: renormalized δ = η/(b-1) (g_i - mean g):",
      torch.allclose(explain.removal_direction(traj, sol_i, sol_t, renormalize=True), sol_expected))
sol_points, sol_steps = traj.schedule.occurrence_pairs()
for sol_renormalize in (False, True):
    sol_exact = dt.exact_loo(traj, split.test, sol_points, sol_steps, renormalize=sol_renormalize, progress=False)
    sol_estimate = dt.sgd_influence(traj, split.test, renormalize=sol_renormalize).per_occurrence
    sol_f = dt.metrics.fidelity(sol_estimate, sol_exact)
    print(f"  renormalize={sol_renormalize!s:5}: spearman {sol_f['spearman']:.3f}, "
          f"sign agreement {sol_f['sign_agreement']:.3f}, mean |TSLOO| {sol_exact.abs().mean():.2e}")
# Both are first-order accurate, but they answer different questions: the values and, for some
# points, the signs change, because a point that agrees with its batch's mean gradient now counts little.

# ---- Exercise 2: edge of stability ----------------------------------------------------------
# A factor I - η H_k shrinks a direction of curvature h when 0 < η h < 2 and amplifies it when
# η h > 2. With many such steps, small differences between the two runs grow instead of dying out,
# and the linearisation around the recorded run stops describing the counterfactual one.
for sol_lr in (0.5, 3.0):
    sol_run = dt.train(problem.model, split.train, schedule, lr=sol_lr)
    sol_sharp = torch.stack([sol_lr * torch.linalg.eigvalsh(explain.batch_hessian(sol_run, k))[-1]
                             for k in range(sol_run.T)])
    print(f"Ex. 2: lr {sol_lr}: η·λ_max(H_k) from {sol_sharp.min():.2f} to {sol_sharp.max():.2f}; "
          f"{int((sol_sharp > 2).sum())} of {sol_run.T} steps above 2")

# ---- Exercise 3: several occurrences in least squares -----------------------------------------
# No. Removing i again at its second step t2 means its gradient is missing at θ'_{t2}, not at θ_{t2}.
# SGD is affine here, so ∇ℓ_i(θ') = ∇ℓ_i(θ) + H_i Δ with Δ = θ'_{t2} - θ_{t2} (caused by the first
# removal) and H_i = ∇²ℓ_i (= 2 x̃ x̃ᵀ, x̃ = (x, 1)). The summed first-order estimate misses exactly
#     K_{t2} (η_{t2}/b) H_i Δ,
# a product of two removals (second order); for predictions nothing else is missing.
sol_i = 0
sol_t1, sol_t2 = traj_lsq.schedule.occurrences(sol_i)
sol_every = dt.exact_loo(traj_lsq, lsq.test, [sol_i], measure=prediction, progress=False)[0]
sol_summed = dt.sgd_influence(traj_lsq, lsq.test, measure=prediction).total()[sol_i]
sol_shift = counterfactual_params(traj_lsq, sol_i)[sol_t2] - traj_lsq.params(sol_t2)      # Δ just before step t2
sol_H_i = torch.func.hessian(lambda th: traj_lsq.objective.losses(th, lsq.train.X[[sol_i]], lsq.train.y[[sol_i]])[0])(
    traj_lsq.params(sol_t2))
sol_missing = explain.unrolled_product(traj_lsq, sol_t2) @ (
    float(traj_lsq.lrs[sol_t2]) / traj_lsq.batch_size * sol_H_i @ sol_shift)
sol_U = traj_lsq.objective.measure_grads(traj_lsq.final, lsq.test, prediction)   # x̃_test, one row per test point
print(f"Ex. 3: point {sol_i} (steps {sol_t1}, {sol_t2}): max |exact - summed| = "
      f"{(sol_every - sol_summed).abs().max():.2e} (max |exact| {sol_every.abs().max():.2e})")
print("  the gap is exactly the cross term K_t2 (η/b) H_i Δ:",
      torch.allclose(sol_every - sol_summed, sol_U @ sol_missing, atol=1e-12))
