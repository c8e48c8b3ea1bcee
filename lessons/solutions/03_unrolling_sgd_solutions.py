"""Solutions to the exercises of lesson 03 (unrolling SGD).

Load into the lesson with ``%load solutions/03_unrolling_sgd_solutions.py`` or run it alone:
``python lessons/solutions/03_unrolling_sgd_solutions.py``. It rebuilds the lesson's moons run.
"""
import numpy as np
import torch

import dve_teach as dt
from dve_teach import explain

torch.manual_seed(0)
torch.set_num_threads(1)
sized = dt.config.sized
split = dt.datasets.moons(n_train=sized(100, 60), n_test=sized(50, 30), seed=0)
model = dt.models.mlp((2, 16, 2), seed=0)
schedule = dt.Schedule.shuffled(len(split.train), batch_size=16, epochs=3, seed=0)
traj = dt.train(model, split.train, schedule, lr=0.5)

# ---- Exercise 1: renormalized removal -------------------------------------------------------
# Dividing the batch by |B_t| - 1 also scales the other members' gradients up by b / (b - 1), so
# for a full batch δ = η/(b-1) (g_i - ḡ): a point counts by how much it differs from its batch.
t = 0
idx, X, y = traj.batch(t)                      # a full batch (16 points)
G = traj.objective.per_sample_grads(traj.params(t), X, y)
i = int(idx[0])
expected = float(traj.lrs[t]) / (traj.batch_size - 1) * (G[0] - G.mean(0))
print("Ex. 1: renormalized δ = η/(b-1) (g_i - mean g):",
      torch.allclose(explain.removal_direction(traj, i, t, renormalize=True), expected))
points, steps = traj.schedule.occurrence_pairs()
for renormalize in (False, True):
    exact = dt.exact_loo(traj, split.test, points, steps, renormalize=renormalize, progress=False)
    estimate = dt.sgd_influence(traj, split.test, renormalize=renormalize).per_occurrence
    f = dt.metrics.fidelity(estimate, exact)
    print(f"  renormalize={renormalize!s:5}: spearman {f['spearman']:.3f}, sign agreement {f['sign_agreement']:.3f}, "
          f"mean |TSLOO| {exact.abs().mean():.2e}")
# Both are first-order accurate, but they answer different questions: the values and, for some
# points, the signs change, because a point that agrees with its batch's mean gradient now counts little.

# ---- Exercise 2: edge of stability ----------------------------------------------------------
# A factor I - η H_k shrinks a direction of curvature h when 0 < η h < 2 and amplifies it when
# η h > 2. With many such steps, small differences between the two runs grow instead of dying out,
# and the linearisation around the recorded run stops describing the counterfactual one.
for lr in (0.5, 3.0):
    run = dt.train(model, split.train, schedule, lr=lr)
    sharp = torch.stack([lr * torch.linalg.eigvalsh(explain.batch_hessian(run, k))[-1] for k in range(run.T)])
    print(f"Ex. 2: lr {lr}: η·λ_max(H_k) from {sharp.min():.2f} to {sharp.max():.2f}; "
          f"{int((sharp > 2).sum())} of {run.T} steps above 2")

# ---- Exercise 3: several occurrences in least squares -----------------------------------------
# No. Removing i again at its second step t2 means its gradient is missing at θ'_{t2}, not at θ_{t2}.
# SGD is affine here, so ∇ℓ_i(θ') = ∇ℓ_i(θ) + H_i Δ with Δ = θ'_{t2} - θ_{t2} (caused by the first
# removal) and H_i = ∇²ℓ_i (= 2 x̃ x̃ᵀ, x̃ = (x, 1)). The summed first-order estimate misses exactly
#     K_{t2} (η_{t2}/b) H_i Δ,
# a product of two removals (second order); for predictions nothing else is missing.
from dve_teach.influence.counterfactual import counterfactual_params

lsq = dt.datasets.linear_regression(n_train=sized(60, 40), n_test=10, dim=5, noise=0.1, seed=0)
run = dt.train(dt.models.linear(5, 1), lsq.train, dt.Schedule.shuffled(len(lsq.train), 8, epochs=2),
               lr=0.1, loss="mse")
def prediction(model, params, data):
    return torch.func.functional_call(model, params, (data.X,))[:, 0]
i = 0
t1, t2 = run.schedule.occurrences(i)
every = dt.exact_loo(run, lsq.test, [i], measure=prediction, progress=False)[0]
summed = dt.sgd_influence(run, lsq.test, measure=prediction).total()[i]
delta_t2 = counterfactual_params(run, i)[t2] - run.params(t2)          # Δ just before step t2
H_i = torch.func.hessian(lambda th: run.objective.losses(th, lsq.train.X[[i]], lsq.train.y[[i]])[0])(run.params(t2))
missing = explain.unrolled_product(run, t2) @ (float(run.lrs[t2]) / run.batch_size * H_i @ delta_t2)
U = run.objective.measure_grads(run.final, lsq.test, prediction)     # x̃_test, one row per test point
print(f"Ex. 3: point {i} (steps {t1}, {t2}): max |exact - summed| = {(every - summed).abs().max():.2e} "
      f"(max |exact| {every.abs().max():.2e})")
print("  the gap is exactly the cross term K_t2 (η/b) H_i Δ:", torch.allclose(every - summed, U @ missing, atol=1e-12))
