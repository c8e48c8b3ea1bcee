# %% [markdown]
# # 01 · Order matters
#
# *About 20 minutes. Lesson 00 comes first.*
#
# Lesson 00 asked what one training point was worth to a trained network. This lesson asks a question
# that comes before it: does it matter **when** the network saw its data? Influence functions assume it
# does not — that training forgets its order (paper §1). Plain SGD remembers.
#
# ## Goals
#
# - Measure how much the final test loss moves when only the order of the data changes: 64 random
#   orders, trained together in one batched computation.
# - Compare deliberate orders — curricula easy→hard, hard→easy and class-sorted — with random ones.
# - See why a score computed from the final model alone (an influence function) gives a point one number
#   wherever it sat in training, while the exact trajectory-specific leave-one-out changes with the moment.

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import numpy as np
import torch

import dve_teach as dt
from dve_teach import plots, widgets
from dve_teach.training.orders import final_test_losses

np.random.seed(0); torch.manual_seed(0)   # seed everything (the orders below have their own seeds)
torch.set_num_threads(1)                  # tiny models: one thread is fastest (and fair to other users)
sized = dt.config.sized                   # sized(full, fast): smaller problems when DVE_TEACH_FAST=1

# %% [markdown]
# ## The setup
#
# Plain mini-batch SGD. At step $t$ the batch $B_t$ (nominal size $b$) moves the parameters
#
# $$\theta_{t+1} = \theta_t - \eta_t\Big(\frac1b\sum_{i\in B_t}\nabla_\theta\,\ell(\theta_t, z_i) + \lambda\,\theta_t\Big),
# \qquad t = 0,\dots,T-1 .$$
#
# The **order** is the sequence $B_0, B_1, \dots, B_{T-1}$ — a `dt.Schedule`. Below, every run starts
# from the same $\theta_0$, uses the same step size $\eta$ and the same 200 points for the same number
# of epochs; only the order differs. (The paper writes the update as a sum over the batch; its step
# size is our $\eta_t/b$, paper §2.)

# %%
split = dt.datasets.moons(n_train=200, n_test=sized(200, 100), seed=0)   # 2-D, two classes
model = dt.models.mlp((2, 16, 2), seed=0)     # a 2-16-2 tanh network: the same θ_0 for every run
batch_size, epochs, lr = 20, sized(10, 5), 1.0
n = len(split.train)
T = epochs * n // batch_size
print(f"{n} training points, {epochs} epochs of {n // batch_size} steps: T = {T} SGD steps per run")

# %% [markdown]
# ## 64 orders at once
#
# `final_test_losses` trains one model per schedule and returns each final model's loss on every test
# point. It does not loop over the runs: it stacks their parameters into a matrix and applies the same
# functional SGD step as `dt.train` to all of them at once (`torch.func.vmap`), so row $r$ is exactly
# what `dt.train(model, data, shuffles[r], lr)` would give.

# %%
R = 64
shuffles = [dt.Schedule.shuffled(n, batch_size, epochs, seed=r) for r in range(R)]
losses = final_test_losses(model, split.train, split.test, shuffles, lr)   # Tensor[R, n_test]
loss_per_order = losses.mean(1)
best, worst = int(loss_per_order.argmin()), int(loss_per_order.argmax())
print(f"final test loss over {R} shuffles: {loss_per_order.min():.3f} (shuffle {best}) to "
      f"{loss_per_order.max():.3f} (shuffle {worst}); mean {loss_per_order.mean():.3f}, "
      f"std {loss_per_order.std():.3f}")

# %% [markdown]
# ### The key figure
#
# Left: one final test loss per order. Middle and right: the decision boundaries of the best and the
# worst of the 64 shuffles (shading = predicted probability of class 1, black line = 0.5).

# %%
runs = {r: dt.train(model, split.train, shuffles[r], lr) for r in (best, worst)}
with plots.style():
    fig, ax = plots.new_figure(3, figsize=(10, 3.2))
    plots.spread_histogram(ax[0, 0], loss_per_order)
    ax[0, 0].set_title(f"{R} random orders of the same data")
    for a, (r, traj) in zip(ax[0, 1:], runs.items()):
        plots.decision_boundary(a, traj, title=f"shuffle {r}: test loss {loss_per_order[r]:.3f}")
fig

# %% tags=["nbval-check-output"]
print("orders trained:", R, "| one test loss per order:", tuple(loss_per_order.shape))
print("same data, same start, different final models:", bool(loss_per_order.max() - loss_per_order.min() > 1e-3))

# %% [markdown]
# ### Why SGD remembers its order
#
# Take two steps from $\theta$ with batches $a$ and $b$, and write $g_a, H_a$ for batch $a$'s gradient and
# Hessian at $\theta$. Expanding $g_b(\theta - \eta g_a) \approx g_b - \eta H_b g_a$,
#
# $$\theta^{(a\to b)}_2 - \theta^{(b\to a)}_2 = \eta^2\,\big(H_b\, g_a - H_a\, g_b\big) + O(\eta^3).$$
#
# Each swap moves the result by a second-order amount, but a run makes thousands of such choices and the
# differences compound. Only when training is run to the unique minimum of a strictly convex loss does
# the end point forget the path — the assumption influence functions are built on (paper §1). Exercise 2
# checks this formula numerically.

# %% [markdown]
# ## Curricula
#
# A curriculum is an order chosen on purpose. Call a point's **difficulty** its loss under a model
# trained once in a random order (low loss = easy). Three curricula, each repeating the same order every
# epoch:
#
# - **easy→hard** and **hard→easy** — sorted by difficulty;
# - **class-sorted** — all of class 0, then all of class 1.
#
# They have the same batch sizes step by step as the shuffles, so `final_test_losses` trains them together too.

# %%
reference = dt.train(model, split.train, shuffles[0], lr)
difficulty = reference.test_losses(split.train)     # each training point's loss under the reference model
curricula = {
    "easy→hard": dt.Schedule.curriculum(difficulty, batch_size, epochs),
    "hard→easy": dt.Schedule.curriculum(difficulty, batch_size, epochs, descending=True),
    "class-sorted": dt.Schedule.curriculum(split.train.y, batch_size, epochs),
}
curriculum_loss = final_test_losses(model, split.train, split.test, list(curricula.values()), lr).mean(1)
for name, loss in zip(curricula, curriculum_loss):
    print(f"{name:13s} test loss {loss:.3f}: {int((loss_per_order < loss).sum()):2d} of {R} shuffles end lower")

# %%
with plots.style():
    fig, ax = plots.new_figure(3, figsize=(10, 3.2))
    for a, (name, schedule), loss in zip(ax[0], curricula.items(), curriculum_loss):
        plots.decision_boundary(a, dt.train(model, split.train, schedule, lr), title=f"{name}: test loss {loss:.3f}")
fig

# %% [markdown]
# On this problem all three curricula end worse than (nearly) every shuffle. The **last** batches of
# each epoch pull hardest on the final model: class-sorted training ends every epoch on class 1 only,
# and the boundary is dragged up into class 0; easy→hard ends every epoch on the hardest points, those
# near the boundary and across it. An order is a choice with consequences — and a good data value should
# be able to say *when* a point helped.

# %% [markdown]
# ## One number per point, or one per moment?
#
# The **influence function** (Koh & Liang, 2017) estimates the effect of removing $z_i$ from the
# *final* objective, using only the final parameters $\theta_T$:
#
# $$\mathrm{IF}(z_i; z) = \frac1n\,\nabla\ell(\theta_T, z)^\top (H + \mu I)^{-1}\,\nabla\ell(\theta_T, z_i),
# \qquad H = \frac1n\sum_{j=1}^n \nabla^2\ell(\theta_T, z_j).$$
#
# It sees $z_i$ only through $\nabla\ell(\theta_T, z_i)$ — not through *when* $z_i$ was used. The
# **trajectory-specific leave-one-out** (paper §2, Definition 1; lesson 02) instead replays the recorded run
# with $z_i$ removed at the step $s$ where it was used and compares the final test losses:
#
# $$\mathrm{TSLOO}^{(s)}(z_i; z) = \ell(\theta'_T, z) - \ell(\theta_T, z)\qquad(>0:\ z_i \text{ helped}).$$
#
# **Experiment.** Take the training point the reference model is most sure is class 0, and add six
# copies of it **labelled 1** (a label error). Copy $k$ joins the batch of one step $s_k$, spread from
# the first step to the last; everything else is shuffle 0. (The copies are extra: their batch holds
# $b+1$ points while the divisor stays $b$.)

# %%
i = int(reference.predict(split.train.X).softmax(1)[:, 0].argmax())   # most confidently class 0
K = 6
steps = np.linspace(0, T - 1, K).round().astype(int).tolist()
copies = list(range(n, n + K))                                        # their indices in the new data
data = dt.Data(torch.cat([split.train.X, split.train.X[i].repeat(K, 1)]),
               torch.cat([split.train.y, torch.ones(K, dtype=torch.int64)]))
batches = [list(batch) for batch in shuffles[0].batches]
for copy, s in zip(copies, steps):
    batches[s].append(copy)                                           # copy k is seen once, at step s_k
traj = dt.train(model, data, dt.Schedule(batches, batch_size, n + K), lr)

if_score = dt.influence_function(traj, split.test, damping=0.2)[copies].mean(1)
tsloo = dt.exact_loo(traj, split.test, copies, steps).mean(1)         # removed at its one step
for s, a, e in zip(steps, if_score, tsloo):
    print(f"copy seen at step {s:3d}:  influence function {a:+.4f}   exact TSLOO {e:+.4f}")

# %%
with plots.style():
    fig, ax = plots.new_figure(1, figsize=(6.5, 3))
    a = ax[0, 0]
    a.plot(steps, tsloo, "o-", color=plots.COLORS[0], label="exact TSLOO (removed at its step)")
    a.plot(steps, if_score, "s--", color=plots.COLORS[1], label="influence function (final model)")
    a.axhline(0, color="0.5", lw=0.6)
    a.set(xlabel="step at which the copy was seen", ylabel="Δ mean test loss if removed",
          title="six identical mislabelled copies")
    a.legend(loc="lower left")
fig

# %% tags=["nbval-check-output"]
print("the influence function gives all six copies the same score:", bool(if_score.max() - if_score.min() < 1e-9))
print("the exact TSLOO differs between the copies:", bool(tsloo.max() - tsloo.min() > 1e-4))
print("the copy seen at the last step is the most harmful:", int(tsloo.argmin()) == K - 1)

# %% [markdown]
# The copies are identical, so their gradients at $\theta_T$ are identical and the influence function
# *must* score them alike — whatever the order (paper §1 makes exactly this point about duplicates).
# The replay disagrees: a label error seen at the last step is still in the final model, while one seen
# early has been mostly overwritten by the steps after it. Note also the damping $\mu = 0.2$: at
# $\theta_T$ the Hessian $H$ is not positive definite (SGD stopped far from a minimum of a non-convex
# loss), another assumption of the influence function that the run does not meet.

# %% [markdown]
# ## Explore: `OrderExplorer`
#
# Pick a shuffle seed or a curriculum; the widget retrains on that order and shows its decision boundary
# and where its test loss falls among the 64 shuffles. The figure below is the widget's own `figure()`
# for shuffle 0, so it is visible without a running kernel.

# %%
problem = widgets.Problem(model, split.train, split.test, lr, batch_size, epochs)
explorer = widgets.OrderExplorer(problem, n_orders=R)
explorer.model.figure()

# %%
explorer

# %% [markdown]
# Things to try: find the seed with the lowest test loss (is its boundary visibly different?), then
# switch to *class-sorted* and watch the boundary slide toward one class. The readout counts how many of
# the 64 shuffles end lower than the current order.

# %% [markdown]
# ## What you learned
#
# - Same data, same initialisation, same step sizes: a different order gives a different model. Over 64
#   shuffles the final test loss has a visible spread, and batched training (`dve_teach.training.orders`) makes
#   such experiments cheap.
# - SGD steps do not commute: swapping two steps moves the result by $\eta^2(H_b g_a - H_a g_b)$, and
#   the effects compound over a run. A curriculum can end far from every random order.
# - An influence function, computed from $\theta_T$ alone, gives a point one number wherever it was seen.
#   The exact trajectory-specific leave-one-out gives one number per **(point, moment)**: the same label
#   error costs far more when it is seen late.
#
# ## Exercises
#
# 1. **Batch size.** Repeat the 64-shuffle experiment with `batch_size` 5 and 50 (same epochs). Which spread
#    of test losses is wider, and why might it be?
# 2. **Two steps that do not commute.** Take $\theta_{T-2}$ of the run on `shuffles[0]` and apply its
#    last two batches $a = B_{T-2}$ and $b = B_{T-1}$ in both orders, with step sizes $\eta$ = 1.0, 0.3
#    and 0.1. Compare the difference with $\eta^2(H_b g_a - H_a g_b)$ (`traj.objective.batch_grad` and
#    `traj.objective.hvp` give $g$ and $Hv$). How does the relative error scale with $\eta$?
# 3. **Your own curriculum.** Order the points from left to right (by their first coordinate) with
#    `dt.Schedule.curriculum`. Where does it land among the shuffles? Then redo the six-copies
#    experiment with the copies labelled *correctly* (class 0): does the exact TSLOO still depend on the
#    step, and what is its sign?
#
# Solutions: run `%load solutions/01_order_matters_solutions.py` in a new cell (it reuses this lesson's
# variables when they exist).

# %% [markdown]
# ---
# Next: [02 · Trajectory-specific leave-one-out](02_trajectory_specific_loo.ipynb) — the definition, the replay
# behind `dt.exact_loo`, and what happens to $\theta'_t - \theta_t$ after a removal.
