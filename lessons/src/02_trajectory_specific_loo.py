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
# # 02 · Trajectory-specific leave-one-out
#
# *About 25 minutes. Lessons 00 and 01 come first.*
#
# Lesson 01 showed that *when* a point is seen changes what it does. This lesson makes that precise.
# The trajectory-specific leave-one-out (TSLOO) is the ground truth every later lesson approximates, and
# here we compute it exactly, by replaying the run.
#
# ## Goals
#
# - State the definition (paper §2, Definition 1) and the two choices inside it: remove a point at
#   **one step** or at **every occurrence**; keep the batch divisor (**zero-weight**) or not
#   (**renormalized**).
# - Follow the replay: the counterfactual run $\theta'_t$ equals $\theta_t$ until the removal, jumps by
#   an exactly known amount, then drifts — and watch the divergence $\lVert\theta'_t-\theta_t\rVert$.
# - Count what exactness costs: one replay per (point, step).
#
# Sections: 1. the definition (≈ 4 min) · 2. explore removals in a widget (≈ 4 min) · 3. the key figure
# and the replay (≈ 3 min) · 4. how much of the kick survives (≈ 4 min) · 5. one step or every
# occurrence (≈ 3 min) · 6. zero-weight or renormalized (≈ 3 min) · 7. the cost of doing it exactly
# (≈ 4 min). Symbols as in [lesson 00's notation box](00_start_here.ipynb): $\mathrm{TSLOO}^{(s)}(z_i; z)$
# is lesson 00's (0.1) with $s$ for the removal step (lesson 03 writes it $\mathrm{TSLOO}(i, s)$), and
# $\delta$ is the kick $\delta_{i,s}$ of the box; equations are numbered (2.k).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import time

import numpy as np
import torch

import dve_teach as dt
from dve_teach import plots, widgets
from dve_teach.influence.counterfactual import counterfactual_params, divergence, divergences
from dve_teach.teach.exercises import lesson02 as ex

SEED = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
np.random.seed(SEED); torch.manual_seed(SEED)   # seed everything (the order below has its own seed)
torch.set_num_threads(1)                  # tiny models: one thread is fastest (and fair to other users)
sized = dt.config.sized                   # sized(full, fast): smaller problems when DVE_TEACH_FAST=1

# %% [markdown]
# ## 1. The definition (≈ 4 min)
#
# Give every point of every batch a weight $w_j$ in the SGD step (the recorded run has all $w_j = 1$):
#
# $$\theta_{t+1} = \theta_t - \eta_t\Big(\frac1b\sum_{j\in B_t} w_j\,\nabla\ell(\theta_t, z_j) + \lambda\,\theta_t\Big). \tag{2.1}$$
#
# The **counterfactual run** $\theta'_0, \dots, \theta'_T$ starts from the same $\theta'_0 = \theta_0$,
# visits the same batches with the same step sizes, and differs in one thing only: $w_i = 0$ at step $s$,
# where $z_i \in B_s$. Then
#
# $$\mathrm{TSLOO}^{(s)}(z_i; z) = \ell(\theta'_T, z) - \ell(\theta_T, z), \tag{2.2}$$
#
# positive when removing $z_i$ *raises* the test loss, i.e. when $z_i$ **helped** (paper §2, Definition 1,
# which credits Hara et al., 2019). Two variants matter in practice:
#
# - **every occurrence**: $w_i = 0$ at every step whose batch holds $z_i$ (a point is seen once per epoch);
# - **renormalized**: the affected batch divides by $|B_s| - 1$ instead of $b$ — what a data loader that
#   drops the point would do. The default, dividing by $b$ still, is **zero-weight**; it matches the
#   paper's sum-over-the-batch convention (its step size is our $\eta_t/b$).
#
# Unlike the classical leave-one-out, which retrains from scratch (new random order, new noise), TSLOO
# holds the whole trajectory fixed, so the only difference between the two runs is the point.
#
# **Mind the sign when you read other papers.** The classical leave-one-out in the paper's §1 is
# written *with − without* (the model trained with the point, minus without it; applied to the test
# loss, a positive value then means the point *hurt*), and
# Koh & Liang's influence on the test loss, $\mathcal I_{\text{up,loss}}$, is positive when upweighting
# the point *raises* the loss, i.e. when it hurts. TSLOO, as defined above and used throughout this
# course, is *without − with* on the loss: positive = the point helped.

# %%
split = dt.datasets.moons(n_train=sized(100, 60), n_test=sized(100, 50), seed=SEED)
model = dt.models.mlp((2, 16, 2), seed=SEED)
n, batch_size, epochs, lr = len(split.train), 10, 3, 0.5
schedule = dt.Schedule.shuffled(n, batch_size, epochs, seed=SEED)
traj = dt.train(model, split.train, schedule, lr)
T = traj.T
p = int(traj.test_losses(split.train).argmax())        # the training point the final model fits worst
occurrences = schedule.occurrences(p)
print(f"T = {T} steps of {batch_size}; point {p} (label {int(split.train.y[p])}) is used at steps {occurrences}")

# %% [markdown]
# ## 2. Explore: `RemovalExplorer` (≈ 4 min)
#
# **Predict, then check.** Take any point and compare its removal at its **first** occurrence with its
# removal at its **last** one. Which moves the mean test loss more — for most points? Write your guess
# down, then try a few points in the widget; section 5 counts over all points, and over 8 more runs.
#
# Choose a training point and the step to remove it at (or every occurrence), and switch between
# zero-weight and renormalized. The widget shows the divergence curve and the TSLOO on every test point;
# the figure below is its own `figure()` for point $p$ removed everywhere.

# %%
explorer = widgets.RemovalExplorer(traj, split.test, point=p)
explorer.model.figure()

# %% tags=["widget"]
explorer

# %% [markdown]
# Things to try: a point removed in its first epoch vs its last; a point whose TSLOO changes sign between
# its occurrences; the same removal with *renormalize* on — the curve's start changes, then what?
# %% [markdown]
# ## 3. The key figure and the replay (≈ 3 min)
#
# Remove point $p$ at each of its three steps in turn, and at all three at once. Left: the divergence
# $\lVert\theta'_t-\theta_t\rVert$ along training (log scale; it is exactly zero before the removal, so
# those steps are not drawn). Right: the resulting TSLOO, averaged over the test set.

# %%
removals = {f"step {s}": [s] for s in occurrences} | {"every occurrence": None}
curves = {name: divergence(traj, p, None if steps is None else steps[0]) for name, steps in removals.items()}
values = {name: float(dt.exact_loo(traj, split.test, [p], steps)[0].mean()) for name, steps in removals.items()}
with plots.style():
    fig, ax = plots.new_figure(2, figsize=(10, 3.2))
    for k, (name, d) in enumerate(curves.items()):
        plots.divergence_curve(ax[0, 0], d, label=name, color=plots.COLORS[k])
    ax[0, 0].set_title(f"point {p}: how far the counterfactual run drifts")
    ax[0, 0].set_ylabel(r"$\|\theta'_t - \theta_t\|$")
    ax[0, 0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.3)                                 # the legend below the curves, not on them
    ax[0, 1].bar(list(values), list(values.values()), color=plots.COLORS[:len(values)])
    ax[0, 1].axhline(0, color="0.5", lw=0.6)
    ax[0, 1].set(ylabel="mean TSLOO (> 0: helped)", title="effect on the test loss")
fig

# %% [markdown]
# ### The replay, step by step
#
# What `dt.exact_loo` computes, and `counterfactual_params` returns as the whole path $\theta'_0,\dots,\theta'_T$:
#
# 1. For $t \le s$ nothing differs: $\theta'_t = \theta_t$ (the replay starts from the stored $\theta_s$).
# 2. At step $s$ both runs start from $\theta_s$, so the first difference is known exactly:
#
#    $$\delta = \theta'_{s+1} - \theta_{s+1} = \frac{\eta_s}{b}\,\nabla\ell(\theta_s, z_i). \tag{2.3}$$
#
# 3. From there each run takes its own SGD steps, and the TSLOO is (2.2).
#
# The next cell checks all three against the recorded run.

# %% tags=["nbval-check-output"]
s = occurrences[0]
theta = torch.stack([traj.params(t) for t in range(T + 1)])        # recorded θ_0 ... θ_T: [T+1, P]
theta_prime = counterfactual_params(traj, p, s)                     # counterfactual θ'_0 ... θ'_T
g = traj.objective.per_sample_grads(traj.params(s), split.train.X[[p]], split.train.y[[p]])[0]
delta = float(traj.lrs[s]) / batch_size * g
tsloo = traj.objective.losses(theta_prime[-1], split.test.X, split.test.y) - traj.test_losses(split.test)
print("1. θ'_t = θ_t for every t <= s:", torch.equal(theta_prime[:s + 1], theta[:s + 1]))
print("2. θ'_{s+1} - θ_{s+1} = (η/b)·∇ℓ(θ_s, z_p):", torch.allclose(theta_prime[s + 1] - theta[s + 1], delta, atol=1e-12))
print("3. ℓ(θ'_T) - ℓ(θ_T) = dt.exact_loo:", torch.allclose(tsloo, dt.exact_loo(traj, split.test, [p], [s])[0], atol=1e-12))

# %% [markdown]
# ## 4. After the removal: how much of the kick survives? (≈ 4 min)
#
# After step $s$ the gap evolves by the SGD step's Jacobian. By the mean value theorem
#
# $$\theta'_{t+1} - \theta_{t+1} = \big(I - \eta_t(\bar H_t + \lambda I)\big)\,(\theta'_t - \theta_t), \tag{2.4}$$
#
# with $\bar H_t$ the batch Hessian averaged along the segment between $\theta_t$ and $\theta'_t$. Directions
# of positive curvature shrink (when $\eta_t h < 2$), flat ones keep their size, negative curvature
# grows. Lesson 03 builds its approximation $K_t$ (lesson 00's box) on exactly this product. Here is the surviving fraction
# $\lVert\theta'_T-\theta_T\rVert / \lVert\delta\rVert$ for **every** (point, step) of the run —
# one batched replay per removal.

# %%
points, steps = schedule.occurrence_pairs()                          # every (point, step), in step order
gaps = divergences(traj, points, steps)                              # [n_occurrences, T+1]
kick = gaps[torch.arange(len(steps)), torch.tensor(steps) + 1]      # ‖δ‖, the jump at s+1
survival = gaps[:, -1] / kick
epoch = torch.tensor(steps) // (n // batch_size)
step_of = torch.tensor(steps)
first, middle, last = step_of <= 1, (step_of > T // 3) & (step_of < 2 * T // 3), step_of >= T - 3
for name, where in (("the first 2 steps", first), ("the middle third", middle), ("the last 3 steps", last)):
    print(f"removed in {name:17s}: median surviving fraction {survival[where].median():.2f}")
with plots.style():
    fig, ax = plots.new_figure(1, figsize=(6.5, 3))
    ax[0, 0].scatter(steps, survival, s=6, alpha=0.5, color=plots.COLORS[0], label="one (point, step)")
    median = [float(survival[step_of == t].median()) for t in range(T)]
    ax[0, 0].plot(range(T), median, color=plots.COLORS[3], lw=1.5, label="median per step")
    ax[0, 0].set(xlabel="removal step s", ylabel=r"$\|\theta'_T - \theta_T\| \,/\, \|\delta\|$", title="what is left of the kick at the end")
    ax[0, 0].legend(loc="upper left")
fig

# %% tags=["nbval-check-output"]
print("late kicks survive best: the last 3 steps keep over twice what the middle third keeps:",
      bool(survival[last].median() > 2 * survival[middle].median()))
print("early kicks are not absorbed: the first 2 steps keep more than 15% (median):",
      bool(survival[first].median() > 0.15))
print("the last 3 steps keep more than half (median; the very last step keeps all, by definition):",
      bool(survival[last].median() > 0.5))

# %% [markdown]
# The later the removal, the less training is left to absorb it: kicks from the last steps keep most of
# their size (more than half, in the median; the kick of the very last step has nothing after it and
# survives whole by definition). But the earliest kicks are **not** mostly absorbed — a sizeable
# fraction of them is still there at the end (the printout gives the medians), and the middle of
# training keeps fractions of the same order, in some runs less than the first steps, in some more. Whether the very first steps keep *more* than the middle (a U-shape) varies from
# run to run on this small problem; in larger models the paper finds a short early stretch of training
# whose data matter more than the data of the long middle — the **phases of influence** (paper §5.3,
# Figure 1; lesson 06 is about them). Either way the run after a removal is a different run.

# %% [markdown]
# ## 5. One step or every occurrence? (≈ 3 min)
#
# Removing $z_i$ at every occurrence applies several kicks. For small kicks the effects add to first
# order,
#
# $$\mathrm{TSLOO}^{\text{all}}(z_i) \approx \sum_{s:\,z_i\in B_s}\mathrm{TSLOO}^{(s)}(z_i); \tag{2.5}$$
#
# the
# difference is an interaction, second order in the kicks. `dt.exact_loo` with `steps=None` removes every
# occurrence; with a list of steps, one occurrence per row.

# %%
start = time.perf_counter()
per_step = dt.exact_loo(traj, split.test, points, steps).mean(1)     # one replay per (point, step)
seconds = time.perf_counter() - start
every = dt.exact_loo(traj, split.test, range(n)).mean(1)             # one replay per point
summed = torch.zeros(n, dtype=per_step.dtype).index_add_(0, torch.tensor(points), per_step)
agreement = dt.metrics.fidelity(summed, every)
print(f"{len(points)} single-step replays in {seconds:.1f} s; Spearman(sum of single steps, every occurrence) "
      f"= {agreement['spearman']:.3f}")
with plots.style():
    fig, ax = plots.new_figure(1, figsize=(4.5, 3.5))
    plots.fidelity_scatter(ax[0, 0], summed, every, "sum of single-step TSLOO")
    ax[0, 0].set_xlabel("TSLOO, every occurrence removed")
fig

# %% tags=["nbval-check-output"]
print("single-step TSLOO add up to the every-occurrence TSLOO (Spearman > 0.95):", bool(agreement["spearman"] > 0.95))

# %% [markdown]
# **Exercise A — which epoch matters most?** `per_step` holds the mean single-step TSLOO of every
# (point, step) in `steps`, and an epoch has `n // batch_size` steps. Which epoch (1, 2 or 3) has the
# largest mean $|\mathrm{TSLOO}|$? Does it fit the surviving fractions above? Write the grouping as a
# function first, `epoch_means(values, at_steps, steps_per_epoch)`: the mean $|\text{value}|$ of each
# epoch, epoch 1 first (the graded version also tries it on other values).

# %% [raw]
# # BEGIN QUESTION
# name: l02_dominant_epoch
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def epoch_means(values, at_steps, steps_per_epoch): ... ; then dominant_epoch = 1, 2 or 3
# BEGIN SOLUTION NO PROMPT
def epoch_means(values, at_steps, steps_per_epoch):
    """Mean |value| per epoch (epoch = step // steps_per_epoch), as a list, epoch 1 first."""
    epoch_of = torch.as_tensor(list(at_steps)) // steps_per_epoch
    return [float(values[epoch_of == e].abs().mean()) for e in range(int(epoch_of.max()) + 1)]


# END SOLUTION
dominant_epoch = 1 + int(np.argmax(epoch_means(per_step, steps, n // batch_size)))  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_dominant_epoch(dominant_epoch, per_step, steps, n // batch_size)

# %% [raw]
# # BEGIN TESTS

# %%
def test_dominant_epoch_of_this_run(dominant_epoch, per_step, steps, n, batch_size):
    from dve_teach.teach.exercises import lesson02 as ex
    feedback = ex.check_dominant_epoch(dominant_epoch, per_step, steps, n // batch_size)
    assert feedback, str(feedback)
test_dominant_epoch_of_this_run(dominant_epoch, per_step, steps, n, batch_size)

# %%
# HIDDEN
def test_epoch_means_on_other_values(epoch_means):
    import numpy as np
    import torch
    from dve_teach.teach.exercises import lesson02 as ex
    values = torch.tensor([1.0, -3.0, 2.0, 0.5, -0.5], dtype=torch.float64)
    got = [float(v) for v in epoch_means(values, [0, 1, 5, 6, 9], 5)]
    assert np.allclose(got, [2.0, 1.0]), "epoch_means: average the absolute values, epoch by epoch (step // steps_per_epoch)"
    gen = torch.Generator().manual_seed(2026)
    for per_epoch in (1, 4, 7):
        values = torch.randn(30, generator=gen, dtype=torch.float64) * torch.linspace(1, 3, 30, dtype=torch.float64)
        at_steps = list(range(30))
        means = epoch_means(values, at_steps, per_epoch)
        assert len(means) == (29 // per_epoch) + 1, "epoch_means should give one mean per epoch"
        feedback = ex.check_dominant_epoch(1 + int(np.argmax([float(m) for m in means])), values, at_steps, per_epoch)
        assert feedback, f"epoch_means with {per_epoch} steps per epoch: {feedback}"
test_epoch_means_on_other_values(epoch_means)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **The answer to section 2's question** (first or last occurrence — which moves the test loss more?).
#
# <details><summary>Answer</summary>
#
# In most runs, the last one, for most points: a late kick has little training after it to absorb it.
# But not in every run, and never for every point: the first kick is usually the *larger* one (early
# gradients are large), so it can win although less of it survives. The cell below counts, over all
# points, how often the last occurrence's |TSLOO| beats the first's — in this run and in 8 more runs
# (other data, start and order). The count changes a lot between runs; the median is what we check.
# </details>

# %%
by_point = {}
for k, (i, t) in enumerate(zip(points, steps)):
    by_point.setdefault(i, []).append(float(per_step[k]))
late_wins = sum(abs(v[-1]) > abs(v[0]) for v in by_point.values()) / len(by_point)
print(f"the last occurrence moves the test loss more than the first for {late_wins:.0%} of the points")

def last_beats_first(seed):
    """The same setup from `seed` (data, start, order): share of points whose last |TSLOO| beats the first."""
    sp = dt.datasets.moons(n_train=sized(100, 60), n_test=sized(100, 50), seed=seed)
    run = dt.train(dt.models.mlp((2, 16, 2), seed=seed), sp.train,
                   dt.Schedule.shuffled(len(sp.train), batch_size, epochs, seed=seed), lr)
    pts, sts = run.schedule.occurrence_pairs()
    first_last = {}
    for i, v in zip(pts, dt.exact_loo(run, sp.test, pts, sts, progress=False).mean(1).abs().tolist()):
        first_last.setdefault(i, []).append(v)
    return sum(v[-1] > v[0] for v in first_last.values()) / len(first_last)

more_runs = [last_beats_first(1000 + 8 * SEED + r) for r in range(8)]
print("8 more runs:", " ".join(f"{w:.0%}" for w in more_runs))

# %% tags=["nbval-check-output"]
print("median over 8 runs: for most points the last occurrence matters more than the first:",
      bool(np.median(more_runs) > 0.5))

# %% [markdown]
# ## 6. Zero-weight or renormalized? (≈ 3 min)
#
# With $m = |B_s|$ points in the batch and $S = \sum_{j\in B_s}\nabla\ell(\theta_s, z_j)$, the first
# difference is (`dve_teach.training.trajectory.removal_directions`)
#
# $$\delta^{\text{zero-weight}} = \frac{\eta_s}{b}\,g_i, \qquad
# \delta^{\text{renorm}} = \eta_s\Big[\frac{g_i}{m-1} - S\Big(\frac1{m-1} - \frac1b\Big)\Big]
# \;\overset{m=b}{=}\; \frac{\eta_s}{b-1}\,\big(g_i - \bar g_s\big), \tag{2.6}$$
#
# with $\bar g_s = S/b$ the batch's mean gradient. Renormalizing removes the point *and* rescales the
# others, so $\delta^{\text{renorm}} = \frac{b}{b-1}\,\delta^{\text{zero-weight}} - \frac{\eta_s}{b-1}\,\bar g_s$:
# a rescaling plus a shift **shared by every point of the batch**. To first order the two variants rank
# the points of one batch identically and differ by a per-step offset.

# %%
renorm = dt.exact_loo(traj, split.test, points, steps, renormalize=True).mean(1)
offset = renorm - batch_size / (batch_size - 1) * per_step          # should be ≈ one number per step
within = torch.stack([offset[step_of == t].std() for t in range(T)]).mean()
across = torch.stack([offset[step_of == t].mean() for t in range(T)]).std()
residual = torch.cat([offset[step_of == t] - offset[step_of == t].mean() for t in range(T)])   # after one offset per step
left = float(residual.std() / renorm.std())
print(f"offset: spread within a batch {within:.1e} (mean over steps), spread between steps {across:.1e}")
print(f"after one offset per step, what is left spreads {left:.0%} as much as the renormalized values")
late_within = torch.stack([offset[step_of == t].std() for t in range(T - 3, T)])
print("within-batch spread at the last 3 steps:", " ".join(f"{v:.1e}" for v in late_within.tolist()))
with plots.style():
    fig, ax = plots.new_figure(2, figsize=(9, 3.2))
    def centred(v):                                                 # minus the mean of its own batch
        return v - torch.stack([v[step_of == t].mean() for t in range(T)])[step_of]
    scaled, centred_renorm = batch_size / (batch_size - 1) * centred(per_step), centred(renorm)
    order = torch.argsort(step_of, descending=True)                 # late steps drawn first: early ones on top
    sc = ax[0, 0].scatter(scaled[order], centred_renorm[order], c=step_of[order], s=8, cmap="viridis")
    lim = [float(scaled.min()), float(scaled.max())]
    ax[0, 0].plot(lim, lim, "--", color="0.5", lw=0.8)
    ax[0, 0].set(xlabel="b/(b−1) · zero-weight, minus its batch mean", ylabel="renormalized, minus its batch mean",
                 title="inside each batch (dashed: y = x)")
    fig.colorbar(sc, ax=ax[0, 0], label="step")
    ax[0, 1].scatter(steps, offset, s=8, color=plots.COLORS[0])
    ax[0, 1].set(xlabel="step s", ylabel="renorm − b/(b−1)·zero-weight", title="the offset, per step")
fig

# %% tags=["nbval-check-output"]
print("renormalized ≈ b/(b-1) · zero-weight + one offset per batch (what is left: under 30% of the spread):",
      left < 0.3)

# %% [markdown]
# Over all (point, step) pairs, one offset per step accounts for the difference closely (checked: what
# is left spreads less than 30% as much as the renormalized values themselves). The left panel takes
# each batch's mean out of both variants: to first order, (2.6) puts every point on the dashed line
# $y = x$ — compare the colours (steps) of the points that leave it. Look at the last steps in the
# right panel, too (and the spreads printed for them): there the points of a batch can spread much more. The first-order argument holds for small kicks; the last steps' removals
# are the least absorbed (section 4), so the terms it drops show most there — and
# those are the steps with the largest TSLOO, where the choice between the two variants matters most.

# %% [markdown]
# ## 7. The cost of doing it exactly (≈ 4 min)
#
# One exact TSLOO value for $(z_i, s)$ is one replay of $T - s$ steps. Every (point, step) of a run
# with $N$ points, $E$ epochs and batch size $b$ is $NE$ replays of on average about $T/2$ steps, with
# $T = NE/b$:
#
# $$\sum_{(i,s)} (T - s) \;\approx\; NE\cdot\frac T2 = \frac{N^2E^2}{2b}\ \text{SGD steps}, \tag{2.7}$$
#
# **quadratic** in the number of points. Running many replays
# side by side (`exact_loo` vmaps them in chunks) makes each replayed step cheaper; it does not change
# how many there are. The cell below counts them for growing training sets and times the replays.

# %%
sizes = sized([20, 40, 80, 160], [20, 40, 80])                    # doubling, multiples of the batch size
counts, times = [], []
for N in sizes:
    grown = dt.datasets.moons(n_train=N, n_test=20, seed=SEED)
    run = dt.train(model, grown.train, dt.Schedule.shuffled(N, batch_size, epochs, seed=SEED), lr)
    pts, sts = run.schedule.occurrence_pairs()
    counts.append(sum(run.T - s for s in sts))
    start = time.perf_counter()
    dt.exact_loo(run, grown.test, pts, sts)
    times.append(time.perf_counter() - start)
for N, c, t in zip(sizes, counts, times):
    print(f"N = {N:3d}: {N * epochs:4d} (point, step) pairs, {c:6d} replayed steps, {t:.2f} s")
with plots.style():
    fig, ax = plots.new_figure(2, figsize=(9, 3))
    ax[0, 0].loglog(sizes, counts, "o-", color=plots.COLORS[0], label="replayed steps")
    ax[0, 0].loglog(sizes, [counts[0] * (N / sizes[0]) ** 2 for N in sizes], "--", color="0.5", label="∝ N²")
    ax[0, 0].set(xlabel="training points N", ylabel="SGD steps replayed", title="exact TSLOO of every (point, step)")
    ax[0, 0].legend(loc="upper left")
    ax[0, 1].loglog(sizes, times, "s-", color=plots.COLORS[1])
    ax[0, 1].set(xlabel="training points N", ylabel="seconds (this machine)", title="measured time of those replays")
fig

# %% tags=["nbval-check-output"]
growth = [c2 / c1 for c1, c2 in zip(counts, counts[1:])]
print("doubling N multiplies the replayed steps by about 4 (3.5 to 4.5):", all(3.5 < g < 4.5 for g in growth))

# %% [markdown]
# On these toy sizes the seconds are small and partly fixed overhead, so read the count, not the clock:
# a million points seen once with $b = 1000$ would mean about $N^2/(2b) = 5\cdot10^8$ replayed steps,
# half a million trainings' worth.

# %% [markdown]
# **Exercise B — the cost at another batch size.** Predict first: if this lesson's run used batches of
# **5** instead of 10 (same points, same 3 epochs), would the exact TSLOO of every (point, step) replay
# about half as many SGD steps, the same, or about twice as many? Then count them exactly: a removal at
# step $s$ replays $T - s$ steps (`dt.Schedule.shuffled(n, 5, epochs)` builds such a run's schedule;
# `occurrence_pairs()` lists its (point, step) pairs). Compare with (2.7). Write the count as a function
# of a schedule first, `replayed_steps(sched)` (the graded version also tries it on other schedules).

# %% [raw]
# # BEGIN QUESTION
# name: l02_replayed_steps_b5
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def replayed_steps(sched): ... ; then replayed_steps_b5 = an int
# BEGIN SOLUTION NO PROMPT
def replayed_steps(sched):
    """A removal at step s replays T - s steps: sum that over every (point, step) of the schedule."""
    return sum(len(sched) - s for s in sched.occurrence_pairs()[1])


# END SOLUTION
replayed_steps_b5 = replayed_steps(dt.Schedule.shuffled(n, 5, epochs))  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_replayed_steps_for(replayed_steps_b5, n, 5, epochs, current=schedule)

# %% [raw]
# # BEGIN TESTS

# %%
def test_replayed_steps_b5(replayed_steps_b5, n, epochs, schedule):
    from dve_teach.teach.exercises import lesson02 as ex
    feedback = ex.check_replayed_steps_for(replayed_steps_b5, n, 5, epochs, current=schedule)
    assert feedback, str(feedback)
test_replayed_steps_b5(replayed_steps_b5, n, epochs, schedule)

# %%
# HIDDEN
def test_replayed_steps_on_other_schedules(replayed_steps, schedule):
    import dve_teach as dt
    from dve_teach.teach.exercises import lesson02 as ex
    feedback = ex.check_replayed_steps(replayed_steps(schedule), schedule)
    assert feedback, f"replayed_steps(schedule), the lesson's own run: {feedback}"
    for n_, b, epochs_ in [(12, 1, 1), (12, 4, 2), (30, 10, 3), (7, 7, 2)]:
        sched = dt.Schedule.shuffled(n_, b, epochs_, seed=3)
        feedback = ex.check_replayed_steps(replayed_steps(sched), sched)
        assert feedback, f"replayed_steps for {n_} points, batches of {b}, {epochs_} epochs: {feedback}"
test_replayed_steps_on_other_schedules(replayed_steps, schedule)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# That is why lessons 03 and 04 replace the replays by one backward pass over the trajectory.

# %% [markdown]
# ## What you learned
#
# - $\mathrm{TSLOO}^{(s)}(z_i; z) = \ell(\theta'_T, z) - \ell(\theta_T, z)$ (2.2): replay the recorded run with
#   $w_i = 0$ at step $s$ (or at every occurrence), everything else fixed. Positive = the point helped.
# - The counterfactual equals the run until the removal, jumps by exactly $\frac{\eta_s}{b}\nabla\ell(\theta_s, z_i)$,
#   then evolves by $(I - \eta_t(\bar H_t+\lambda I))$ step after step: late kicks survive best, and even
#   the earliest ones leave a sizeable fraction behind.
# - Removing every occurrence ≈ the sum of single-step removals. Renormalizing ≈ rescaling by
#   $b/(b-1)$ plus one offset per batch.
# - Exact values cost one replay per (point, step): the replayed steps grow with the square of the
#   number of points, and vmapping the replays does not change their count.
#
# ## Exercises
#
# 1. **Helpful early, harmful late?** Find a point whose single-step TSLOO changes sign between its
#    occurrences (`per_step`, `points`, `steps`). Where does it sit (`plots.decision_boundary`)?
# 2. **Inside a batch vs between batches.** (a) Reverse the order of the points *inside* every batch
#    (`dt.Schedule(reversed_batches, batch_size, n)`) and check that $\theta_T$ does not change.
#    (b) Move point $p$'s last occurrence to another batch (`schedule.move(p, s_from, s_to)`), retrain
#    and compare its single-step TSLOO before and after.
# 3. **Learning rate and memory.** Retrain with `lr` 0.1 and 1.0, remove $p$ at its first occurrence and
#    plot `divergence(...) / ‖δ‖`. Does more of the kick survive with a smaller step? Explain with
#    $\lVert I - \eta H\rVert$ (and think about how many steps each run has to absorb it).
#
# Worked solutions: in this lesson's source, [`src/02_trajectory_specific_loo.py`](src/02_trajectory_specific_loo.py),
# between the lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-3.
# BEGIN SOLUTION NO PROMPT
# 1. Points whose single-step TSLOO changes sign between occurrences.
values_of = {}
for point_i, value_i in zip(points, per_step.tolist()):
    values_of.setdefault(point_i, []).append(value_i)
sign_changes = [k for k, v in values_of.items() if min(v) < 0 < max(v)]
print(f"1. {len(sign_changes)} points change sign between their occurrences, e.g. {sign_changes[:5]}")

# 2a. The order of the points inside a batch does not matter: the step uses their sum.
reversed_inside = dt.Schedule([b[::-1] for b in schedule.batches], batch_size, n)
same_run = dt.train(model, split.train, reversed_inside, lr)
print(f"2a. max |θ_T − θ_T(reversed inside batches)| = {(same_run.final - traj.final).abs().max():.1e}")

# 2b. Which batch a point is in does matter: move p's last occurrence to the nearest earlier batch that
#     does not hold it, retrain, and compare its single-step TSLOO.
move_from = schedule.occurrences(p)[-1]
move_to = next(t for t in range(move_from - 1, -1, -1) if p not in schedule.batches[t])
moved_run = dt.train(model, split.train, schedule.move(p, move_from, move_to), lr)
print(f"2b. point {p} at step {move_from}: {float(dt.exact_loo(traj, split.test, [p], [move_from]).mean()):+.2e}; "
      f"moved to step {move_to}: {float(dt.exact_loo(moved_run, split.test, [p], [move_to]).mean()):+.2e}")

# 3. Learning rate and memory: the fraction of the kick left after removing p at its first step.
first_step = schedule.occurrences(p)[0]
for eta in (0.1, 0.5, 1.0):
    eta_run = dt.train(model, split.train, schedule, eta)
    gap = divergence(eta_run, p, first_step)
    print(f"3. lr {eta:3.1f}: ‖δ‖ = {gap[first_step + 1]:.2e}; fraction left at the end "
          f"{gap[-1] / gap[first_step + 1]:.2f}")
# Each step multiplies the gap by (I − η H̄_t): with a small η the factor is close to the identity,
# so more of the (smaller, ∝ η) kick can survive; a larger η contracts faster along curved directions
# as long as η h < 2. Compare with the printed fractions. To plot one:
# plots.divergence_curve(ax, gap / gap[first_step + 1], [first_step]).
# END SOLUTION

# %% [markdown]
# ---
# Next: [03 · Unrolling SGD](03_unrolling_sgd.ipynb) — approximate every TSLOO at once from one reverse
# sweep with Hessian-vector products.
