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
# # 09 · Beyond SGD: momentum, Adam and AdamW
#
# *About 30 minutes. Lessons 02–04 and 06 come first: exact trajectory-specific leave-one-out (TSLOO),
# the first-order expansion, data value embeddings (DVE) and the per-step curve.*
#
# Every lesson so far trained with plain SGD, the setting in which the paper derives its embedding.
# Language models, such as the Pythia-410M behind lessons 06 and 08, are normally trained with an
# Adam-family optimizer such as AdamW. The paper says the embedding "is
# specifically tailored for SGD" and is "not directly extendable" to Adam "due to their normalization
# terms". For its AdamW-trained models it uses **SGD as a proxy**: the SGD recursion, with the run's
# learning rates, applied to the AdamW trajectory (§6). A proper extension is left as future work.
# This lesson measures what that proxy costs on a problem small enough for exact replay, and what an
# estimate that follows the optimizer gets back.
#
# ## Goals
#
# - Train the same data, in the same order, from the same $\theta_0$ with SGD, SGD with momentum and
#   Adam, and see how much the exact TSLOO of the same points changes.
# - Extend the first-order expansion to any update rule: the optimizer state $s_t$, its Jacobians
#   $J_t$, `dt.unrolled_influence`, and the three ways `dt.DataValueEmbedding` can treat an optimizer.
# - Measure how faithful each estimate stays against exact replay: the SGD proxy, a frozen
#   preconditioner, the optimizer-aware recursion and TracIn.
# - See why Adam's first step is all-or-nothing, and what that does to first order.
# - Draw lesson 06's per-step curve under AdamW with warm-up.

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import numpy as np
import torch

import dve_teach as dt
from dve_teach.teach import optimizers as opt
from dve_teach.teach.exercises import lesson09 as ex
from dve_teach.widgets import OptimizerExplorer, OptimizerModel

SEED = dt.config.seed()            # DVE_TEACH_SEED (default 0): every seed below is SEED + k
np.random.seed(SEED); torch.manual_seed(SEED)
torch.set_num_threads(1)           # tiny models: one thread is fastest
sized = dt.config.sized            # sized(full, fast): smaller problems when DVE_TEACH_FAST=1
seeds = [SEED + k for k in range(sized(5, 3))]
problem = opt.optimizer_problem(SEED)
print(f"{len(problem.train)} training points, {len(problem.test)} test points, batch size {problem.batch_size}, "
      f"{problem.epochs} epochs; {len(seeds)} seeds for every statistic below")

# %% [markdown]
# ## The key figure: the same run under three optimizers
#
# Two-dimensional moons, a 2-16-2 tanh network, batch size $b = 10$. For each seed the data, the
# initial parameters $\theta_0$ and the order of the batches are fixed, and only the update rule
# changes:
#
# - **SGD**, $\eta = 0.3$;
# - **SGD with momentum** $\mu = 0.9$, $\eta = 0.03$ (a gradient that keeps pointing the same way ends
#   up moving $\theta$ by $\eta/(1-\mu) = 0.3$ per step, as in SGD);
# - **Adam** with its defaults $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\eta = 0.05$.
#
# For every training point we replay training without it, removed from every step where it was used
# (`dt.exact_loo`), and record the exact TSLOO: how much the mean test loss rises without it
# (positive = the point helped). `opt.optimizer_runs` does this, and computes the estimates of the
# next sections, for every seed. The figure shows the first seed: each dot is one training point.

# %%
SETTINGS = {"SGD": dict(optimizer="sgd"), "momentum": dict(optimizer="momentum"), "Adam": dict(optimizer="adam")}
runs = opt.optimizer_runs(seeds, SETTINGS)          # one dict per seed: {label: exact, estimates, traj, ...}
opt.cross_figure(runs[0], list(SETTINGS))

# %% [markdown]
# Per seed: the final test loss of each run, and how alike two rules rank the training points by exact
# TSLOO (the mean over test points of the Spearman correlation, `opt.cross_spearman`):

# %%
cross = {pair: np.array([opt.cross_spearman(r, *pair) for r in runs]) for pair in
         [("SGD", "momentum"), ("SGD", "Adam")]}
losses = np.array([[r[label]["test_loss"] for label in SETTINGS] for r in runs])    # [seeds, rules]
for k, s in enumerate(seeds):
    print(f"seed {s}: test loss " + ", ".join(f"{lb} {v:.3f}" for lb, v in zip(SETTINGS, losses[k]))
          + " | Spearman of exact TSLOO: " + ", ".join(f"{a}–{b} {cross[(a, b)][k]:.2f}" for a, b in cross))

# %% tags=["nbval-check-output"]
print("median over seeds, SGD and Adam rank the points differently (Spearman below 0.8):",
      bool(np.median(cross[("SGD", "Adam")]) < 0.8))
print("in every seed momentum's ranking is closer to SGD's than Adam's is:",
      bool(np.all(cross[("SGD", "momentum")] > cross[("SGD", "Adam")])))

# %% [markdown]
# TSLOO belongs to a trajectory, and the update rule is part of the trajectory. The same point at the
# same steps is worth something else under Adam. An estimate built for SGD has to get right not only
# the later steps but also what one gradient does to a step.
#
# ## How each rule turns a gradient into a step
#
# Write $g_t = \frac1b\sum_{j\in B_t}\nabla\ell(\theta_t, z_j)$ for the batch gradient (nominal $b$, as
# always). The rules keep a **state** $s_t$ and update it, $s_{t+1} = F_t(s_t, g_t)$:
#
# | rule | state $s_t$ | update |
# |---|---|---|
# | SGD | $\theta_t$ | $\theta_{t+1} = \theta_t - \eta_t g_t$ |
# | momentum | $(\theta_t, u_t)$ | $u_{t+1} = \mu u_t + g_t$, $\;\theta_{t+1} = \theta_t - \eta_t u_{t+1}$ |
# | Adam | $(\theta_t, m_t, v_t)$ | $m_{t+1} = \beta_1 m_t + (1-\beta_1) g_t$, $\;v_{t+1} = \beta_2 v_t + (1-\beta_2) g_t^2$, $\;\theta_{t+1} = \theta_t - \eta_t\,\hat m/(\sqrt{\hat v} + \epsilon)$ |
#
# with $\hat m = m_{t+1}/(1-\beta_1^{t+1})$ and $\hat v = v_{t+1}/(1-\beta_2^{t+1})$ (bias correction),
# every operation per coordinate (`dt.optim`, the semantics of `torch.optim`). AdamW also shrinks
# $\theta$ by $(1-\eta_t\lambda)$ at every step.
#
# Removing $z_i$ at step $t$ changes $g_t$ by $-g_i/b$, with $g_i = \nabla\ell(\theta_t, z_i)$:
#
# - under SGD, $\theta_{t+1}$ moves by $\frac{\eta_t}{b} g_i$, once;
# - under momentum, the same kick stays in the buffer $u$, and $\theta$ takes it again, $\mu$, $\mu^2$,
#   … times at the following steps;
# - under Adam, the kick is divided, coordinate by coordinate, by $\sqrt{\hat v}$: a coordinate whose
#   gradients have been small takes a large step.
#
# **Exercise A — momentum's carry.** Take the momentum run of the first seed, `runs[0]["momentum"]["traj"]`
# ($\mu = 0.9$, constant $\eta$, $T$ steps). Suppose the later gradients did not change when $z_i$ is
# removed (zero curvature). How many times larger than its first kick
# $\lVert\theta'_{t+1}-\theta_{t+1}\rVert$ is $\lVert\theta'_T-\theta_T\rVert$ then? Give the pair
# (removal at step $t = 0$, removal at step $t = T-2$). First write the rule as a function,
# `carry_factor(mu, k)`: the factor when $k$ steps follow the step of the removal (the graded version
# also tries it on other $\mu$ and $k$).

# %%
mom = runs[0]["momentum"]["traj"]
print(f"momentum run: μ = {mom.optimizer.momentum}, η = {float(mom.lrs[0]):g} at every step, T = {mom.T} steps")

# %% [raw]
# # BEGIN QUESTION
# name: l09_momentum_carry
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def carry_factor(mu, k): ... ; then carry = (factor for t = 0, factor for t = T − 2)
# BEGIN SOLUTION NO PROMPT
def carry_factor(mu, k):
    """The kick enters θ once at its own step, then μ, μ², ..., μ^k times: a geometric sum."""
    return (1 - mu ** (k + 1)) / (1 - mu)


# END SOLUTION
carry = (carry_factor(mom.optimizer.momentum, mom.T - 1), carry_factor(mom.optimizer.momentum, 1))  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_momentum_carry(carry, mom)

# %% [raw]
# # BEGIN TESTS

# %%
def test_carry_of_this_run(carry, mom):
    from dve_teach.teach.exercises import lesson09 as ex
    feedback = ex.check_momentum_carry(carry, mom)
    assert feedback, str(feedback)
test_carry_of_this_run(carry, mom)

# %%
# HIDDEN
def test_carry_factor_for_any_mu_and_k(carry_factor):
    import math
    for mu in (0.0, 0.5, 0.9, 0.99):
        for k in (0, 1, 7, 200):
            truth = sum(mu ** j for j in range(k + 1))
            got = float(carry_factor(mu, k))
            assert math.isclose(got, truth, rel_tol=1e-9), f"carry_factor({mu}, {k}) is not the carry"
test_carry_factor_for_any_mu_and_k(carry_factor)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Leaving curvature aside, an estimate that moves every point by its one kick $\frac{\eta_t}{b} g_i$, as
# the SGD recursion does, gives the early points of a momentum run several times too little weight
# relative to the last ones.
#
# ## First order through the optimizer's state
#
# Lesson 03's expansion carries over to any rule once we follow the whole state. Removing $z_i$ at step
# $t$ changes $s_{t+1}$ by
#
# $$\delta_{i,t} = F_t\big(s_t,\; g_t - g_i/b\big) - F_t\big(s_t,\; g_t\big),$$
#
# exactly (both runs share $s_t$). Every later step carries the change through its Jacobian
#
# $$J_k = \frac{\partial s_{k+1}}{\partial s_k} = \frac{\partial F_k}{\partial s} + \frac{\partial F_k}{\partial g}\,H_k\,E,$$
#
# where $H_k$ is the Hessian of step $k$'s batch loss and $E$ picks $\theta$ out of $s$. To first order,
#
# $$\mathrm{TSLOO}(z_i, t) \approx \big[\nabla L_{\text{test}}(\theta_T),\, 0\big]^\top J_{T-1}\cdots J_{t+1}\,\delta_{i,t}.$$
#
# For plain SGD, $J_k = I - \eta_k H_k$, $\delta_{i,t} = \frac{\eta_t}{b} g_i$ and the product is lesson 03's
# $K_t$. `dt.unrolled_influence(traj, test)` runs this sweep backwards for any rule (a vector-Jacobian
# product of the rule plus one Hessian-vector product per step and test point). The data value
# embedding keeps the same structure, $\mathrm{DVE}(i, t) = E\,J_{T-1}\cdots J_{t+1}\,\delta_{i,t}$,
# computed once by a backward recursion with $H_k$ replaced by a curvature matrix, and
# `dt.DataValueEmbedding(optimizer=...)` offers three treatments of the rule:
#
# - `"recorded"`: the rule's own $\delta$ and $J_k$, including how Adam's $v$, and with it every
#   coordinate's step size, reacts to the gradient;
# - `"frozen_preconditioner"` (Adam and AdamW): $v$ held at its recorded values, so the step sizes are
#   fixed and only $m$ and $\theta$ react;
# - `"sgd_proxy"`: the plain-SGD $\delta = \frac{\eta_t}{b} g_i$ and $J_k = I - \eta_k H_k$ with the run's
#   $\eta_t$, whatever the rule: the paper's choice for AdamW.
#
# To isolate the optimizer, every embedding in this lesson uses the same curvature, the GGN of lesson 04.
# TracIn, $\frac{\eta_t}{b}\nabla L_{\text{test}}(\theta_t)^\top g_i$, ignores the rule as well. On a
# plain SGD run the optimizer-aware versions must reduce to the SGD ones:

# %% tags=["nbval-check-output"]
sgd_run = runs[0]["SGD"]
same = torch.equal(sgd_run["estimates"]["DVE recorded"], sgd_run["estimates"]["DVE SGD proxy"])
unrolled_vs_03 = torch.allclose(dt.unrolled_influence(sgd_run["traj"], problem.test).per_occurrence,
                                dt.sgd_influence(sgd_run["traj"], problem.test).per_occurrence, rtol=1e-10, atol=1e-15)
print("SGD run: the recorded embedding is the SGD proxy, exactly (an identity):", same)
print("SGD run: dt.unrolled_influence equals lesson 03's dt.sgd_influence (an identity):", unrolled_vs_03)

# %% [markdown]
# ## Explore: `OptimizerExplorer`
#
# Choose the optimizer, the learning rate and the $\beta$'s ($\beta_1$ is the momentum $\mu$ when the
# optimizer is `momentum`). The widget trains the first seed's problem, replays the removal of every
# training point, and computes the five estimates: `unrolled`, `DVE recorded`, `DVE frozen v` (Adam and
# AdamW only), `DVE SGD proxy` and `TracIn` (about a second per new setting; settings seen before come
# from a cache). The bars give each estimate's Spearman correlation with exact replay; the scatter ranks
# every training point by exact replay and by two of the embeddings. Choosing an optimizer resets
# $\eta$ to the value used above. It starts on SGD.

# %% tags=["widget"]
explorer = OptimizerExplorer(model=OptimizerModel(problem, optimizer="sgd"))
explorer

# %% [markdown]
# **Predict, then check.** Before you touch the widget: switch the optimizer to `adam`. Which of the five
# estimates will still rank the points almost as exact replay does, and which will fall furthest? Then
# try `momentum`: which estimate drops there?
#
# <details><summary>Answer</summary>
#
# Under Adam, the two estimates that follow the optimizer, `unrolled` and `DVE recorded`, stay close to
# exact replay. The SGD proxy and TracIn, which treat Adam's step as if it were $\eta g$, fall furthest.
# The frozen preconditioner stays below the recorded embedding: it has Adam's step sizes but not their
# reaction to the removed gradient. Under momentum the SGD proxy falls too, while the recorded embedding
# stays. The table below measures this in every seed.
# </details>

# %%
stats = opt.spearman_over_seeds(runs)        # {rule: {method: Spearman in each seed}}
print(opt.fidelity_table(stats))

# %% tags=["nbval-check-output"]
fa, fm, fs = stats["Adam"], stats["momentum"], stats["SGD"]
print("Adam: in every seed, DVE recorded beats the frozen preconditioner:", bool(np.all(fa["DVE recorded"] > fa["DVE frozen v"])))
print("Adam: in every seed, the recorded embedding is more than 0.2 above the SGD proxy:",
      bool(np.all(fa["DVE recorded"] - fa["DVE SGD proxy"] > 0.2)))
print("Adam: median over seeds of unrolled and of DVE recorded above 0.8:",
      bool(np.median(fa["unrolled"]) > 0.8 and np.median(fa["DVE recorded"]) > 0.8))
print("momentum: in every seed, DVE recorded beats the SGD proxy:", bool(np.all(fm["DVE recorded"] > fm["DVE SGD proxy"])))
print("SGD: in every seed, the unrolled sweep and the embedding beat TracIn:",
      bool(all(np.all(fs[k] > fs["TracIn"]) for k in ("unrolled", "DVE recorded"))))

# %% [markdown]
# In every seed the SGD proxy falls well below the recursion that follows the optimizer under Adam, and
# below it under momentum; the frozen preconditioner falls below it too. Why freezing is not enough: Adam's step
# $\hat m/\sqrt{\hat v}$ does not change when every gradient is scaled by the same factor, because $m$
# and $v$ react together. A removal changes both; with $v$ frozen, only the change in $m$ is seen, and a
# change of the gradient along itself, which the normalisation would largely undo, is counted in full.
# This is one small problem: how large the gap is for a language model is not measured here.
#
# ## Adam's first step: all or nothing
#
# At the first step $m = v = 0$, so after bias correction $\hat m = g_0$ and $\hat v = g_0^2$, and
#
# $$\theta_1 - \theta_0 = -\eta_0\,\frac{g_0}{|g_0| + \epsilon} \approx -\eta_0\,\mathrm{sign}(g_0)$$
#
# coordinate by coordinate: every coordinate moves by $\eta_0$, however small its gradient.
#
# **Predict, then check.** Remove one point of the first batch *gradually*: multiply its weight by
# $1 - f$ and let $f$ go from 0 to 1. How does $\lVert\theta'_1 - \theta_1\rVert$ grow with $f$ under
# SGD, and under Adam?
#
# <details><summary>Answer</summary>
#
# Under SGD linearly: $\theta'_1 - \theta_1 = f\,\frac{\eta_0}{b} g_i$. Under Adam not at all, until
# $f$ is large enough to flip the sign of some coordinate of the batch gradient; that coordinate then
# jumps by $2\eta_0$ (from $-\eta_0$ to $+\eta_0$). The curve is a staircase: all or nothing, coordinate by
# coordinate. Between the jumps its slope is (nearly) zero, so a derivative with respect to the point's
# weight (an "infinitesimal" removal) sees almost nothing. This is why `dt.unrolled_influence` and the embeddings
# take the removal step itself exactly, as the difference $\delta_{i,t}$ of two steps, and linearise only
# what comes after. The figure below draws it.
# </details>
#
# **Exercise B — the first step by hand.** In the first seed's Adam run, `adam_run`, take the point
# `p` of the first batch chosen below. Compute $\theta'_1 - \theta_1$ (a Tensor of $P$ numbers) when `p`
# is removed at step 0, without calling the library's update rule: start from the per-sample gradients
# of the first batch, `adam_run.objective.per_sample_grads(adam_run.params(0), X, y)` with
# `_, X, y = adam_run.batch(0)` (row $k$ belongs to `batch0[k]`), and the batch gradient with the
# nominal divisor $b$ (`adam_run.batch_size`). Write Adam's first update as a function first,
# `adam_first_step(g, lr, eps)`: $\theta_1 - \theta_0$ for a batch gradient `g` (a Tensor[P]) at $t = 0$
# from zero moments (the graded version also tries it on other gradients).

# %%
adam_run = runs[0]["Adam"]["traj"]
batch0 = list(adam_run.schedule.batches[0])
p = batch0[int(opt.sign_flips(adam_run, 0).sum(1).argmax())]   # the member whose removal flips most coordinates
print(f"first batch: {batch0}; p = {p}; η_0 = {float(adam_run.lrs[0])}, ε = {adam_run.optimizer.eps}, P = {adam_run.flat.P}")

# %% [raw]
# # BEGIN QUESTION
# name: l09_adam_first_step
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def adam_first_step(g, lr, eps): ... ; then first_step = Tensor[P], θ'_1 − θ_1 without p at step 0
# BEGIN SOLUTION NO PROMPT
def adam_first_step(g, lr, eps):
    """At t = 0, m̂ = g and v̂ = g² (bias-corrected), so θ_1 − θ_0 = −η g/(|g| + ε), coordinate by coordinate."""
    return -lr * g / (g.abs() + eps)


_, X0, y0 = adam_run.batch(0)
G0 = adam_run.objective.per_sample_grads(adam_run.params(0), X0, y0)   # row k belongs to batch0[k]
g0 = G0.sum(0) / adam_run.batch_size
g0_without = g0 - G0[batch0.index(p)] / adam_run.batch_size
eta0, eps0 = float(adam_run.lrs[0]), adam_run.optimizer.eps
# END SOLUTION
first_step = adam_first_step(g0_without, eta0, eps0) - adam_first_step(g0, eta0, eps0)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_first_step(first_step, adam_run, p)

# %% [raw]
# # BEGIN TESTS

# %%
def test_first_step_of_this_run(first_step, adam_run, p):
    from dve_teach.teach.exercises import lesson09 as ex
    feedback = ex.check_first_step(first_step, adam_run, p)
    assert feedback, str(feedback)
test_first_step_of_this_run(first_step, adam_run, p)

# %%
# HIDDEN
def test_adam_first_step_on_other_gradients(adam_first_step):
    import torch
    import dve_teach as dt
    rule = dt.optim.Adam()
    gen = torch.Generator().manual_seed(2026)
    for scale in (1e-10, 1e-3, 1.0, 1e3):
        g = torch.randn(37, generator=gen, dtype=torch.float64) * scale
        g[:3] = 0.0                                     # coordinates without gradient do not move
        for lr in (0.05, 1e-3):
            truth = rule.update(rule.init(torch.zeros(37, dtype=torch.float64)), g, lr, 0)[:37]
            got = torch.as_tensor(adam_first_step(g, lr, rule.eps), dtype=torch.float64).reshape(-1)
            assert got.shape == truth.shape, "adam_first_step should return one number per coordinate of g"
            assert torch.allclose(got, truth, rtol=1e-6, atol=1e-12 * lr), \
                "adam_first_step does not match Adam's first update for some gradients (tiny, zero or large ones)"
test_adam_first_step_on_other_gradients(adam_first_step)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Now the picture, and what it does to first order. Left: $\lVert\theta'_1 - \theta_1\rVert_1/2\eta_0$ for
# every member of the first batch removed gradually (first seed), Adam in colour (shifted apart by a few
# hundredths so that equal curves stay visible) and SGD in grey. Right: for every single occurrence
# $(i, t)$, exact TSLOO on the mean test loss by replay against the unrolled estimate, as the median
# relative error $|\text{unrolled} - \text{exact}|/|\text{exact}|$ of each step's batch.

# %%
sgd_run_traj = runs[0]["SGD"]["traj"]
by_step = {}
for s_, r in zip(seeds, runs):
    p_s = opt.optimizer_problem(s_)
    by_step[s_] = {rule: opt.first_order_by_step(p_s, r[rule]["traj"]) for rule in ("SGD", "Adam")}
opt.first_step_figure(opt.step_response(adam_run, 0), opt.step_response(sgd_run_traj, 0),
                      float(adam_run.lrs[0]), float(sgd_run_traj.lrs[0]), by_step[seeds[0]])

# %% [markdown]
# Over all seeds: is the first step all or nothing in every coordinate, how large is a removal at step 0
# compared with a typical later one (median |TSLOO| of the first batch over the median of the later
# batches' medians), and how large is the first-order error there compared with a typical later step?

# %%
all_or_nothing, size_ratio, err_ratio = [], {"SGD": [], "Adam": []}, {"SGD": [], "Adam": []}
for s_, r in zip(seeds, runs):
    eta0 = float(r["Adam"]["traj"].lrs[0])
    d = opt.step_response(r["Adam"]["traj"], 0, [0.0, 1.0])[:, 1].abs() / eta0   # [batch, P]: |θ'_1 − θ_1| / η_0
    flips = opt.sign_flips(r["Adam"]["traj"], 0)
    all_or_nothing.append(bool(((d > 1) == flips).all() and ((d[flips] - 2).abs() < 0.05).all() and (d[~flips] < 0.05).all()))
    for rule, b in by_step[s_].items():
        size_ratio[rule].append(float(b["size"][0] / b["size"][1:].median()))
        err_ratio[rule].append(float(b["rel_error"][0] / b["rel_error"][1:].median()))
    print(f"seed {s_}: {int(flips.sum())} of {flips.numel()} (member, coordinate) pairs flip; step 0 / typical later "
          f"step: |TSLOO| SGD {size_ratio['SGD'][-1]:.1f}, Adam {size_ratio['Adam'][-1]:.1f}; first-order error "
          f"SGD {err_ratio['SGD'][-1]:.1f}, Adam {err_ratio['Adam'][-1]:.1f}")

# %% tags=["nbval-check-output"]
print("in every seed, each coordinate of Adam's first step moves by 2η_0 (within 5%) where the batch gradient's "
      "sign flips, and by less than 5% of η_0 everywhere else:", all(all_or_nothing))
print("median over seeds, a removal at Adam's step 0 moves the test loss more than a typical later one:",
      float(np.median(size_ratio["Adam"])) > 1)
print("... by a larger factor than under SGD, median over seeds:",
      float(np.median(size_ratio["Adam"])) > float(np.median(size_ratio["SGD"])))
print("median over seeds, Adam's first-order error at step 0 is more than 3x its typical error:",
      float(np.median(err_ratio["Adam"])) > 3)
print("... and that ratio is larger than SGD's, median over seeds:",
      float(np.median(err_ratio["Adam"])) > float(np.median(err_ratio["SGD"])))

# %% [markdown]
# Adam's first step turns the removal of one point into a few coordinates that flip and move by
# $2\eta_0$, and nothing else (and if no coordinate flips, into nothing at all). Such a removal moves the
# test loss more than a typical later one, by a larger factor than under SGD. First order, which carries
# this large kick through later steps that are themselves close to sign steps ($\hat v$ is then an
# average of a handful of squared gradients), is several times less accurate there than at a typical
# later step.
#
# ## Phases under AdamW with warm-up
#
# Lesson 06 drew $c_t$, the mean over each batch of |influence on the mean test loss| divided by $\eta_t$,
# and found that an SGD run needed many epochs before its start rose far above a basin. We now take a
# longer moons run (10 epochs, 8 in fast mode) with `dt.lr.warmup_cosine` (10% warm-up), once with
# **AdamW** (peak $\eta = 0.05$, $\lambda = 0.01$) and once with **SGD** (peak 0.5), the same data, order
# and $\theta_0$. The estimate is `dt.unrolled_influence` (lines; thick: a moving average); diamonds are
# exact replays of 6 sampled points at each of 12 evenly spaced steps, hollow circles the estimate of
# the same points (`opt.phase_run`). The two rules' curves have different scales (Adam's steps are
# normalised per coordinate, SGD's are not): compare each curve with its own basin.
#
# **Predict, then check.** Which of the two runs starts far above its basin?
#
# <details><summary>Answer</summary>
#
# AdamW. Its first steps stand far above everything after them, even in this short run; the SGD run
# with the same schedule starts much nearer its basin. The figure and the checks below show it.
# </details>

# %%
phase = [{"AdamW": opt.phase_run(opt.phase_problem(s_), "adamw", seed=s_),
          "SGD": opt.phase_run(opt.phase_problem(s_), "sgd", peak=0.5, seed=s_)} for s_ in seeds]
opt.phase_figure(phase[0])

# %%
from scipy.stats import spearmanr
for s_, ph in zip(seeds, phase):
    print(f"seed {s_}: " + "; ".join(
        f"{rule} start/basin {r['levels']['start_over_basin']:.1f}, end/basin {r['levels']['end_over_basin']:.1f}, "
        f"exact vs unrolled at the samples: Spearman {spearmanr(r['exact_curve'], r['estimate_at_samples'])[0]:.2f}"
        for rule, r in ph.items()))

# %% tags=["nbval-check-output"]
lv = {rule: [ph[rule]["levels"] for ph in phase] for rule in ("AdamW", "SGD")}
print("AdamW: in every seed the first tenth is more than 2x the basin:", all(x["start_over_basin"] > 2 for x in lv["AdamW"]))
print("in every seed AdamW's start/basin ratio is above SGD's:",
      all(x["start_over_basin"] > y["start_over_basin"] for x, y in zip(lv["AdamW"], lv["SGD"])))
print("SGD: a late ascent, the last tenth more than 2x the basin, in every seed:",
      all(x["end_over_basin"] > 2 for x in lv["SGD"]))
print("exact replays rank the sampled steps like the unrolled estimate (Spearman > 0.8), every seed and rule:",
      all(spearmanr(r["exact_curve"], r["estimate_at_samples"])[0] > 0.8 for ph in phase for r in ph.values()))
print("AdamW: in every seed the last tenth is below the highest tenth of the second half (it turns down):",
      all(x["bins"][-1] < max(x["bins"][5:-1]) for x in lv["AdamW"]))

# %% [markdown]
# Under AdamW the first steps stand out even in a short run, and exact replays confirm it at the
# sampled steps; the SGD run shows lesson 06's late ascent instead, with a start much nearer its basin. The
# first section of this lesson shows part of the reason: a removal at the first step
# flips whole coordinates of the step. In addition, bias correction gives the first gradients a weight
# near 1 in $\hat m$, against $1-\beta_1 = 0.1$ later, and $\hat v$ is built from few gradients. Dividing
# by $\eta_t$ does not remove any of this. So an Adam-trained model can show a high-impact start for
# reasons that an analysis of SGD's $K_t$ does not see. At the very end the AdamW curve turns down. A likely
# reason, which exercise 4 probes: with $\beta_1 = 0.9$, a gradient reaches $\theta$ through $m$ over about
# $1/(1-\beta_1) = 10$ following steps, and for the last batches training stops before it has arrived.
#
# Which of these effects the paper's Pythia-410M curve shows, the SGD proxy cannot tell: it replaces
# Adam's normalised step by $\frac{\eta_t}{b}g_i$.

# %% [markdown]
# ## What you learned
#
# - TSLOO belongs to the whole trajectory, update rule included: trained with SGD, momentum or Adam, the
#   same data in the same order gives different exact values, and Adam ranks the points differently from
#   SGD (median Spearman below 0.8 here, and further from SGD than momentum in every seed).
# - First order extends to any rule by following the optimizer state: $\delta_{i,t}$ is the exact
#   difference of two steps, and $J_k = \partial F_k/\partial s + \partial F_k/\partial g\,H_k E$ carries it
#   (`dt.unrolled_influence`; `DataValueEmbedding(optimizer="recorded")`).
# - The paper's SGD proxy loses much of its fidelity on Adam runs (and on momentum runs) here, while the
#   optimizer-aware recursion keeps most of it; freezing Adam's preconditioner falls short of it.
# - Adam's first step is nearly $-\eta\,\mathrm{sign}(g)$: removing a point flips a few coordinates by
#   $2\eta$ or does nothing, a derivative in the point's weight sees almost nothing, and first order is much
#   less accurate there than at later steps.
# - Under AdamW with warm-up the per-step curve has a high-impact start even in a short run, for reasons
#   of Adam's own (sign-like first steps, bias correction), and turns down in the last steps.
#
# ## Exercises
#
# 1. **The paper's curvature.** `OptimizerModel(problem, optimizer="adam", hessian="fisher")` uses the
#    empirical Fisher, the paper's choice, in all three embeddings. How far does the SGD proxy fall now,
#    and does the order of the three embeddings change?
# 2. **β₂.** In the widget, set Adam's $\beta_2$ to 0.9 and then to 0.9999. Which estimate gains or loses
#    most, and why should the frozen preconditioner care about how fast $v$ forgets?
# 3. **A warm-up does not soften the first step.** Run `opt.phase_run` for AdamW with `warmup=0.3`.
#    Does $c_0$ still stand above the basin? (Hint: is the first step's staircase any different when
#    $\eta_0$ is smaller?)
# 4. **Momentum's tail.** Draw the per-step curve of a momentum run (`opt.phase_run(..., "momentum",
#    peak=0.05)`). Does it turn down in the last steps as AdamW's does?
#
# Worked solutions: in this lesson's source, [`src/09_beyond_sgd.py`](src/09_beyond_sgd.py), between the
# lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-4 (about half a minute of computing for all four).
# BEGIN SOLUTION NO PROMPT
# 1. The paper's curvature: the empirical Fisher in all three embeddings.
for hessian in ("ggn", "fisher"):
    rho = OptimizerModel(problem, optimizer="adam", hessian=hessian).update()["spearman"]
    print(f"1. {hessian:6s}: " + ", ".join(f"{m} {v:.2f}" for m, v in rho.items() if m.startswith("DVE")))
# The Fisher lowers the embeddings, and the lead of the recorded recursion over the SGD proxy shrinks
# (in the full-mode run of seed 0 the three land close together): with the paper's curvature, the
# curvature and not only the optimizer limits the embedding. Try a few seeds before concluding.

# 2. β₂: how fast v forgets.
for beta2 in (0.9, 0.999, 0.9999):
    rho = OptimizerModel(problem, optimizer="adam", beta2=beta2).update()["spearman"]
    print(f"2. β₂ = {beta2}: " + ", ".join(f"{m} {v:.2f}" for m, v in rho.items()))
# With a small β₂, v follows the latest gradients closely, so how v reacts to a removal matters
# more, and that is what the frozen preconditioner leaves out: in the full-mode run of seed 0 it
# drops from 0.74 to 0.64 at β₂ = 0.9, while 0.9999 changes little over so few steps.

# 3. A longer warm-up: the first step's staircase scales with η_0 (a flip moves by 2η_0) and c_t
#    divides by η_t, so a smaller η_0 does not soften it: the start still stands out.
for warmup in (0.1, 0.3):
    r = opt.phase_run(opt.phase_problem(SEED), "adamw", warmup=warmup, seed=SEED)
    print(f"3. warm-up {warmup:.0%}: start/basin {r['levels']['start_over_basin']:.1f}, "
          f"c_0 / median c_t {float(r['curve'][0] / r['curve'].median()):.1f}")

# 4. Momentum's tail: the last batches' gradients have not been fully handed on when training stops.
r = opt.phase_run(opt.phase_problem(SEED), "momentum", peak=0.05, seed=SEED)
bins = r["levels"]["bins"]
print("4. momentum, mean c_t per tenth of the run:", np.array2string(bins, precision=4),
      "| last tenth below the highest of the second half:", bool(bins[-1] < bins[5:-1].max()))
# END SOLUTION

# %% [markdown]
# ---
# You reached the end of the course. Back to the [index of lessons](README.md) — or take the lessons
# again with your own data.
