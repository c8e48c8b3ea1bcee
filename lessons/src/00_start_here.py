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
# # 00 · Start here
#
# *About 10 minutes.*
#
# **Which training examples made this model what it is?** Data attribution answers with one number per
# training example: how much the model's loss on a test example would change without it. The classic
# tool, the *influence function*, pretends that training ran to an optimum that does not depend on the
# order of the data. Real training is neither: it stops early, and what a network learns from an example
# depends on **when** it saw it — the same example can matter a lot at one moment of training and
# hardly at all at another (lesson 01 shows six identical copies with six different values).
#
# This course follows Wang, Song, Zou, Mittal and Jia, *Capturing the Temporal Dependence of Training
# Data Influence* (ICLR 2025). It asks the time-aware question — the **trajectory-specific
# leave-one-out** (TSLOO): replay the recorded run without one example at one step — and answers it
# fast with **data value embeddings** (DVE): one vector per (example, step), computed in a single
# backward pass over training, whose dot product with a test gradient estimates the TSLOO. Everything
# runs on a laptop CPU in seconds, on problems small enough to compute the exact answer and check.
#
# ## Goals
#
# - Know what the lessons cover, and in which order.
# - Check that your installation works (library, PyTorch, widgets).
# - A short tour: train a small network, pick a training point in a widget and read exactly what it
#   was worth, next to its data value embedding's estimate — and how far apart the two are.
# - Learn the notation every lesson uses, with this lesson's two equations, (0.1) and (0.2).
#
# Sections: the map (≈ 1 min) · install check (≈ 2 min) · a tour with a widget (≈ 4 min) · the
# notation (≈ 1 min) · two exercises (≈ 3 min).

# %% [markdown]
# ## The map (≈ 1 min)
#
# | # | Lesson | Minutes | What you learn |
# |---|---|---|---|
# | 00 | [Start here](00_start_here.ipynb) | 10 | This page: the map, an install check, a 60-second tour. |
# | 01 | [Order matters](01_order_matters.ipynb) | 25 | The same data in other orders gives other models; why an influence function cannot see *when*. |
# | 02 | [Trajectory-specific leave-one-out](02_trajectory_specific_loo.ipynb) | 25 | The definition and the exact replay; what a removal does to the rest of training; what exactness costs. |
# | 03 | [Unrolling SGD](03_unrolling_sgd.ipynb) | 25 | The first-order expansion $\prod(I-\eta H)$, Hessian-vector products, SGD-influence; where it breaks. |
# | 04 | [Data value embeddings](04_data_value_embeddings.ipynb) | 40 | The backward recursion; compute once, query any test point; fidelity against other methods. |
# | 05 | [Reorder and watch](05_reorder_and_watch.ipynb) | 25 | Move a point in time, retrain, and watch its embedding and influence change. |
# | 06 | [Phases of influence](06_phases_of_influence.ipynb) | 25 | Which moments of a run matter most: a high-impact start, a low basin, a late ascent — checked by exact replay. |
# | 07 | [Data selection](07_data_selection.ipynb) | 25 | Find mislabelled points; select data online, and whether selecting only early and late pays off here. |
# | 08 | [Scaling up](08_scaling_up.ipynb) | 30 | Factored per-sample gradients, random vs data-fitted projections, influence checkpointing. |
# | 09 | [Beyond SGD](09_beyond_sgd.ipynb) | 30 | Momentum, Adam and AdamW: how TSLOO changes, the paper's SGD proxy against optimizer-aware estimates, Adam's all-or-nothing first step. |
# | 10 | [A foundation model in miniature](10_foundation_model_in_miniature.ipynb) | 30 | Pretrain on plays, fine-tune on sonnets: which passages helped, by first order and by exact replay across the boundary; the ε effect. |
#
# About four and a half hours in all. Each lesson has the same shape, with minutes per section: goals → a question
# to predict → an interactive widget (early in the lesson) or a figure that lets you find
# the answer → the explanation, with code that calls `dve_teach` and numbered equations ((2.1) is
# lesson 02's first) → exercises inside the lesson with automatic checks → what you learned → more
# exercises with worked solutions. Every lesson uses the notation of lesson 00's box
# (section "The notation of every lesson", below).
# Every result a lesson states is checked by the cell after it, for any seed (`DVE_TEACH_SEED`).

# %% [markdown]
# ## Install check (≈ 2 min)
#
# The first cell of every lesson seeds the random generators and imports the library as `dt`. Set the
# environment variable `DVE_TEACH_FAST=1` before starting Jupyter to shrink every problem (the tests
# do this). In a terminal, `python -m dve_teach check` prints the same report as the next cell.

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import ipywidgets
import numpy as np
import torch

import dve_teach as dt
from dve_teach import DataValueEmbedding, plots, widgets
from dve_teach.cli import check_report
from dve_teach.teach.exercises import lesson00 as ex
from dve_teach.teach.tour import tour_runs

SEED = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
np.random.seed(SEED); torch.manual_seed(SEED)   # seed everything
torch.set_num_threads(1)                  # tiny models: one thread is fastest (and fair to other users)
sized = dt.config.sized                   # sized(full, fast): smaller problems when DVE_TEACH_FAST=1

report = check_report()
for key in ("dve_teach", "python", "torch", "device", "threads", "fast_mode"):
    print(f"{key:11s}{report[key]}")
missing = 'NOT importable: pip install -e ".[lessons]"'
for package, version in report["lesson_packages"].items():
    print(f"{package:11s}{version or missing}")

# %% tags=["nbval-check-output"]
print("dve_teach imports:", report["dve_teach"] == dt.__version__)
print("torch works:", bool(torch.ones(2, dtype=torch.float64).sum() == 2))
print("widgets and plotting packages import:", all(report["lesson_packages"][m] for m in ("ipywidgets", "matplotlib", "seaborn")))

# %% [markdown]
# Widgets: below you should see a slider. If you see the text `IntSlider(value=3, ...)` instead, the
# notebook front end is missing the widget extension — use JupyterLab 4 with `ipywidgets` 8 in the same
# environment (Binder does this for you).

# %%
ipywidgets.IntSlider(value=3, min=0, max=10, description="widgets work?", tooltip="drag me")

# %% [markdown]
# ## A tour (≈ 4 min)
#
# **1. Train.** Two interleaving half-moons in 2-D, a 2-16-2 tanh network, plain SGD over 3 epochs of
# shuffled mini-batches of 16. `dt.train` records the whole run — every $\theta_t$, batch and step size
# — in a `Trajectory`.

# %%
split = dt.datasets.moons(n_train=sized(200, 100), n_test=sized(100, 50), seed=SEED)
model = dt.models.mlp((2, 16, 2), seed=SEED)
schedule = dt.Schedule.shuffled(len(split.train), batch_size=16, epochs=3, seed=SEED)
traj = dt.train(model, split.train, schedule, lr=0.2)
accuracy = (traj.predict(split.test.X).argmax(1) == split.test.y).double().mean()
print(traj)
print(f"test accuracy {accuracy:.0%}, mean test loss {traj.test_losses(split.test).mean():.3f}")

# %% [markdown]
# **2. Pick a training point and read what it was worth.**
#
# **Predict first.** Before you look at the widget below: do most training points **help** the model
# (on the test set), or **hurt** it? And are the points the model fits worst (the highest training
# loss) more or less likely to hurt than a random point? Write down your guess.
#
# For the point on the slider the widget shows where it lies (left, circled), the steps where SGD used
# it, and two numbers for "what if it had been left out of this run":
#
# - the **exact** trajectory-specific leave-one-out (TSLOO, equation (0.1) below): training replayed
#   without the point — same start, same batches, same step sizes — and the change of the mean test loss;
# - the **data value embedding** (DVE) estimate of the same change, from one backward pass (equation
#   (0.2); lesson 04).
#
# **Reading the sign:** positive = removing the point *raises* the test loss, so the point **helped**;
# negative = removing it *lowers* the test loss, so it **hurt**. The middle panel splits the effect over
# the steps where the point was used (removed at that one step only); the right panel shows every
# training point, the chosen one starred. The buttons jump to the worst-fit, the most helpful and the
# most harmful point. Press *most harmful* a few times and drag the slider around, then open the answer.

# %%
explorer = widgets.PointExplorer(traj, split.test)
explorer.model.figure()          # the widget's own figure for its first point (visible without a kernel)

# %% tags=["widget"]
explorer

# %% [markdown]
# **Check your prediction.** (Do most points help, or hurt? Are the worst-fit points more likely to hurt?)
#
# <details><summary>Answer</summary>
#
# It depends on the run — more than you might guess. The cell below counts in this run; the cell after
# it repeats the tour for 8 more runs (other data, start and order). The share of points that hurt
# varies between runs (by more than 10 percentage points, checked; in the stored notebook's 8 runs
# from 12% to 85%, so in some runs most points hurt). And the worst-fit points are not simply
# the harmful ones: compare their row with the first — in some runs some of them help (checked), and
# in the stored notebook's runs they hurt from 0% to 100% of the time. "High loss" is not the same as
# "harmful": only the replay (or a good estimate of it) can tell. (What sets the runs apart is left
# open here — exercise 2.)
# </details>

# %%
exact_all, estimate_all = explorer.model.exact_, explorer.model.estimate_   # Tensor[n_train]: mean Δ test loss
worst_fit = traj.test_losses(split.train).argsort(descending=True)[:10]   # test_losses: per-point losses on any data
share_all, share_worst = (exact_all < 0).double().mean(), (exact_all[worst_fit] < 0).double().mean()
print(f"points that hurt: {share_all:.0%} of all, {share_worst:.0%} of the 10 worst-fit")

# %%
runs = tour_runs([1000 + 8 * SEED + r for r in range(8)], n_train=sized(200, 100), n_test=sized(100, 50))
hurt, hurt_worst = np.array([r["share_hurt"] for r in runs]), np.array([r["share_worst_hurt"] for r in runs])
print("8 more runs, share of points that hurt:     ", " ".join(f"{v:4.0%}" for v in hurt))
print("            ... of the 10 worst-fit points: ", " ".join(f"{v:4.0%}" for v in hurt_worst))

# %% tags=["nbval-check-output"]
print("the share of points that hurt varies between the 8 runs by more than 10 percentage points:",
      bool(hurt.max() - hurt.min() > 0.1))
print("in some run, some of the 10 worst-fit points help (high loss is not the same as harmful):",
      bool(hurt_worst.min() < 1))

# %% [markdown]
# **3. The same numbers in code.** The widget called two functions. `dt.exact_loo` replays the run
# without a point, wherever it appeared — the ground truth (lesson 02). Here $p$ is the point the
# final model fits worst.

# %%
p = int(traj.test_losses(split.train).argmax())                  # worst-fit training point
exact = dt.exact_loo(traj, split.test, [p])[0]                     # Tensor[n_test]
print(f"point {p} (label {int(split.train.y[p])}) is used at steps {schedule.occurrences(p)}")
print(f"removing it everywhere changes the mean test loss by {exact.mean():+.4f}")

# %% [markdown]
# `DataValueEmbedding().fit(traj)` runs one backward pass over the recorded run and stores one vector
# per (point, step) — here of the size of the parameter vector. A test point's gradient at the final
# model, dotted with an embedding, estimates the TSLOO of that occurrence (paper §3.2, Eq. 2); summing
# a point's occurrences estimates removing it everywhere. The fit never looked at the test set: any
# test point can be asked afterwards.

# %%
dve = DataValueEmbedding().fit(traj)
influence = dve.influence(split.test)                             # per (point, step) and test point
estimate = influence.total()[p]                                   # summed over p's occurrences: [n_test]
print(f"embeddings: {tuple(dve.embeddings_.shape)} = (points × epochs, parameters)")
print(f"point {p}: exact {exact.mean():+.4f}, DVE estimate {estimate.mean():+.4f}, "
      f"error {estimate.mean() - exact.mean():+.4f}")

# %% tags=["nbval-check-output"]
print("one embedding per (point, step):", dve.embeddings_.shape[0] == len(schedule.occurrence_pairs()[0]))
print("the widget shows these same numbers:", bool(torch.allclose(estimate_all, influence.total().mean(1))))

# %% [markdown]
# The estimate is **not** the exact value: for point $p$ the two numbers above differ (their
# difference is printed as the error). The DVE is a first-order estimate with approximate curvature
# (lessons 03–04 say which approximations, and where they bite). The box below writes both numbers as
# equations.

# %% [markdown]
# ## The notation of every lesson (≈ 1 min)
#
# Every lesson uses these symbols, and refers back to this box. Equations are numbered (lesson.k):
# (0.1) is this lesson's first; lesson 02 starts at (2.1).
#
# | symbol | meaning |
# |---|---|
# | $z_i$, $B_t$, $b$ | training point $i$; the batch of step $t$; the nominal batch size |
# | $\theta_t$, $\theta_T$ | the parameters before step $t$; the final parameters ($T$ steps) |
# | $\eta_t$ | the learning rate of step $t$ (the paper sums over the batch, so its step size is our $\eta_t/b$) |
# | $\mathrm{TSLOO}^{(t)}(z_i; z)$, also $\mathrm{TSLOO}(i, t)$ | $\ell(\theta'_T, z) - \ell(\theta_T, z)$ with $z_i$ removed at step $t$ **only** (one occurrence) |
# | TSLOO, every occurrence | $z_i$ removed at every step that uses it (once per epoch); ≈ the sum of its one-step values |
# | sign | positive = removing the point raises the test loss = the point **helped** |
# | $\delta_{i,t} = \frac{\eta_t}{b}\nabla\ell(\theta_t, z_i)$ | the kick: how far the two runs differ right after the removal (lessons 02–04; lesson 08 uses $\delta$ for an output gradient, and says so) |
# | $K_t = \prod_{k>t}(I - \eta_k H_k)$ | what later training does to a kick to first order, later steps on the left (lesson 03) |
# | $M_t$ | the data value embedding recursion's matrix, $K_t \approx I - M_t$ with the Fisher in place of $H_k$ (lesson 04) |
# | $c_t$ | the per-step influence curve: mean $|\mathrm{TSLOO}|$ of a batch divided by $\eta_t$ (lesson 06) |
#
# The two quantities of the tour, for a test point $z$ and point $z_i$ removed at step $t$ only:
#
# $$\mathrm{TSLOO}^{(t)}(z_i; z) = \ell(\theta'_T, z) - \ell(\theta_T, z), \tag{0.1}$$
#
# where $\theta'_T$ is the end of the replay without $z_i$ at step $t$ (removing $z_i$ everywhere
# replays without every occurrence), and its data value embedding estimate
#
# $$\mathrm{TSLOO}^{(t)}(z_i; z) \approx \nabla\ell(\theta_T, z)^\top\, \mathrm{DVE}^{(t)}(z_i),
# \qquad \mathrm{DVE}^{(t)}(z_i) \approx K_t\,\delta_{i,t}. \tag{0.2}$$
#
# Lesson 02 computes (0.1) by replay, lesson 03 derives $K_t\delta_{i,t}$, lesson 04 the recursion that
# gives $\mathrm{DVE}^{(t)}$ for every point at once.

# %% [markdown]
# ### The key figure
#
# Left: the trained model and point $p$ (circled). Middle: for each test point, the DVE estimate (0.2)
# against the exact replay (0.1) for removing $p$ everywhere. Right: the same for **every** training
# point, each averaged over the test set — point $p$ (starred) is the mean of the middle panel's
# points. 1 backward pass against one replay per point.

# %%
largest_error = (estimate_all - exact_all).abs().max() / exact_all.abs().max()
ranking = dt.metrics.fidelity(estimate_all, exact_all)
with plots.style():
    fig, ax = plots.new_figure(3, figsize=(10.5, 3.3))
    plots.decision_boundary(ax[0, 0], traj, highlight=[p], title=f"trained model, point {p} circled")
    plots.fidelity_scatter(ax[0, 1], estimate, exact, "DVE")
    ax[0, 1].set(xlabel=f"exact TSLOO of point {p}, per test point", ylabel=f"DVE of point {p}, per test point")
    plots.fidelity_scatter(ax[0, 2], estimate_all, exact_all, "DVE")
    plots.star_point(ax[0, 2], exact_all[p], estimate_all[p], f"point {p} (mean of the middle panel)")
    ax[0, 2].set(xlabel="exact TSLOO, every training point", ylabel="DVE, every training point (test mean)")
print(f"over all training points: Spearman {ranking['spearman']:.2f}; the largest error is "
      f"{largest_error:.0%} of the largest exact effect")
fig

# %%
spearmans, errors = np.array([r["spearman"] for r in runs]), np.array([r["largest_error"] for r in runs])
print("8 more runs, Spearman:                         ", " ".join(f"{v:4.2f}" for v in spearmans))
print("            largest error / largest exact effect:", " ".join(f"{v:4.0%}" for v in errors))

# %% tags=["nbval-check-output"]
print("median over 8 runs: DVE ranks the training points like the exact replay (Spearman > 0.9):",
      bool(np.median(spearmans) > 0.9))
print("median over 8 runs: yet single values are off, the largest error is 10%-75% of the largest effect:",
      bool(0.1 < np.median(errors) < 0.75))

# %% [markdown]
# So: on this small problem the embedding usually **ranks** the training points almost as the exact
# replay does (Spearman: do the two put the points in the same order? 1 = identical ranking), while a
# single point's value can be off by a sizeable fraction (read the error of point $p$ above, and the
# scatter's distance from the dashed line $y = x$). Both are medians over runs: a single run can fall
# below 0.9, or have an error as large as the largest effect itself. The figures' "sign agr." is the
# share of points where the two agree on helped vs hurt.

# %% [markdown]
# ## Try it: two exercises with automatic checks
#
# Each exercise has a cell with a `...` to replace; the check below it says *right*, or what is wrong
# and a hint.
#
# **Exercise A — does the DVE find the most helpful point?** Take the training point whose removal (at
# every step) would raise the mean test loss the most by the exact replay (`exact_all`, one value per
# point). At which **rank** does the DVE estimate put it (`estimate_all`; rank 1 = the largest
# estimate)? Predict first: with a Spearman near 1, do you expect rank 1? First write the rule as a
# function, `rank_of(values, i)`: the rank of entry `i` of the 1-D tensor `values`, 1 = the largest (the
# graded version also tries it on other tensors).

# %% [raw]
# # BEGIN QUESTION
# name: l00_dve_rank
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def rank_of(values, i): ... ; then dve_rank = an int, 1 = the DVE's largest estimate
# BEGIN SOLUTION NO PROMPT
def rank_of(values, i):
    """1 + the number of entries larger than entry i: rank 1 is the largest value."""
    return 1 + int((values > values[i]).sum())


# END SOLUTION
dve_rank = rank_of(estimate_all, int(exact_all.argmax()))  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_dve_rank(dve_rank, exact_all, estimate_all)

# %% [raw]
# # BEGIN TESTS

# %%
def test_dve_rank_of_this_run(dve_rank, exact_all, estimate_all):
    from dve_teach.teach.exercises import lesson00 as ex
    feedback = ex.check_dve_rank(dve_rank, exact_all, estimate_all)
    assert feedback, str(feedback)
test_dve_rank_of_this_run(dve_rank, exact_all, estimate_all)

# %%
# HIDDEN
def test_rank_of_on_other_tensors(rank_of):
    import torch
    values = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.2], dtype=torch.float64)
    for i, truth in enumerate([3, 5, 1, 2, 4]):
        assert int(rank_of(values, i)) == truth, f"rank_of gives entry {i} of {values.tolist()} the wrong rank"
    gen = torch.Generator().manual_seed(2026)
    for n in (1, 2, 50):
        values = torch.randn(n, generator=gen, dtype=torch.float64)
        ranks = sorted(int(rank_of(values, i)) for i in range(n))
        assert ranks == list(range(1, n + 1)), "the ranks of distinct values should be 1, 2, ..., n"
        assert int(rank_of(values, int(values.argmax()))) == 1, "the largest value has rank 1"
test_rank_of_on_other_tensors(rank_of)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **Exercise B — one moment only.** Remove point $p$ only at its **last** occurrence
# (`schedule.occurrences(p)` lists its steps; `dt.exact_loo(traj, split.test, [p], [step])` removes it at
# that one step) and give the mean change of the test loss. Compare it with the every-occurrence value
# above: how much of the effect comes from the last step? Write it as a function first,
# `removed_at_last(point)`: the mean change of the test loss when `point` is removed at its last
# occurrence only (the graded version also tries it on other points).

# %% [raw]
# # BEGIN QUESTION
# name: l00_last_occurrence
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def removed_at_last(point): ... ; then last_only = a number (or a 1-element tensor) for point p
# BEGIN SOLUTION NO PROMPT
def removed_at_last(point):
    """Exact replay with `point` removed at its last step only, averaged over the test points."""
    return float(dt.exact_loo(traj, split.test, [point], [schedule.occurrences(point)[-1]]).mean())


# END SOLUTION
last_only = removed_at_last(p)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_last_occurrence(last_only, traj, split.test, p)

# %% [raw]
# # BEGIN TESTS

# %%
def test_last_occurrence_of_p(last_only, traj, split, p):
    from dve_teach.teach.exercises import lesson00 as ex
    feedback = ex.check_last_occurrence(last_only, traj, split.test, p)
    assert feedback, str(feedback)
test_last_occurrence_of_p(last_only, traj, split, p)

# %%
# HIDDEN
def test_removed_at_last_for_other_points(removed_at_last, traj, split, p):
    from dve_teach.teach.exercises import lesson00 as ex
    n = traj.schedule.n
    for q in sorted({0, n - 1, (p + n // 2) % n} - {p}):
        feedback = ex.check_last_occurrence(removed_at_last(q), traj, split.test, q)
        assert feedback, f"removed_at_last({q}) is not point {q}'s last-occurrence TSLOO: {feedback}"
test_removed_at_last_for_other_points(removed_at_last, traj, split, p)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## What you learned
#
# - The course's question: how much did one training example, **seen at one moment**, change the final
#   model? Its exact answer is a replay of training without it (TSLOO); its fast answer is a data value
#   embedding, computed once and queried with a dot product.
# - `dt.train` records a run; `dt.exact_loo` replays it; `DataValueEmbedding().fit(traj)` embeds every
#   (point, step). In the median run the embedding ranked the training points almost as the replay
#   does, while single values were off by a sizeable fraction.
# - Positive values mean the point **helped** (removing it raises the test loss); negative, that it hurt.
#   How many points hurt varies widely from run to run, and high loss alone does not mean harmful.
#   One run is an example; a claim about runs needs several of them (this lesson used 8).
#
# ## Exercises
#
# 1. **Where does it sit?** Circle the most helpful and the most harmful point in a decision boundary
#    plot (`plots.decision_boundary(ax, traj, highlight=[...])`). Are they near the boundary?
# 2. **Another run.** Set `DVE_TEACH_SEED=1` before starting Jupyter (or change `SEED` in the first cell)
#    and run the lesson again. Which numbers change, and which of the checked statements still hold?
#    Then take one of the 8 runs where most points hurt (`runs[k]["seed"]`), train it as in step 1 and
#    look at its decision boundary and test loss: what is different about it?
#
# Worked solutions: in this lesson's source, [`src/00_start_here.py`](src/00_start_here.py), between the
# lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-2.
# BEGIN SOLUTION NO PROMPT
# 1. Where the most helpful and the most harmful points sit (the most helpful: the largest exact TSLOO,
#    as in exercise A).
helpful_point, harmful_point = int(exact_all.argmax()), int(exact_all.argmin())
print(ex.check_most_helpful(helpful_point, traj, split.test))
with plots.style():   # the course's figure style, as in the key figure
    sits_fig, sits_ax = plots.new_figure(1, figsize=(4.5, 3.3))
    plots.decision_boundary(sits_ax[0, 0], traj, highlight=[helpful_point, harmful_point],
                            title="most helpful and most harmful, circled")
display(sits_fig)
# 2. Another run: rerun the lesson with DVE_TEACH_SEED=1. The numbers of the one run (p, its values, the
#    Spearman of the key figure) change; the checked statements (medians over 8 runs) still hold.
# END SOLUTION

# %% [markdown]
# ---
# Next: [01 · Order matters](01_order_matters.ipynb) — the same data in different orders gives different
# models.
