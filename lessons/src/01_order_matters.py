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
# # 01 · Order matters
#
# *About 25 minutes. Lesson 00 comes first.*
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
#
# Sections: the setup (≈ 1 min) · 1. 64 orders at once (≈ 3 min) · 2. explore orders in a widget (≈ 4 min) · 3. why SGD
# remembers (≈ 2 min) · 4. curricula (≈ 3 min) · 5. one number per point, or one per moment? (≈ 6 min)
# · 6. two exercises (≈ 5 min). Symbols as in [lesson 00's notation box](00_start_here.ipynb)
# ($\theta_t$, $B_t$, $b$, $\eta_t$, TSLOO with positive = helped); equations are numbered (1.k).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import warnings

import numpy as np
import torch

import dve_teach as dt
from dve_teach import plots, widgets
from dve_teach.teach.exercises import lesson01 as ex
from dve_teach.training.orders import final_test_losses

SEED = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
np.random.seed(SEED); torch.manual_seed(SEED)   # seed everything (the orders below have their own seeds)
torch.set_num_threads(1)                  # tiny models: one thread is fastest (and fair to other users)
sized = dt.config.sized                   # sized(full, fast): smaller problems when DVE_TEACH_FAST=1

# %% [markdown]
# ## The setup (≈ 1 min)
#
# Plain mini-batch SGD. At step $t$ the batch $B_t$ (nominal size $b$) moves the parameters
#
# $$\theta_{t+1} = \theta_t - \eta_t\Big(\frac1b\sum_{i\in B_t}\nabla_\theta\,\ell(\theta_t, z_i) + \lambda\,\theta_t\Big),
# \qquad t = 0,\dots,T-1 . \tag{1.1}$$
#
# The **order** is the sequence $B_0, B_1, \dots, B_{T-1}$ — a `dt.Schedule`. Below, every run starts
# from the same $\theta_0$, uses the same step size $\eta$ and the same 200 points for the same number
# of epochs; only the order differs. (The paper writes the update as a sum over the batch; its step
# size is our $\eta_t/b$, paper §2.)

# %%
split = dt.datasets.moons(n_train=200, n_test=sized(200, 100), seed=SEED)   # 2-D, two classes
model = dt.models.mlp((2, 16, 2), seed=SEED)  # a 2-16-2 tanh network: the same θ_0 for every run
batch_size, epochs, lr = 20, sized(10, 5), 1.0
n = len(split.train)
T = epochs * n // batch_size
print(f"{n} training points, {epochs} epochs of {n // batch_size} steps: T = {T} SGD steps per run")

# %% [markdown]
# ## 1. 64 orders at once (≈ 3 min)
#
# **Predict.** 64 runs share everything but the order of the batches. Will their final test losses
# agree to within a percent or two, or spread by more?
#
# `final_test_losses` trains one model per schedule and returns each final model's loss on every test
# point. It does not loop over the runs: it stacks their parameters into a matrix and applies the same
# functional SGD step as `dt.train` to all of them at once (`torch.func.vmap`), so row $r$ is exactly
# what `dt.train(model, data, shuffles[r], lr)` would give.

# %%
R = 64
shuffles = [dt.Schedule.shuffled(n, batch_size, epochs, seed=1000 * SEED + r) for r in range(R)]
losses = final_test_losses(model, split.train, split.test, shuffles, lr)   # Tensor[R, n_test]
loss_per_order = losses.mean(1)
best, worst = int(loss_per_order.argmin()), int(loss_per_order.argmax())
print(f"final test loss over {R} shuffles: {loss_per_order.min():.3f} (shuffle {best}) to "
      f"{loss_per_order.max():.3f} (shuffle {worst}); mean {loss_per_order.mean():.3f}, "
      f"std {loss_per_order.std():.3f}")

# %% [markdown]
# ### The key figure
#
# Left: one final test loss per order. Next: the decision boundaries of the best and the worst of the
# 64 shuffles (shading = predicted probability of class 1, black line = 0.5). Right: where the two
# models differ — P(class 1) of the worst minus that of the best, with both boundaries (best solid,
# worst dashed). Two boundaries can lie close together while the probabilities around them, and so
# the losses, differ (exercise A counts on how many test points the best order wins).

# %%
runs = {r: dt.train(model, split.train, shuffles[r], lr) for r in (best, worst)}
with plots.style():
    fig, ax = plots.new_figure(4, figsize=(13, 3.2))
    plots.spread_histogram(ax[0, 0], loss_per_order)
    ax[0, 0].set_title(f"{R} random orders of the same data")
    for a, (r, traj) in zip(ax[0, 1:3], runs.items()):
        plots.decision_boundary(a, traj, title=f"shuffle {r}: test loss {loss_per_order[r]:.3f}")
    plots.probability_difference(ax[0, 3], runs[best], runs[worst], split.test,
                                 title="P(class 1): worst − best, test points")
fig

# %% tags=["nbval-check-output"]
spread = (loss_per_order.max() - loss_per_order.min()) / loss_per_order.mean()
print("orders trained:", R, "| one test loss per order:", tuple(loss_per_order.shape))
print("same data, same start: best and worst order differ by more than 10% of the mean test loss:",
      bool(spread > 0.1))

# %% [markdown]
# ## 2. Explore: `OrderExplorer` (≈ 4 min)
#
# **Predict, then check.** Besides random shuffles, the widget offers three *curricula* — orders chosen
# on purpose, each repeated every epoch: easy→hard and hard→easy (sorted by each point's loss under a
# model trained once in a random order) and class-sorted (all of class 0, then all of class 1). Before
# you pick *class-sorted*: will it end better or worse than most of the shuffles — and will its
# boundary look like a shuffle's? Write your guess down; section 4 answers it.
#
# Pick a shuffle seed or a curriculum; the widget retrains on that order and shows its decision boundary
# and where its test loss falls among the 64 shuffles. The figure below is the widget's own `figure()`
# for shuffle 0, so it is visible without a running kernel.

# %%
problem = widgets.Problem(model, split.train, split.test, lr, batch_size, epochs)
explorer = widgets.OrderExplorer(problem, n_orders=R)
explorer.model.figure()

# %% tags=["widget"]
explorer

# %% [markdown]
# Things to try: find the seed with the lowest test loss (is its boundary visibly different?), then
# switch to *class-sorted*, then to the two difficulty curricula. The readout counts how many of the 64
# shuffles end lower than the current order.
# %% [markdown]
# ## 3. Why SGD remembers its order (≈ 2 min)
#
# Take two steps from $\theta$ with batches $a$ and $b$, and write $g_a, H_a$ for batch $a$'s gradient and
# Hessian at $\theta$. Expanding $g_b(\theta - \eta g_a) \approx g_b - \eta H_b g_a$,
#
# $$\theta^{(a\to b)}_2 - \theta^{(b\to a)}_2 = \eta^2\,\big(H_b\, g_a - H_a\, g_b\big) + O(\eta^3). \tag{1.2}$$
#
# Each swap moves the result by a second-order amount, but a run makes thousands of such choices and the
# differences compound. Only when training is run to the unique minimum of a strictly convex loss does
# the end point forget the path — the assumption influence functions are built on (paper §1). Exercise 2
# checks (1.2) numerically.

# %% [markdown]
# ## 4. Curricula (≈ 3 min)
#
# The widget's three curricula, computed here for every run of the lesson. A point's **difficulty** is
# its loss under a model trained once in a random order (low loss = easy). Each curriculum repeats the
# same order every epoch:
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

# %% tags=["nbval-check-output"]
below_each = [int((loss_per_order < loss).sum()) for loss in curriculum_loss]
print("class-sorted ends worse than more than half of the shuffles:", below_each[2] > R // 2)

# %% [markdown]
# **The answer to section 2's question.**
#
# <details><summary>Answer</summary>
#
# Worse than most shuffles, as the counts above show (checked above; the cell below asks the widget's
# own model). Each epoch of class-sorted training ends on a run of class-1 batches, and the final model is
# the one those last batches leave behind: look for a boundary pushed into the class-0 region.
# </details>

# %%
class_sorted = widgets.OrderModel(problem, preset="class-sorted", n_orders=R)   # what the widget computes
below = int((class_sorted.spread() < class_sorted.update()["test_loss"]).sum())
print(class_sorted.summary())

# %% tags=["nbval-check-output"]
print("class-sorted ends worse than more than half of the widget's shuffles:", below > R // 2)

# %% [markdown]
# On this problem the class-sorted order ends worse than most shuffles (checked). The two difficulty
# curricula usually do too, but not in every run — read this run's counts above, and try other seeds:
# in some, easy→hard or hard→easy beats most of the shuffles. What could make a fixed order cost? Not
# only which points come last: hard→easy ends every epoch on the *easiest* points. All three repeat
# one fixed order, so consecutive batches are alike (similar difficulty, or one class) and every epoch
# pulls the same way at the same moment, while a shuffle mixes the data in every batch and every
# epoch; class-sorted, whose batches each hold a single class, is the extreme case. Compare the
# boundaries with the shuffles' in the key figure (this run: are they straighter, shifted?). How much the **last** batches add on top is what the six-copies experiment
# below measures. An order is a choice with consequences, and a good data value should be able
# to say *when* a point helped.

# %% [markdown]
# ## 5. One number per point, or one per moment? (≈ 6 min)
#
# The **influence function** (Koh & Liang, 2017) estimates the effect of removing $z_i$ from the
# *final* objective, using only the final parameters $\theta_T$:
#
# $$\mathrm{IF}(z_i; z) = \frac1n\,\nabla\ell(\theta_T, z)^\top (H + \mu I)^{-1}\,\nabla\ell(\theta_T, z_i),
# \qquad H = \frac1n\sum_{j=1}^n \nabla^2\ell(\theta_T, z_j). \tag{1.3}$$
#
# It sees $z_i$ only through $\nabla\ell(\theta_T, z_i)$ — not through *when* $z_i$ was used. The
# **trajectory-specific leave-one-out** (paper §2, Definition 1; lesson 02) instead replays the recorded run
# with $z_i$ removed at the step $s$ where it was used and compares the final test losses:
#
# $$\mathrm{TSLOO}^{(s)}(z_i; z) = \ell(\theta'_T, z) - \ell(\theta_T, z)\qquad(>0:\ z_i \text{ helped}),$$
#
# lesson 00's (0.1) with $s$ for the step.
#
# **Experiment.** Take the training point the reference model is most sure is class 0, and add six
# copies of it **labelled 1** (a label error). Copy $k$ joins the batch of one step $s_k$, spread from
# the first step to the last; everything else is shuffle 0. (The copies are extra: their batch holds
# $b+1$ points while the divisor stays $b$.)
#
# **Predict.** The six copies are identical. Which one will matter most — and will a mislabelled copy
# always hurt?

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

tsloo = dt.exact_loo(traj, split.test, copies, steps).mean(1)         # removed at its one step: η/b scale
for s, e in zip(steps, tsloo):
    print(f"copy seen at step {s:3d}:  exact TSLOO {e:+.5f}")

# %% [markdown]
# One run is one example; the cell below repeats the experiment in the first 8 shuffles (the same
# copies at the same steps, only the order of the other points changes) and counts.

# %%
def six_copies(order):
    """The run of `order` plus the copies, and the exact TSLOO (mean test loss) of each copy at its step."""
    b = [list(batch) for batch in order.batches]
    for copy, s in zip(copies, steps):
        b[s].append(copy)
    run = dt.train(model, data, dt.Schedule(b, batch_size, n + K), lr)
    return run, dt.exact_loo(run, split.test, copies, steps, progress=False).mean(1)

more = [six_copies(shuffles[r]) for r in range(1, 8)]
per_order = torch.stack([tsloo] + [t for _, t in more])              # [8 orders, K copies]
size = per_order.abs()
last_largest = int((size.argmax(1) == K - 1).sum())
ratio = size[:, -1] / size[:, :-1].median(1).values                 # last copy ÷ median of the others
print(f"the last copy has the largest |TSLOO| in {last_largest} of 8 orders; "
      f"|last| / median |others|: median {ratio.median():.1f}, smallest {ratio.min():.1f}")
print(f"the last copy hurts (TSLOO < 0) in {int((per_order[:, -1] < 0).sum())} of 8 orders; "
      f"the first copy outweighs the median middle copy in {int((size[:, 0] > size[:, 1:-1].median(1).values).sum())} of 8")

# %% tags=["nbval-check-output"]
print("the exact TSLOO differs between the identical copies:", bool(tsloo.max() - tsloo.min() > 1e-4))
print("over 8 orders, the copy seen at the last step has the largest |TSLOO| in at least 5:", last_largest >= 5)
print("... and, in the median order, more than 1.5 times the median |TSLOO| of the other copies:", bool(ratio.median() > 1.5))

# %% [markdown]
# The last copy matters most in most orders, in the median by more than half again as much as the
# others (checked above; usually by far more — read the ratio): the final model still carries its
# kick, and nothing comes after it to undo it. Not in every order, though — read the count. And its
# **sign** is not fixed at all. In the stored run the mislabelled copy hurts in most orders, but over
# other seeds (`DVE_TEACH_SEED`) there are runs where it *helps* in most of them. One candidate
# reason: the copy is the point the model is most sure about, and a kick against an over-confident
# model can lower the test cross-entropy elsewhere. A label error is not harmful by definition —
# only by its effect on this run. The earlier copies are much smaller, and their
# pattern varies: in some orders the very first copy counts more than those in the middle of training
# — points seen early and late mattering more than those in between is what the paper calls the
# **phases of influence** (§5.3; lesson 06 is about them) — and in others it does not (the count above).
#
# ### What an influence function says about the same copies
#
# The influence function (1.3) uses only $\theta_T$ and needs $(H + \mu I)^{-1}$. At $\theta_T$ SGD has
# stopped far from a minimum of a non-convex loss and $H$ is **not** positive definite (its smallest
# eigenvalue $\lambda_{\min}$ is printed below), so the inverse needs damping $\mu > |\lambda_{\min}|$. We
# take $\mu = 2|\lambda_{\min}|$ — `damping="auto"`, the rule lessons 04 and 07 use too — and also
# show the library's default $\mu = 10^{-3}$, which is too small here (the library warns).

# %%
H = torch.func.hessian(lambda th: traj.objective.losses(th, data.X, data.y).mean())(traj.final)
lam_min = float(torch.linalg.eigvalsh(H)[0])
if_score, damping = dt.influence_function(traj, split.test, damping="auto", return_damping=True)
if_score = if_score[copies].mean(1)                                   # 1/n scale; damping = 2|λ_min|
with warnings.catch_warnings():
    warnings.simplefilter("ignore")                                   # "H + damping·I is not positive definite"
    if_default = dt.influence_function(traj, split.test, damping=1e-3)[copies].mean(1)
print(f"smallest eigenvalue of H at θ_T: {lam_min:.3f}; damping μ = {damping:.3f}")
print(f"influence function of each copy: {if_score[0]:+.5f} (μ = {damping:.3f}), {if_default[0]:+.5f} (μ = 0.001)")
pairs = [(float(if_score[0]), float(if_default[0]))]                  # (μ = 2|λ_min|, μ = 0.001), per order
for run, _ in more:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs.append((float(dt.influence_function(run, split.test, damping="auto")[copies[0]].mean()),
                      float(dt.influence_function(run, split.test, damping=1e-3)[copies[0]].mean())))
moved_by_half = sum(abs(small - auto) > 0.5 * abs(auto) for auto, small in pairs)
flipped = sum(auto * small < 0 for auto, small in pairs)
print(f"over the 8 orders: the IF value moves by more than half in {moved_by_half}, its sign flips in {flipped}")

# %% tags=["nbval-check-output"]
print("H has a negative eigenvalue at θ_T, and damping='auto' chose μ = 2|λ_min|:",
      lam_min < 0 and abs(damping - 2 * abs(lam_min)) < 1e-9)
print("the influence function gives all six copies the same score:", bool(if_score.max() - if_score.min() < 1e-9))
print("over the 8 orders, its value moves by more than half between μ = 0.001 and μ = 2|λ_min| in at least 2:",
      moved_by_half >= 2)

# %%
with plots.style():
    fig, ax = plots.new_figure(2, figsize=(9, 3.1))
    for r in range(1, 8):
        ax[0, 0].plot(steps, per_order[r], "-", color="0.75", lw=0.8, label="7 other orders" if r == 1 else None)
    ax[0, 0].plot(steps, tsloo, "o-", color=plots.COLORS[0], label="shuffle 0 (above)")
    ax[0, 0].axhline(0, color="0.5", lw=0.6)
    ax[0, 0].set(xlabel="step at which the copy was seen", ylabel="Δ mean test loss if removed",
                 title="exact TSLOO: one value per copy (η/b scale)")
    ax[0, 0].legend(fontsize=8)
    ax[0, 1].plot(steps, if_score, "s-", color=plots.COLORS[1], label=f"μ = 2|λ_min| = {damping:.2f}")
    ax[0, 1].plot(steps, if_default, "s--", color=plots.COLORS[7], label="μ = 0.001")
    ax[0, 1].axhline(0, color="0.5", lw=0.6)
    ax[0, 1].set(xlabel="step at which the copy was seen", ylabel="IF score (1/n scale)",
                 title="influence function: one value for all six")
    ax[0, 1].legend(fontsize=8)
fig

# %% [markdown]
# The copies are identical, so their gradients at $\theta_T$ are identical and the influence function
# *must* score them alike — whatever the order (paper §1 makes exactly this point about duplicates).
# The two panels have different scales on purpose: the IF estimates removing a point from the *mean*
# objective (a $1/n$ effect), the single-step TSLOO removing one occurrence ($\eta/b$), so only their
# shapes compare, not their heights: the exact values change with the moment, the IF's are flat. And
# the IF's one number is not even stable: it depends on a damping that the run does not fix. Over the
# 8 orders its value moves by more than half between the two dampings in most (checked: at least 2),
# and in some its **sign** flips (the count above; in the stored run, seed 0, it does): with
# $\mu = 10^{-3}$ the mislabelled copy would then count as *helpful*.

# %% [markdown]
# ## 6. Try it: two exercises with automatic checks (≈ 5 min)
#
# Replace each `...`; the check says *right*, or what is wrong and a hint.
#
# **Exercise A — where does the best order win?** The best shuffle's mean test loss is well below the
# worst's, yet their boundaries in the key figure can look alike. On what **share** of the test points
# does the best shuffle end with the lower loss? `losses` holds one row of per-test-point losses per
# order (`losses[best]`, `losses[worst]`). Predict first: nearly all of them, or a smaller majority?
# Write it as a function first, `share_lower(a, b)`: the share of positions where the 1-D tensor `a`
# is strictly below `b` (the graded version also tries it on other tensors).

# %% [raw]
# # BEGIN QUESTION
# name: l01_share_better
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def share_lower(a, b): ... ; then share_better = a number between 0 and 1
# BEGIN SOLUTION NO PROMPT
def share_lower(a, b):
    """The mean of the element-wise comparison a < b: ties count as not lower."""
    return float((a < b).double().mean())


# END SOLUTION
share_better = share_lower(losses[best], losses[worst])  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_share_better(share_better, losses, best, worst)

# %% [raw]
# # BEGIN TESTS

# %%
def test_share_better_of_this_run(share_better, losses, best, worst):
    from dve_teach.teach.exercises import lesson01 as ex
    feedback = ex.check_share_better(share_better, losses, best, worst)
    assert feedback, str(feedback)
test_share_better_of_this_run(share_better, losses, best, worst)

# %%
# HIDDEN
def test_share_lower_on_other_tensors(share_lower, losses):
    import math
    import torch
    from dve_teach.teach.exercises import lesson01 as ex
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    b = torch.tensor([2.0, 1.0, 4.0, 4.0], dtype=torch.float64)
    assert math.isclose(float(share_lower(a, b)), 0.5), "share_lower: a tie is not 'lower'"
    assert math.isclose(float(share_lower(a, a)), 0.0), "share_lower(a, a) should be 0 (no entry is below itself)"
    assert math.isclose(float(share_lower(b, a)), 0.25), "share_lower(b, a) should count only strict wins"
    for j, k in [(0, 1), (len(losses) - 1, 0), (2, 3)]:     # other pairs of this lesson's orders
        feedback = ex.check_share_better(share_lower(losses[j], losses[k]), losses, j, k)
        assert feedback, f"share_lower(losses[{j}], losses[{k}]) is not the share: {feedback}"
test_share_lower_on_other_tensors(share_lower, losses)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **Exercise B — correctly labelled copies.** Redo the six-copies experiment with the copies labelled
# *correctly* (class 0): `dt.explain.with_copies(split.train, shuffles[0], i, steps)` returns the data
# and the schedule with six exact copies of point `i` added at `steps` (indices `n`, …, `n + 5`). Train on
# them (`dt.train(model, ..., lr)`) and give the mean exact TSLOO of the copy seen at the **last** step.
# Before you run it: do you expect it to help or hurt? Write it as a function first,
# `copies_tsloo(point, copy_steps)`: the mean exact TSLOO of each of the copies of `point` added at
# `copy_steps` (one value per copy, each copy removed at its own step; the graded version also tries it
# on another point and other steps).

# %% [raw]
# # BEGIN QUESTION
# name: l01_correct_copy_last
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def copies_tsloo(point, copy_steps): ... ; then correct_copy_last = a number (the copy at the last step)
# BEGIN SOLUTION NO PROMPT
def copies_tsloo(point, copy_steps):
    """Train on the data with the copies added, then replay without each copy at its own step."""
    data, sched = dt.explain.with_copies(split.train, shuffles[0], point, copy_steps)
    run = dt.train(model, data, sched, lr)
    copies = list(range(n, n + len(copy_steps)))              # the copies' indices, in the order of copy_steps
    return dt.exact_loo(run, split.test, copies, list(copy_steps)).mean(1)


# END SOLUTION
correct_copy_last = float(copies_tsloo(i, steps)[-1])  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_correct_copy_last(correct_copy_last, model, split.train, shuffles[0], i, steps, lr, split.test)

# %% [raw]
# # BEGIN TESTS

# %%
def test_correct_copy_last_of_this_run(correct_copy_last, model, split, shuffles, i, steps, lr):
    from dve_teach.teach.exercises import lesson01 as ex
    feedback = ex.check_correct_copy_last(correct_copy_last, model, split.train, shuffles[0], i, steps, lr, split.test)
    assert feedback, str(feedback)
test_correct_copy_last_of_this_run(correct_copy_last, model, split, shuffles, i, steps, lr)

# %%
# HIDDEN
def test_copies_tsloo_for_another_point_and_steps(copies_tsloo, model, split, shuffles, i, lr):
    from dve_teach.teach.exercises import lesson01 as ex
    T, n = len(shuffles[0]), len(split.train)
    for point, copy_steps in [((i + 1) % n, [0, T - 1]), ((i + n // 2) % n, [1, T // 2, T - 2])]:
        values = copies_tsloo(point, copy_steps)
        assert len(values) == len(copy_steps), "copies_tsloo should give one value per copy"
        feedback = ex.check_correct_copy_last(float(values[-1]), model, split.train, shuffles[0], point, copy_steps,
                                              lr, split.test)
        assert feedback, f"copies_tsloo({point}, {copy_steps})[-1] is not the last copy's TSLOO: {feedback}"
test_copies_tsloo_for_another_point_and_steps(copies_tsloo, model, split, shuffles, i, lr)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## What you learned
#
# - Same data, same initialisation, same step sizes: a different order gives a different model. Over 64
#   shuffles the final test loss spreads by more than a tenth of its mean, and batched training
#   (`dve_teach.training.orders`) makes such experiments cheap.
# - SGD steps do not commute: swapping two steps moves the result by $\eta^2(H_b g_a - H_a g_b)$, and
#   the effects compound over a run. The class-sorted order ended worse than most random orders; the
#   difficulty curricula usually did, but not in every run.
# - An influence function, computed from $\theta_T$ alone, gives a point one number wherever it was seen
#   — and here that number hinged on the damping. The exact trajectory-specific leave-one-out gives one
#   number per **(point, moment)**: identical copies of a label error got different values, and over 8
#   orders the copy seen at the last step mattered most in most of them — though whether it helped or
#   hurt depended on the run.
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
#    `dt.Schedule.curriculum`. Where does it land among the shuffles?
#
# Worked solutions: in this lesson's source, [`src/01_order_matters.py`](src/01_order_matters.py), between the
# lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-3.
# BEGIN SOLUTION NO PROMPT
# 1. Batch size and the spread of final test losses over R shuffles.
spread_by_batch = {}
for b_size in (5, 20, 50):
    batch_orders = [dt.Schedule.shuffled(n, b_size, epochs, seed=r) for r in range(R)]
    batch_loss = final_test_losses(model, split.train, split.test, batch_orders, lr).mean(1)
    spread_by_batch[b_size] = float(batch_loss.std())
    print(f"1. batch {b_size:2d}: T = {len(batch_orders[0]):3d} steps, test loss {batch_loss.mean():.3f} ± {batch_loss.std():.3f}")
print(f"   widest spread with batch size {max(spread_by_batch, key=spread_by_batch.get)}: smaller batches mean more "
      "steps (more places where the order enters) and noisier ones")

# 2. Two steps that do not commute. From θ = θ_{T−2}: a = B_{T−2} then b = B_{T−1}, and back.
commute_run = dt.train(model, split.train, shuffles[0], lr)
last = len(shuffles[0])
theta_a, objective = commute_run.params(last - 2), commute_run.objective
(_, Xa, ya), (_, Xb, yb) = commute_run.batch(last - 2), commute_run.batch(last - 1)
bsize = shuffles[0].batch_size
ones, divisor = torch.ones(bsize, dtype=theta_a.dtype), torch.tensor(float(bsize), dtype=theta_a.dtype)


def batch_gradient(theta, X, y):
    return objective.batch_grad(theta, X, y, ones, divisor)


ga, gb = batch_gradient(theta_a, Xa, ya), batch_gradient(theta_a, Xb, yb)
Hb_ga = objective.hvp(theta_a, Xb, yb, bsize, ga[None])[0]
Ha_gb = objective.hvp(theta_a, Xa, ya, bsize, gb[None])[0]
for eta in (1.0, 0.3, 0.1):
    ab = theta_a - eta * ga
    ab = ab - eta * batch_gradient(ab, Xb, yb)
    ba = theta_a - eta * gb
    ba = ba - eta * batch_gradient(ba, Xa, ya)
    actual, predicted = ab - ba, eta ** 2 * (Hb_ga - Ha_gb)
    print(f"2. η {eta:3.1f}: |θ(a→b) − θ(b→a)| {actual.norm():.2e}, predicted {predicted.norm():.2e}, "
          f"relative error {(actual - predicted).norm() / actual.norm():.3f}")
# The first neglected term is O(η³), so the relative error should shrink about in proportion to η:
# read it off the three lines above.

# 3. A left-to-right curriculum (by the first coordinate).
left_right = dt.Schedule.curriculum(split.train.X[:, 0], shuffles[0].batch_size, epochs)
left_right_loss = final_test_losses(model, split.train, split.test, [left_right], lr).mean()
left_right_below = int((loss_per_order < left_right_loss).sum())
print(ex.check_shuffles_below(left_right_below, loss_per_order, left_right_loss))
print(f"3. left→right: test loss {left_right_loss:.3f}; {left_right_below} of {R} shuffles end lower")
# END SOLUTION

# %% [markdown]
# ---
# Next: [02 · Trajectory-specific leave-one-out](02_trajectory_specific_loo.ipynb) — the definition, the replay
# behind `dt.exact_loo`, and what happens to $\theta'_t - \theta_t$ after a removal.
