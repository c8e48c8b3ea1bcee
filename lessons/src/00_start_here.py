# %% [markdown]
# # 00 · Start here
#
# *About 10 minutes.*
#
# **Which training examples made this model what it is?** Data attribution answers with one number per
# training example: how much the model's loss on a test example would change without it. The classic
# tool, the *influence function*, pretends that training ran to an optimum that does not depend on the
# order of the data. Real training is neither: it stops early, and what a network learns from an example
# depends on **when** it saw it — the same example can help early in training and hurt late.
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
# - Know what the six lessons cover, and in which order.
# - Check that your installation works (library, PyTorch, widgets).
# - A 60-second tour: train a small network, compute exactly what one training point was worth, and
#   compare with its data value embedding.

# %% [markdown]
# ## The map
#
# | # | Lesson | Minutes | What you learn |
# |---|---|---|---|
# | 00 | [Start here](00_start_here.ipynb) | 10 | This page: the map, an install check, a 60-second tour. |
# | 01 | [Order matters](01_order_matters.ipynb) | 20 | The same data in other orders gives other models; why an influence function cannot see *when*. |
# | 02 | [Trajectory-specific leave-one-out](02_trajectory_specific_loo.ipynb) | 25 | The definition and the exact replay; what a removal does to the rest of training; what exactness costs. |
# | 03 | [Unrolling SGD](03_unrolling_sgd.ipynb) | 25 | The first-order expansion $\prod(I-\eta H)$, Hessian-vector products, SGD-influence; where it breaks. |
# | 04 | [Data value embeddings](04_data_value_embeddings.ipynb) | 30 | The backward recursion; compute once, query any test point; fidelity against other methods. |
# | 05 | [Reorder and watch](05_reorder_and_watch.ipynb) | 25 | Move a point in time, retrain, and watch its embedding and influence change. |
#
# About 2¼ hours in all. Each lesson has the same shape: goals → a key figure → code that calls
# `dve_teach` → an interactive widget → what you learned → 2–3 exercises with solutions in `solutions/`.

# %% [markdown]
# ## Install check
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
from dve_teach import plots
from dve_teach.cli import check_report
from dve_teach import DataValueEmbedding

np.random.seed(0); torch.manual_seed(0)   # seed everything
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
# ## A 60-second tour
#
# **1. Train.** Two interleaving half-moons in 2-D, a 2-16-2 tanh network, plain SGD over 3 epochs of
# shuffled mini-batches of 16. `dt.train` records the whole run — every $\theta_t$, batch and step size
# — in a `Trajectory`.

# %%
split = dt.datasets.moons(n_train=sized(200, 100), n_test=sized(100, 50), seed=0)
model = dt.models.mlp((2, 16, 2), seed=0)
schedule = dt.Schedule.shuffled(len(split.train), batch_size=16, epochs=3, seed=0)
traj = dt.train(model, split.train, schedule, lr=0.2)
accuracy = (traj.predict(split.test.X).argmax(1) == split.test.y).double().mean()
print(traj)
print(f"test accuracy {accuracy:.0%}, mean test loss {traj.test_losses(split.test).mean():.3f}")

# %% [markdown]
# **2. Exact leave-one-out for one point.** Take the training point the final model fits worst, and
# replay the run without it — same start, same batches, same step sizes, the point's weight set to zero
# wherever it appeared. The TSLOO is the change in each test point's loss; **positive = the point
# helped**. This is the ground truth (lesson 02).

# %%
p = int(traj.test_losses(split.train).argmax())                  # worst-fit training point
exact = dt.exact_loo(traj, split.test, [p])[0]                     # Tensor[n_test]
print(f"point {p} (label {int(split.train.y[p])}) is used at steps {schedule.occurrences(p)}")
print(f"removing it everywhere changes the mean test loss by {exact.mean():+.4f}")

# %% [markdown]
# **3. Its data value embedding.** `DataValueEmbedding().fit(traj)` runs one backward pass over the
# recorded run and stores one vector per (point, step) — here of the size of the parameter vector. A
# test point's gradient at the final model, dotted with an embedding, estimates the TSLOO of that
# occurrence (paper §3.2, Eq. 2); summing a point's occurrences estimates removing it everywhere. The
# fit never looked at the test set: any test point can be asked afterwards.

# %%
dve = DataValueEmbedding().fit(traj)
influence = dve.influence(split.test)                             # per (point, step) and test point
estimate = influence.total()[p]                                   # summed over p's occurrences: [n_test]
print(f"embeddings: {tuple(dve.embeddings_.shape)} = (points × epochs, parameters)")
print(f"point {p}: exact {exact.mean():+.4f}, DVE estimate {estimate.mean():+.4f} (mean over the test set)")

# %% [markdown]
# ### The key figure
#
# Left: the trained model and point $p$ (circled). Middle: for each test point, the DVE estimate against
# the exact replay for removing $p$. Right: the same for **every** training point (mean over the test
# set) — 1 backward pass against one replay per point.

# %%
exact_all = dt.exact_loo(traj, split.test, range(len(split.train))).mean(1)
estimate_all = influence.total().mean(1)
with plots.style():
    fig, ax = plots.new_figure(3, figsize=(10.5, 3.3))
    plots.decision_boundary(ax[0, 0], traj, highlight=[p], title=f"trained model, point {p} circled")
    plots.fidelity_scatter(ax[0, 1], estimate, exact, "DVE")
    ax[0, 1].set_xlabel(f"exact TSLOO of point {p}, per test point")
    plots.fidelity_scatter(ax[0, 2], estimate_all, exact_all, "DVE")
    ax[0, 2].set_xlabel("exact TSLOO, every training point")
fig

# %% tags=["nbval-check-output"]
print("one embedding per (point, step):", dve.embeddings_.shape[0] == len(schedule.occurrence_pairs()[0]))
print("DVE and exact agree in sign on most test points:", bool(((estimate > 0) == (exact > 0)).double().mean() > 0.8))
print("DVE ranks the training points like the exact replay (Spearman > 0.8):",
      dt.metrics.fidelity(estimate_all, exact_all)["spearman"] > 0.8)

# %% [markdown]
# ## What you learned
#
# - The course's question: how much did one training example, **seen at one moment**, change the final
#   model? Its exact answer is a replay of training without it (TSLOO); its fast answer is a data value
#   embedding, computed once and queried with a dot product.
# - `dt.train` records a run; `dt.exact_loo` replays it; `DataValueEmbedding().fit(traj)` embeds every
#   (point, step). On this small problem the estimate tracks the exact values closely.
# - Positive values mean the point **helped** (removing it raises the test loss).
#
# ## Exercises
#
# 1. **The most helpful point.** Which training point does the DVE say helped most on average
#    (`influence.total().mean(1).argmax()`)? Check it with `dt.exact_loo`, and circle it in a decision
#    boundary plot (`plots.decision_boundary(ax, traj, highlight=[...])`). Where does it sit?
# 2. **One moment only.** Remove point $p$ only at its **last** occurrence:
#    `dt.exact_loo(traj, split.test, [p], [last_step])`, and compare with the DVE for that occurrence,
#    `influence.at([p], [last_step])`. How much of the every-occurrence effect comes from the last step?
#
# Solutions: run `%load solutions/00_start_here_solutions.py` in a new cell.

# %% [markdown]
# ---
# Next: [01 · Order matters](01_order_matters.ipynb) — the same data in different orders gives different
# models.
