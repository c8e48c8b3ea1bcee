# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# init_cell: true
# export_cell: false
# check_all_cell: false
# run_tests: false
# strip_solutions_from_all_cells: true
# tests:
#     ok_format: false

# %% [markdown]
# # 03 · Unrolling SGD: leave-one-out to first order
#
# Lesson 02 answered "what if point $i$ had not been in step $t$'s batch?" by replaying training:
# exact, but one full replay per question. This lesson derives the **first-order answer** that needs
# no replay at all, and finds out when it can be trusted.
#
# ## Goals
#
# After this lesson (about 25 minutes) you can
#
# 1. derive the first-order expansion of trajectory-specific LOO and the product $\prod_k (I-\eta_k H_k)$ in it;
# 2. compute Hessian-vector products without ever forming a Hessian;
# 3. explain the **reverse sweep** (SGD-influence, Hara et al. 2019) that scores every training point with one backward pass;
# 4. say where the first-order answer breaks — large learning rates and outliers — and where it is
#    exact (linear least squares, for predictions).
#
# Paper: Wang et al., ICLR 2025, §3.1 (Eq. 1); Hara, Nitanda & Maehara, NeurIPS 2019.
#
# Sections: the question and the widget (≈ 4 min) · 1. the first-order expansion (≈ 4 min) · 2. the
# product, made explicit (≈ 3 min) · 3. Hessian-vector products (≈ 3 min) · 4. the reverse sweep
# (≈ 4 min) · 5. where it breaks (≈ 5 min) · 6. where it is exact (≈ 2 min).
#
# Notation as in [lesson 00's box](00_start_here.ipynb): $\mathrm{TSLOO}(i, t)$ is lesson 00's
# $\mathrm{TSLOO}^{(t)}(z_i; z)$ (0.1) — point $z_i$ removed at step $t$ only, positive = helped — with a
# measure $m$ of the final model in place of the test loss $\ell(\cdot, z)$; $\delta_{i,t}$ is the kick
# and $K_t$ the product of the box. Equations are numbered (3.k).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import numpy as np
import torch

import dve_teach as dt
from dve_teach import explain, plots
from dve_teach.influence.counterfactual import counterfactual_params, divergences
from dve_teach.teach.exercises import lesson03 as ex
from dve_teach.widgets import LearningRateExplorer, Problem

SEED = dt.config.seed()          # DVE_TEACH_SEED (default 0): every seed below is SEED + k
torch.manual_seed(SEED)
np.random.seed(SEED)
torch.set_num_threads(1)         # tiny models: extra threads only add overhead
sized = dt.config.sized          # sized(full, fast): smaller problems when DVE_TEACH_FAST=1
print("dve_teach", dt.__version__, "| fast mode:", dt.config.fast_mode())

# %% [markdown]
# ## The question, and a widget to answer it (≈ 4 min)
#
# A small tanh network on 2-D moons, trained with SGD. We remove each of 40 training points (20 in fast
# mode) at every step where it appears, replay exactly, and compare the change in mean test loss with
# the first-order estimate this lesson derives (SGD-influence). Below: the estimate against the truth at
# learning rate 0.5 (dashed: $y = x$; the title gives the rank correlation, Spearman).
#
# **Predict, then check.** How will the agreement change with the learning rate, from 0.05 to 3.0? Where
# on the slider will the dots lie on the line $y = x$ — and does the agreement get worse with every
# step up in learning rate? Write your guess down, then try rates in the widget: it retrains when you
# release the slider (about a second), shows the scatter at that rate (left) and the Spearman of every
# rate you have tried (right). Section 5 gives the answer for this run, and what holds for every run.

# %%
split = dt.datasets.moons(n_train=sized(100, 60), n_test=sized(50, 30), seed=SEED)
problem = Problem(dt.models.mlp((2, 16, 2), seed=SEED + 1), split.train, split.test,
                  lr=0.5, batch_size=16, epochs=3, seed=SEED + 2)   # seed: of its shuffled order
explorer = LearningRateExplorer(problem)       # this lesson's widget
lr_model = explorer.model                      # its model: learning rate -> exact vs estimate (cached)
lr_model.figure(rates=False)                   # the widget's left panel at lr 0.5

# %% tags=["widget"]
explorer

# %% [markdown]
# ## 1. The first-order expansion (≈ 4 min)
#
# Training runs $\theta_{t+1} = \theta_t - \eta_t\big(\tfrac1b\sum_{j\in B_t} w_j\,\nabla\ell(\theta_t, z_j) + \lambda\theta_t\big)$
# with every $w_j = 1$ (batch size $b$, learning rate $\eta_t$, weight decay $\lambda$).
# Removing point $i$ at step $t$ sets $w_i = 0$ there. Both runs stand at the same $\theta_t$, so right
# after the removal they differ by exactly
#
# $$\delta_{i,t} = \theta'_{t+1} - \theta_{t+1} = \frac{\eta_t}{b}\,\nabla\ell(\theta_t, z_i). \tag{3.1}$$
#
# Every later step applies the *same* map $\phi_k(\theta) = \theta - \eta_k(\nabla L_k(\theta) + \lambda\theta)$
# to both runs ($L_k$ is step $k$'s batch loss). A small difference $\Delta$ goes through it as
#
# $$\phi_k(\theta_k + \Delta) - \phi_k(\theta_k) = \big(I - \eta_k(H_k + \lambda I)\big)\Delta + O(\|\Delta\|^2),
# \qquad H_k = \nabla^2 L_k(\theta_k). \tag{3.2}$$
#
# Dropping the $O(\|\Delta\|^2)$ terms at every step and chaining to the end:
#
# $$\theta'_T - \theta_T \approx K_t\,\delta_{i,t}, \qquad
# K_t = \big(I - \eta_{T-1}(H_{T-1} + \lambda I)\big)\cdots\big(I - \eta_{t+1}(H_{t+1} + \lambda I)\big), \tag{3.3}$$
#
# with **later steps on the left** (the $H_k$ do not commute, so the order matters). One more
# first-order step for the test loss $m$:
#
# $$\mathrm{TSLOO}(i, t) = m(\theta'_T) - m(\theta_T) \approx \nabla m(\theta_T)^\top K_t\,\delta_{i,t}. \tag{3.4}$$
#
# (3.4) is Eq. (1) of the paper (§3.1), which credits it to Hara et al. (2019). The paper writes SGD
# with a *sum* over the batch, so its step size is our $\eta_t / b$.

# %%
schedule = dt.Schedule.shuffled(len(split.train), batch_size=16, epochs=3, seed=SEED + 2)   # the widget's order
traj = dt.train(problem.model, split.train, schedule, lr=0.5)
traj

# %% [markdown]
# ## 2. The product, made explicit (≈ 3 min)
#
# This network has only $P = 82$ parameters, so we can afford to build every $H_k$ and multiply the
# $P\times P$ matrices. `dt.explain` does exactly (3.1) and (3.3); `counterfactual_params` is the
# exact replay of lesson 02.

# %%
t = 2                                             # the removal step
i = traj.schedule.batches[t][0]                   # a point in that step's batch
delta = explain.removal_direction(traj, i, t)     # δ_{i,t} = (η_t / b) ∇ℓ(θ_t, z_i), exact
K = explain.unrolled_product(traj, t)             # K_t: T − t − 1 explicit Hessians, P × P
moved = counterfactual_params(traj, i, t)[-1] - traj.final      # exact θ'_T − θ_T (replay)
print(f"point {i} removed at step {t}; {traj.T - t - 1} later steps; K_t is {K.shape[0]} x {K.shape[1]}")
print(f"|δ| = {delta.norm():.2e}, |θ'_T − θ_T| = {moved.norm():.2e}, "
      f"relative error of K_t δ: {(K @ delta - moved).norm() / moved.norm():.1%}")

# %% tags=["nbval-check-output"]
print("K_t δ is within 20% of the true change, but not on it (error above 0.1%):",
      0.001 < float((K @ delta - moved).norm() / moved.norm()) < 0.2)
print("|θ'_T − θ_T| is smaller than |δ|:", bool(moved.norm() < delta.norm()))

# %% [markdown]
# $K_t\delta_{i,t}$ lands close to the true change, not on it: the dropped second-order terms add up.
# Notice also that $\|\theta'_T - \theta_T\|$ is *smaller* than $\|\delta\|$: at this learning
# rate the factors $I - \eta_k H_k$ shrink directions of positive curvature, so later training partly
# repairs the removal.
#
# ### Try it: the removal direction by hand
#
# Compute $\delta_{i,t}$ for the point `i` and step `t` above yourself, from (3.1).
# Useful: `traj.params(t)` is $\theta_t$; `traj.objective.per_sample_grads(theta, X, y)` gives one
# gradient row per example (take `X = split.train.X[[i]]`, `y = split.train.y[[i]]`); `traj.lrs[t]` is
# $\eta_t$ and `traj.batch_size` is $b$. Write it as a function of the run first,
# `removal_kick(run, point, step)`, with `run.data.X[[point]]` and `run.data.y[[point]]` for the point's
# input and label in the run's own data (the graded version also tries it on other points, steps and runs).

# %% [raw]
# # BEGIN QUESTION
# name: l03_removal_direction
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def removal_kick(run, point, step): ... ; then my_delta = Tensor [P], (η_t / b) times the gradient of point i's loss at θ_t
# BEGIN SOLUTION NO PROMPT
def removal_kick(run, point, step):
    """(3.1): leaving `point` out of step `step` removes (η_t/b) ∇ℓ(θ_t, z_i) from the update, nothing else."""
    X_i, y_i = run.data.X[[point]], run.data.y[[point]]
    g_i = run.objective.per_sample_grads(run.params(step), X_i, y_i)[0]
    return float(run.lrs[step]) / run.batch_size * g_i



# END SOLUTION
my_delta = removal_kick(traj, i, t)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_removal_direction(my_delta, traj, i, t)

# %% [raw]
# # BEGIN TESTS

# %%
def test_removal_direction_of_i_at_t(my_delta, traj, i, t):
    from dve_teach.teach.exercises import lesson03 as ex
    feedback = ex.check_removal_direction(my_delta, traj, i, t)
    assert feedback, str(feedback)
test_removal_direction_of_i_at_t(my_delta, traj, i, t)

# %%
# HIDDEN
def test_removal_kick_on_other_points_and_runs(removal_kick, traj):
    import dve_teach as dt
    from dve_teach.teach.exercises import lesson03 as ex
    pts, sts = traj.schedule.occurrence_pairs()
    cases = [(traj, pts[k], sts[k]) for k in (0, len(pts) // 2, len(pts) - 1)]
    flipped = traj.schedule.batches[1][0]                      # another run: one label flipped, another step size
    y_other = traj.data.y.clone()
    y_other[flipped] = 1 - y_other[flipped]
    other = dt.train(traj.model, dt.Data(traj.data.X, y_other), traj.schedule, lr=0.3)
    cases += [(other, flipped, s) for s in other.schedule.occurrences(flipped)]
    for run, point, step in cases:
        feedback = ex.check_removal_direction(removal_kick(run, point, step), run, point, step)
        assert feedback, f"removal_kick for point {point} at step {step}: {feedback}"
test_removal_kick_on_other_points_and_runs(removal_kick, traj)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Building $K_t$ costs $P^2$ numbers and $T$ Hessians. For a network with millions of parameters that
# is impossible. The way out: never form $H$, only multiply by it.
#
# ## 3. Hessian-vector products (≈ 3 min)
#
# $$H v = \frac{d}{d\varepsilon}\,\nabla L(\theta + \varepsilon v)\Big|_{\varepsilon = 0} \tag{3.5}$$
#
# is the derivative of the gradient along $v$: forward mode over reverse mode (`torch.func.jvp` of
# `torch.func.grad`). It costs about two gradient evaluations and $O(P)$ memory. A tiny check against
# the explicit Hessian:

# %% tags=["nbval-check-output"]
_, X, y = traj.batch(t)
H = explain.batch_hessian(traj, t)                                          # explicit, P × P
v = torch.randn(traj.flat.P, dtype=torch.float64, generator=torch.Generator().manual_seed(SEED + 3))
Hv = traj.objective.hvp(traj.params(t), X, y, traj.batch_size, v[None])[0]  # never forms H
print("HVP equals the explicit Hessian times v:", torch.allclose(Hv, H @ v, rtol=1e-10, atol=1e-12))
print(f"explicit H: {H.numel():,} numbers; the HVP: {Hv.numel()} numbers")

# %% [markdown]
# ### Try it: an HVP from two gradients
#
# Before automatic differentiation, $Hv$ was computed by **finite differences** of the gradient:
# $Hv \approx \big(\nabla L(\theta + \varepsilon v) - \nabla L(\theta - \varepsilon v)\big) / 2\varepsilon$.
# Compute it for step `t`'s batch loss $L_t = \frac1b\sum_{j\in B_t}\ell(\theta, z_j)$ at $\theta_t$ and
# the `v` above. The batch gradient is `traj.objective.per_sample_grads(theta, X, y).sum(0) / traj.batch_size`.
# Write it as a function first, `hvp_by_differences(run, step, vec)` (the graded version also tries it on
# other steps, vectors and runs).

# %% [raw]
# # BEGIN QUESTION
# name: l03_hvp
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def hvp_by_differences(run, step, vec): ... ; then my_Hv = Tensor [P], (∇L_t(θ_t + εv) − ∇L_t(θ_t − εv)) / 2ε
# BEGIN SOLUTION NO PROMPT
def hvp_by_differences(run, step, vec, eps=1e-5):
    """Central differences of the batch gradient: accurate to O(ε²); in float64, ε = 1e-5 leaves
    ~1e-10 of truncation and ~1e-11 of rounding error. The exact HVP (forward over reverse) needs no ε."""
    _, X_b, y_b = run.batch(step)
    theta_b = run.params(step)

    def batch_gradient(theta):
        return run.objective.per_sample_grads(theta, X_b, y_b).sum(0) / run.batch_size

    return (batch_gradient(theta_b + eps * vec) - batch_gradient(theta_b - eps * vec)) / (2 * eps)



# END SOLUTION
my_Hv = hvp_by_differences(traj, t, v)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_hvp(my_Hv, traj, t, v)

# %% [raw]
# # BEGIN TESTS

# %%
def test_hvp_at_t_along_v(my_Hv, traj, t, v):
    from dve_teach.teach.exercises import lesson03 as ex
    feedback = ex.check_hvp(my_Hv, traj, t, v)
    assert feedback, str(feedback)
test_hvp_at_t_along_v(my_Hv, traj, t, v)

# %%
# HIDDEN
def test_hvp_by_differences_on_other_steps_and_vectors(hvp_by_differences, traj):
    import torch
    import dve_teach as dt
    from dve_teach.teach.exercises import lesson03 as ex
    gen = torch.Generator().manual_seed(2026)
    other = dt.train(traj.model, traj.data, traj.schedule, lr=0.3)      # another run: another step size
    for run, step in [(traj, 0), (traj, traj.T - 1), (other, other.T // 2)]:
        for scale in (1e-2, 1.0, 10.0):
            w = torch.randn(run.flat.P, dtype=torch.float64, generator=gen) * scale
            feedback = ex.check_hvp(hvp_by_differences(run, step, w), run, step, w)
            assert feedback, f"hvp_by_differences at step {step} along a vector of size {scale:g}: {feedback}"
test_hvp_by_differences_on_other_steps_and_vectors(hvp_by_differences, traj)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. The reverse sweep (SGD-influence) (≈ 4 min)
#
# We want (3.4), $\nabla m(\theta_T)^\top K_t\,\delta_{i,t}$, for **every** occurrence $(i, t)$. Read it from the
# left: the row vector $u_t^\top = \nabla m(\theta_T)^\top K_t$ does not depend on $i$, and since each
# $H_t$ is symmetric,
#
# $$u_{T-1} = \nabla m(\theta_T), \qquad u_{t-1} = \big(I - \eta_t(H_t + \lambda I)\big)\,u_t \quad\text{(one HVP per step).} \tag{3.6}$$
#
# So one pass backwards over the recorded run scores every training point at every step:
#
# ```
# u ← ∇m(θ_T)                              # one row per test point
# for t = T−1, …, 0:
#     score(i, t) = δ_{i,t} · u   for i in B_t     # u before this step's update
#     u ← u − η_t (H_t u + λ u)                    # Hessian-vector product
# ```
#
# This is the linear influence estimator of Hara et al. (2019), "SGD-influence". It needs the stored
# $\theta_t$ (or a replay of them), per-sample gradients and one HVP per step — no replay per point.
# `dt.sgd_influence` runs it for all test points at once; its result equals the explicit product:

# %% tags=["nbval-check-output"]
infl = dt.sgd_influence(traj, split.test)                  # Influence: one row per (point, step)
U = traj.objective.measure_grads(traj.final, split.test)    # ∇m(θ_T) for each test point, [n_test, P]
explicit = U @ (K @ delta)
print("reverse sweep equals ∇m(θ_T)ᵀ K_t δ:", torch.allclose(infl.at([i], [t])[0], explicit, rtol=1e-9))

# %% [markdown]
# Now against the truth: the exact LOO of every occurrence (one replay each, batched) against the
# sweep. The scatter shows the change of the *mean* test loss; `dt.metrics.fidelity` correlates the
# two over the training points for each test point and averages (as in the paper's §5.1).

# %%
points, steps = traj.schedule.occurrence_pairs()
exact = dt.exact_loo(traj, split.test, points, steps, progress=False)   # [n_occurrences, n_test]
fid = dt.metrics.fidelity(infl.per_occurrence, exact)
print(f"{len(points)} occurrences x {exact.shape[1]} test points: "
      f"spearman {fid['spearman']:.3f}, pearson {fid['pearson']:.3f}, sign agreement {fid['sign_agreement']:.3f}")
with plots.style():
    fig, ax = plots.new_figure(2)
    plots.fidelity_scatter(ax[0, 0], infl.per_occurrence.mean(1), exact.mean(1), "SGD-influence (mean test loss)")
    plots.fidelity_scatter(ax[0, 1], infl.per_occurrence[:, 0], exact[:, 0], "SGD-influence (test point 0)")
fig

# %% tags=["nbval-check-output"]
print("spearman above 0.95:", fid["spearman"] > 0.95, "| sign agreement above 0.95:", fid["sign_agreement"] > 0.95)

# %% [markdown]
# Mind the protocol when you compare with the widget: here each occurrence is removed at its one
# step and the correlation is taken per test point, then averaged; the widget removes a point
# from all of its steps at once and correlates the change of the *mean* test loss over 40 points (20 fast).

# %% [markdown]
# ## 5. Where it breaks (≈ 5 min)
#
# ### Large learning rates
#
# Each factor $I - \eta_k H_k$ is a linearisation of one step. It is a good one when the step map is
# close to linear over the size of the perturbation. With a large $\eta$ two things go wrong: a
# direction with $\eta_k\lambda_{\max}(H_k) > 2$ is *amplified* rather than damped (the classical
# stability condition of gradient descent; directions of negative curvature, lesson 02, are amplified
# at any $\eta$), so differences grow, and the curvature along the two runs' paths drifts apart, so
# $H_k$ at $\theta_k$ no longer describes the counterfactual run. Here is the answer to the question
# at the top for this run: the widget's model trains and scores nine learning rates (its figure, now
# with every rate):

# %%
rho = {}                                       # learning rate -> Spearman(estimate, exact)
for lr in (0.05, 0.1, 0.2, 1.0, 1.5, 2.0, 2.5, 3.0, 0.5):   # each: train, exact LOO of 40 points, estimate
    lr_model.lr = lr
    rho[lr] = lr_model.update()["spearman"]    # results are cached by learning rate
for lr in sorted(rho):
    print(f"lr {lr:4.2f}: spearman(SGD-influence, exact LOO) = {rho[lr]:.3f}")
lr_model.figure()                              # the widget's figure at lr 0.5, every rate tried

# %% tags=["nbval-check-output"]
low, high = np.mean([rho[lr] for lr in (0.05, 0.1, 0.2)]), np.mean([rho[lr] for lr in (2.0, 2.5, 3.0)])
print("Spearman above 0.95 at learning rates up to 0.1:", min(rho[0.05], rho[0.1]) > 0.95)
print("lower at rates 2.0-3.0 than at 0.05-0.2 (mean of the three):", bool(high < low))
print("the rank correlation is lower at lr 3.0 than at lr 0.1:", rho[3.0] < rho[0.1])
print("best agreement at a rate of 0.5 or less:", max(rho, key=rho.get) <= 0.5)

# %% [markdown]
# **The answer to the question at the top.**
#
# <details><summary>Answer</summary>
#
# At small rates: up to 0.1 the Spearman is above 0.95, the best agreement comes at a rate of 0.5 or
# less, and on average the large rates (2.0–3.0) agree worse than the small ones (0.05–0.2) — all
# checked above, for every seed we swept. In between it does not fall steadily: some larger rates
# score better than smaller ones, and which do changes from run to run — in some runs even the worst
# rate is a moderate one. The first-order estimate needs steps small enough that each factor
# $I - \eta_k H_k$ describes the step well; exercise 2 at the end measures $\eta\lambda_{\max}(H_k)$ to
# see why.
# </details>

# %% [markdown]
# The drop is real but erratic. How far the correlation falls at a given large rate depends strongly
# on the run — rerun the lesson with other seeds (`DVE_TEACH_SEED`): at lr 3.0 it can be below zero
# in one run and above 0.9 in another, and in some runs a larger rate scores better than a smaller
# one, or a moderate rate (0.5 or 1.0) scores worst of all. Part of this is the metric: most of the 40
# points (20 fast) sit in a tight cluster where tiny errors reorder them, so two or three outliers
# decide a 40-point Spearman.
#
# The paper's Theorem 3 frames this. Under a learning rate that decays as $\eta_t \propto 1/\sqrt t$
# and Hessians whose norm decays along training, the error of the unrolled first-order estimator of
# the parameters is bounded by a constant that does **not** grow with $T$. Neither assumption holds
# here: the rate is constant, and as large as 3.0. (The paper's reviewers also questioned whether the
# decaying-Hessian assumption holds for real networks.) The theorem says when first order *can* be
# trusted over a long run; this toy shows what happens outside its assumptions.

# %% [markdown]
# ### Outliers: a mislabelled point
#
# The first-order error comes from the dropped $O(\|\Delta\|^2)$ terms of (3.2), so it should grow like the
# *square* of how far a removal moves the parameters. We flip the label of one training point and
# measure, for every occurrence, the size of the move $\|\theta'_T - \theta_T\|$ (exact replay) and the
# error of the estimate. A mislabelled point has a large gradient, so removing it moves $\theta$
# far — so we expect its estimate to be among the least reliable.

# %%
flip = 11                                                    # the point we mislabel
y_bad = split.train.y.clone()
y_bad[flip] = 1 - y_bad[flip]
traj_bad = dt.train(problem.model, dt.Data(split.train.X, y_bad), schedule, lr=0.5)
pts, sts = traj_bad.schedule.occurrence_pairs()
est_bad = dt.sgd_influence(traj_bad, split.test).per_occurrence.mean(1)
exact_bad = dt.exact_loo(traj_bad, split.test, pts, sts, progress=False).mean(1)
move = divergences(traj_bad, pts, sts)[:, -1]                # |θ'_T − θ_T| of each removal
error = (est_bad - exact_bad).abs()
slope = np.polyfit(np.log(move.numpy()), np.log(error.numpy()), 1)[0]
is_flip = torch.tensor(pts) == flip
with plots.style():
    fig, ax = plots.new_figure(2)
    ax[0, 0].loglog(move[~is_flip], error[~is_flip], "o", ms=3, alpha=0.6, color=plots.COLORS[0], label="other points")
    ax[0, 0].loglog(move[is_flip], error[is_flip], "*", ms=12, color=plots.COLORS[3], label=f"mislabelled point {flip}")
    ends = np.array([float(move.min()), float(move.max())])
    ax[0, 0].loglog(ends, float(error.median() / move.median() ** 2) * ends ** 2, "--", color="0.5", label="slope 2")
    ax[0, 0].set(xlabel=r"$\|\theta'_T - \theta_T\|$ (exact)", ylabel="|estimate − exact|", title=f"log-log slope {slope:.2f}")
    ax[0, 0].legend()
    plots.fidelity_scatter(ax[0, 1], est_bad, exact_bad, "SGD-influence")
    ax[0, 1].plot(exact_bad[is_flip], est_bad[is_flip], "*", ms=12, color=plots.COLORS[3])
fig

# %% [markdown]
# ### Try it: find the worst estimate
#
# Before reading on: which occurrence `(point, step)` has the largest error `|estimate − exact|` in the
# mislabelled run — a step of the mislabelled point? Use `error`, `pts` and `sts` from above (or
# recompute them). Write the search as a function first, `worst_occurrence(estimate, exact, points, steps)`:
# the pair `(point, step)` with the largest $|\text{estimate} - \text{exact}|$ (the graded version also
# tries it on other values).

# %% [raw]
# # BEGIN QUESTION
# name: l03_largest_error
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def worst_occurrence(estimate, exact, points, steps): ... ; then my_worst = a pair (point, step)
# BEGIN SOLUTION NO PROMPT
def worst_occurrence(estimate, exact, points, steps):
    """The (point, step) whose |estimate − exact| is largest. Whether it is the mislabelled point depends on the run."""
    k = int((estimate - exact).abs().argmax())
    return int(points[k]), int(steps[k])



# END SOLUTION
my_worst = worst_occurrence(est_bad, exact_bad, pts, sts)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_largest_error(my_worst, traj_bad, split.test)

# %% [raw]
# # BEGIN TESTS

# %%
def test_largest_error_of_the_mislabelled_run(my_worst, traj_bad, split):
    from dve_teach.teach.exercises import lesson03 as ex
    feedback = ex.check_largest_error(my_worst, traj_bad, split.test)
    assert feedback, str(feedback)
test_largest_error_of_the_mislabelled_run(my_worst, traj_bad, split)

# %%
# HIDDEN
def test_worst_occurrence_on_other_values(worst_occurrence):
    import torch
    points, steps = [7, 3, 9, 4], [0, 0, 1, 2]
    cases = [([0.0, 1.0, 2.0, -5.0], [0.5, 1.0, 1.0, -1.0], (4, 2)),     # estimate − exact is largest elsewhere
             ([0.0, 1.0, 5.0, -1.0], [0.5, 1.0, 1.0, -2.0], (9, 1))]     # exact − estimate is largest elsewhere
    for estimate, exact, truth in cases:
        got = worst_occurrence(torch.tensor(estimate, dtype=torch.float64), torch.tensor(exact, dtype=torch.float64),
                               points, steps)
        assert tuple(int(a) for a in got) == truth, "worst_occurrence: the largest |estimate − exact|, as (point, step)"
test_worst_occurrence_on_other_values(worst_occurrence)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# One run and one mislabelled point are one example. The cell below flips four different points, one
# per run (point 11 is the run above), and for each reports the log-log slope, the Spearman between
# move and error, and how far removing the mislabelled point moves $\theta$ compared with the median
# removal.

# %%
worst = int(error.argmax())
print(f"this run's largest error: point {pts[worst]} at step {sts[worst]} (mislabelled: {pts[worst] == flip}), "
      f"moved θ by {move[worst]:.2e}; the mislabelled point's largest move: {move[is_flip].max():.2e}")
flips = {}
for f in (11, 3, 29, 47):
    y_f = split.train.y.clone()
    y_f[f] = 1 - y_f[f]
    run = dt.train(problem.model, dt.Data(split.train.X, y_f), schedule, lr=0.5)
    p_f, s_f = run.schedule.occurrence_pairs()
    err_f = (dt.sgd_influence(run, split.test).per_occurrence.mean(1)
             - dt.exact_loo(run, split.test, p_f, s_f, progress=False).mean(1)).abs()
    move_f = divergences(run, p_f, s_f)[:, -1]
    flips[f] = dict(slope=np.polyfit(np.log(move_f.numpy()), np.log(err_f.numpy()), 1)[0],
                    spearman=dt.metrics.fidelity(move_f, err_f)["spearman"],
                    move_ratio=float(move_f[torch.tensor(p_f) == f].max() / move_f.median()),
                    largest=p_f[int(err_f.argmax())] == f)
    print(f"point {f:2d} mislabelled: slope {flips[f]['slope']:.2f}, Spearman(move, error) {flips[f]['spearman']:.2f}, "
          f"its largest move / median move {flips[f]['move_ratio']:.1f}, largest error is its own: {flips[f]['largest']}")

# %% tags=["nbval-check-output"]
median_of = lambda key: float(np.median([v[key] for v in flips.values()]))
print("over 4 mislabelled points: error grows roughly like the squared move (median slope 1.5 to 3):",
      1.5 < median_of("slope") < 3)
print("... the error follows the move (median Spearman(move, error) above 0.4):", median_of("spearman") > 0.4)
print("... removing the mislabelled point moves θ more than twice as far as the median removal (median):",
      median_of("move_ratio") > 2)

# %% [markdown]
# So a mislabelled point's removal usually moves $\theta$ far — in the median run several times as far
# as the median removal — and its estimate is then among the least reliable, as expected. But it need
# not be *the* least reliable (count the "largest error is its own" above), and in some runs flipping a
# label hardly changes how far its removal moves $\theta$ (look for a ratio near 1). What predicts the
# error is the size of the move, not the label: the error grows with the move, roughly as its square —
# with a scatter around the slope-2 line that spans up to two orders of magnitude at a fixed move.
#
# %% [markdown]
# The reviewers of the paper raised exactly this: a first-order expansion is least trustworthy for
# the points whose removal changes the model most (OpenReview discussion of the paper) — which are
# often the ones you want to find.
#
# ## 6. Where it is exact: linear least squares (≈ 2 min)
#
# For a linear model with squared loss, one SGD step is an *affine* map of $\theta$: the Hessians
# $H_k$ do not depend on $\theta$ and there are no $O(\|\Delta\|^2)$ terms. So for a removal at one step
#
# * $\theta'_T - \theta_T = K_t\,\delta_{i,t}$ (3.3) **exactly**, and so is any *prediction* $f(\theta) = x^\top\theta$, linear in $\theta$;
# * the *loss* $\ell = (f - y)^2$ is quadratic in $f$: $\Delta\ell = 2(f - y)\Delta f + (\Delta f)^2$.
#   The first-order estimate keeps only the first term, so it is off by exactly
#
#   $$\Delta\ell - \nabla\ell^\top\Delta\theta = (\Delta f)^2 \ge 0. \tag{3.7}$$
#
# `measure=` replaces the test loss by any function of the model — here the prediction.

# %% tags=["nbval-check-output"]
lsq = dt.datasets.linear_regression(n_train=sized(60, 40), n_test=10, dim=5, noise=0.1, seed=SEED + 4)
traj_lsq = dt.train(dt.models.linear(5, 1, seed=SEED + 5), lsq.train, dt.Schedule.shuffled(len(lsq.train), 8, epochs=2, seed=SEED + 6),
                    lr=0.1, loss="mse")
prediction = lambda model, params, data: torch.func.functional_call(model, params, (data.X,))[:, 0]
pts_lsq, sts_lsq = traj_lsq.schedule.occurrence_pairs()      # single-step removals
d_pred = dt.exact_loo(traj_lsq, lsq.test, pts_lsq, sts_lsq, measure=prediction, progress=False)
d_loss = dt.exact_loo(traj_lsq, lsq.test, pts_lsq, sts_lsq, progress=False)
est_pred = dt.sgd_influence(traj_lsq, lsq.test, measure=prediction).per_occurrence
est_loss = dt.sgd_influence(traj_lsq, lsq.test).per_occurrence
print("predictions: first order is exact:", torch.allclose(est_pred, d_pred, rtol=1e-8, atol=1e-14))
print("loss: exact − first order equals (Δ prediction)²:", torch.allclose(d_loss - est_loss, d_pred ** 2, rtol=1e-6, atol=1e-14))
print("so the first-order loss change is never above the true one:", bool((d_loss >= est_loss - 1e-15).all()))

# %% [markdown]
# ## What you learned
#
# * A removal at step $t$ changes $\theta_{t+1}$ by exactly $\delta_{i,t} = \frac{\eta_t}{b}\nabla\ell(\theta_t, z_i)$;
#   to first order, the rest of training multiplies it by $K_t = \prod_{k>t}(I - \eta_k(H_k + \lambda I))$, later steps on the left (paper §3.1, Eq. 1).
# * Hessian-vector products give $Hv$ for the price of about two gradients, without $P^2$ memory.
# * The reverse sweep carries $u_t = K_t^\top \nabla m(\theta_T)$ backwards and scores every occurrence in one pass (SGD-influence, Hara et al. 2019).
# * It matches exact LOO closely at small and moderate learning rates and degrades, erratically, at
#   large ones, outside the assumptions of the paper's Theorem 3 (decaying η and Hessians). Its error
#   grows roughly like the square of how far a removal moves $\theta$: a mislabelled point usually moves
#   it far and is among the least reliable, but an ordinary point can be worse.
# * For linear least squares it is exact for predictions and off by $(\Delta f)^2$ for the loss.
#
# One limitation remains: each new *test* point needs a new sweep over the whole trajectory. Lesson 04
# turns the computation around so that the training side is computed once.
#
# ## Exercises
#
# 1. **Renormalized removal.** A DataLoader that drops point $i$ divides its batch by $|B_t| - 1$.
#    Repeat section 4 with `renormalize=True` in both `dt.exact_loo` and `dt.sgd_influence`. Show that
#    for a full batch $\delta_{i,t} = \frac{\eta_t}{b-1}(g_i - \bar g)$ (`explain.removal_direction`) and compare the fidelity.
# 2. **Edge of stability.** For learning rates 0.5 and 3.0, compute $\eta\,\lambda_{\max}(H_k)$ at every
#    step (`explain.batch_hessian` and `torch.linalg.eigvalsh`). How many steps exceed 2? Relate this to
#    the rank correlations of section 5.
# 3. **Several occurrences in least squares.** Remove each point at *every* step where it appears
#    (`steps=None`) in the least-squares run and compare with the summed estimate `.total()` for predictions.
#    Is the sum still exact? Find the missing term and check it numerically with `explain.unrolled_product`.
#
# Worked solutions: in this lesson's source, [`src/03_unrolling_sgd.py`](src/03_unrolling_sgd.py), between the
# lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-3.
# BEGIN SOLUTION NO PROMPT
# 1. Renormalized removal. Dividing the batch by |B_t| - 1 also scales the other members' gradients up
#    by b / (b - 1), so for a full batch δ = η/(b-1) (g_i - ḡ): a point counts by how much it differs
#    from its batch.
full_step = 0
full_idx, full_X, full_y = traj.batch(full_step)    # a full batch (16 points)
full_G = traj.objective.per_sample_grads(traj.params(full_step), full_X, full_y)
member = int(full_idx[0])
expected_kick = float(traj.lrs[full_step]) / (traj.batch_size - 1) * (full_G[0] - full_G.mean(0))
print("Ex. 1: renormalized δ = η/(b-1) (g_i - mean g):",
      torch.allclose(explain.removal_direction(traj, member, full_step, renormalize=True), expected_kick))
all_points, all_steps = traj.schedule.occurrence_pairs()
for renorm_flag in (False, True):
    renorm_exact = dt.exact_loo(traj, split.test, all_points, all_steps, renormalize=renorm_flag, progress=False)
    renorm_estimate = dt.sgd_influence(traj, split.test, renormalize=renorm_flag).per_occurrence
    renorm_fid = dt.metrics.fidelity(renorm_estimate, renorm_exact)
    print(f"  renormalize={renorm_flag!s:5}: spearman {renorm_fid['spearman']:.3f}, "
          f"sign agreement {renorm_fid['sign_agreement']:.3f}, mean |TSLOO| {renorm_exact.abs().mean():.2e}")
# Both are first-order accurate, but they answer different questions: the values and, for some
# points, the signs change, because a point that agrees with its batch's mean gradient now counts little.

# 2. Edge of stability. A factor I - η H_k shrinks a direction of curvature h when 0 < η h < 2 and
#    amplifies it when η h > 2. With many such steps, small differences between the two runs grow
#    instead of dying out, and the linearisation around the recorded run stops describing the
#    counterfactual one.
for eos_lr in (0.5, 3.0):
    eos_run = dt.train(problem.model, split.train, schedule, lr=eos_lr)
    sharpness = torch.stack([eos_lr * torch.linalg.eigvalsh(explain.batch_hessian(eos_run, k))[-1]
                             for k in range(eos_run.T)])
    print(f"Ex. 2: lr {eos_lr}: η·λ_max(H_k) from {sharpness.min():.2f} to {sharpness.max():.2f}; "
          f"{int((sharpness > 2).sum())} of {eos_run.T} steps above 2")

# 3. Several occurrences in least squares. No. Removing i again at its second step t2 means its gradient
#    is missing at θ'_{t2}, not at θ_{t2}. SGD is affine here, so ∇ℓ_i(θ') = ∇ℓ_i(θ) + H_i Δ with
#    Δ = θ'_{t2} - θ_{t2} (caused by the first removal) and H_i = ∇²ℓ_i (= 2 x̃ x̃ᵀ, x̃ = (x, 1)). The
#    summed first-order estimate misses exactly K_{t2} (η_{t2}/b) H_i Δ, a product of two removals
#    (second order); for predictions nothing else is missing.
lsq_point = 0
lsq_t1, lsq_t2 = traj_lsq.schedule.occurrences(lsq_point)
lsq_every = dt.exact_loo(traj_lsq, lsq.test, [lsq_point], measure=prediction, progress=False)[0]
lsq_summed = dt.sgd_influence(traj_lsq, lsq.test, measure=prediction).total()[lsq_point]
lsq_shift = counterfactual_params(traj_lsq, lsq_point)[lsq_t2] - traj_lsq.params(lsq_t2)   # Δ just before step t2
lsq_H = torch.func.hessian(lambda th: traj_lsq.objective.losses(th, lsq.train.X[[lsq_point]],
                                                                  lsq.train.y[[lsq_point]])[0])(traj_lsq.params(lsq_t2))
lsq_missing = explain.unrolled_product(traj_lsq, lsq_t2) @ (
    float(traj_lsq.lrs[lsq_t2]) / traj_lsq.batch_size * lsq_H @ lsq_shift)
lsq_U = traj_lsq.objective.measure_grads(traj_lsq.final, lsq.test, prediction)   # x̃_test, one row per test point
print(f"Ex. 3: point {lsq_point} (steps {lsq_t1}, {lsq_t2}): max |exact - summed| = "
      f"{(lsq_every - lsq_summed).abs().max():.2e} (max |exact| {lsq_every.abs().max():.2e})")
print("  the gap is exactly the cross term K_t2 (η/b) H_i Δ:",
      torch.allclose(lsq_every - lsq_summed, lsq_U @ lsq_missing, atol=1e-12))
# END SOLUTION

# %% [markdown]
# **Next:** [Lesson 04 — Data value embeddings](04_data_value_embeddings.ipynb): compute the training
# side once, then query any test point with a dot product.
