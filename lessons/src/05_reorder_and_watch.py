# %% [markdown]
# # 05 · Reorder and watch
#
# *About 25 minutes. Lessons 02 and 04 come first: exact trajectory-specific leave-one-out (TSLOO) and
# data value embeddings (DVE).*
#
# A training point's value is not a property of the point alone: it depends on **when** SGD saw it and
# on what came after. In this lesson you take one training run apart and put it back together in
# other orders — move a point earlier or later, shuffle, reverse, try a curriculum, leave points out —
# and after each **Retrain** you watch what happens to that point.
#
# ## Goals
#
# - Edit a training order and retrain, from code (`ReorderModel`) and with a widget (`ReorderExplorer`).
# - Read the three panels: where the point's data value embedding sits among all the others (2-D PCA,
#   an arrow from the previous order), its influence at each step where it was used, and exact TSLOO
#   vs the DVE estimate for removing it everywhere.
# - See that moving a point in time changes its influence — and that the embedding, computed once per
#   run, tracks the exact replay.
# - Watch the embeddings form as training goes on (embeddings relative to the checkpoint at step *s*).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import random

import numpy as np
import torch

import dve_teach as dt
from dve_teach.widgets import ReorderExplorer, ReorderModel

random.seed(0); np.random.seed(0); torch.manual_seed(0)   # seed everything
torch.set_num_threads(1)                  # tiny problems: one thread is fastest
print(f"dve_teach {dt.__version__}, torch {torch.__version__}, fast mode: {dt.config.fast_mode()}")

# %% [markdown]
# ## The key figure
#
# A 2-D moons problem, a small MLP, one recorded SGD run. `ReorderExplorer()` builds the widget you
# will use below; its `model` (a plain `ReorderModel`, no widgets needed) trains the run, fits the data
# value embeddings and follows the point with the largest embedding. Here we move **every occurrence**
# of that point to the **last** steps of training, retrain, and draw the model's figure — the same
# figure the widget shows.

# %%
explorer = ReorderExplorer()               # default problem: 2-D moons, batch 16, a few epochs
model = explorer.model                     # the plain model behind the widget (shown further down)
p = model.point
print(f"following point {p}; it is used at steps {model.result.steps} of {len(model.result.schedule)}")
model.move_to("last")                      # every occurrence, shifted so the latest lands on the last step
model.retrain()
model.figure()

# %% [markdown]
# **How to read it.** *Left:* every training point's data value embedding, projected on the two main
# directions of the first run's embeddings (the same axes for every run, so positions are comparable);
# the followed point is highlighted, with an arrow from where it was in the previous order to where it
# is now. *Middle:* its influence at each step where it was used — the DVE estimate (filled stems) and the
# exact replay that removes it at that step only (diamonds); hollow markers: the previous order. *Right:* removing it at every step, exact vs DVE, for the
# previous and the current order. Positive means the point **helped**: removing
# it would raise the mean test loss.

# %% [markdown]
# ## The model behind the widget
#
# `ReorderModel` (here `explorer.model`) holds the order, the left-out points and every run it has
# trained (cached by the order), and its `result` holds what the figure shows. `baseline` is the first run; `previous` the run
# before the last retrain.

# %%
before, after = model.previous, model.result
for name, r in [("before", before), ("after", after)]:
    print(f"{name:6s} steps {r.steps}  exact {r.exact:+.2e}  DVE {r.estimate:+.2e}  "
          f"test loss {r.test_loss:.3f}")

# %% tags=["nbval-check-output"]
# mode-independent facts, checked by the notebook tests (nbval)
print("the point now comes later:", min(after.steps) > min(before.steps))
print("as often as before:", len(after.steps) == len(before.steps))
print("every batch kept its size:", [len(b) for b in after.schedule.batches] == [len(b) for b in before.schedule.batches])
print("one embedding per training point:", tuple(after.embeddings.shape)[0] == model.n)

# %% [markdown]
# Order edits are cheap and only mark the state **stale**; `retrain()` does the work (train, fit the
# embeddings, exact replay for the followed point) and caches it, so going back to an order you already
# trained costs nothing. The edits the widget's buttons make:
#
# | button | model call |
# |---|---|
# | ⏮ first / ◀ earlier / later ▶ / last ⏭ | `move_to("first")`, `move(-1)`, `move(+1)`, `move_to("last")` (one occurrence or all) |
# | shuffle (seed) / reverse | `shuffle(seed)`, `reverse()` |
# | curriculum + apply | `curriculum("easy→hard (loss at init)")`, … (`dve_teach.widgets.PRESETS`) |
# | leave out / put back all / reset | `leave_out(i)`, `put_back()`, `reset()` |

# %%
model.reset()
print("stale after reset:", model.stale)
r = model.retrain()                         # the baseline order: cached, so this is instant
print(f"baseline again: exact {r.exact:+.2e}, DVE {r.estimate:+.2e}, retrain {r.seconds:.3f} s")
model.reverse(); r = model.retrain()
print(f"reversed:       exact {r.exact:+.2e}, DVE {r.estimate:+.2e}, steps {r.steps}")

# %% [markdown]
# ### Watching the embeddings form
#
# The data value embedding of a run is defined relative to its final parameters. Stop the same run
# after step *s* (`Trajectory.prefix(s)`) and compute the embeddings relative to the checkpoint at step
# *s*: early in training few points have been seen and the cloud is small; it grows and settles as
# training goes on. The widget's **Play** control runs through these frames.

# %%
T = len(model.result.schedule)
model.frame_figure(max(1, T // 3))

# %% [markdown]
# ## Explore: the ReorderExplorer
#
# Run the next cell. Choose a **point** (or keep the suggested one), pick which of its occurrences to
# move, use **⏮ first / ◀ earlier / later ▶ / last ⏭**, **shuffle** with a seed, **reverse**, apply a
# **curriculum** or **leave out** another point; the status says *order changed: press Retrain*. Press
# **Retrain** (about a second) and compare the arrow, the per-step bars and the readout. **Play** runs
# over the training steps. Every control works from the keyboard (Tab, Enter, arrows); errors appear in
# the *log* pane.

# %% tags=["widget"]
explorer.set_order(model.baseline_order)   # start the widget from the first order (cached run)
explorer.retrain()
explorer

# %% [markdown]
# The same explorer can be driven from code, which is how this lesson is tested (and how you can
# script an experiment): `set_order`, `retrain`, `result`, `figure`.

# %% tags=["nbval-check-output"]
first = explorer.result
explorer.set_order(explorer.model.order.reversed())    # what the "reverse" button does
second = explorer.retrain()
print("retrained on a new order:", second.schedule != first.schedule)
print("still following the same point:", second.point == first.point)

# %% [markdown]
# ## What you learned
#
# - The value of a training point belongs to a **run**: the same point, moved to other steps of the
#   same data, gets a different exact leave-one-out value, and a different value at each step.
# - A data value embedding is computed once per run, from gradients and the backward recursion, and
#   answers "what if this point were removed" for any test set by a dot product; after a reorder it
#   follows the exact replay (compare the two in the readout: the first-order estimate is close at a
#   small learning rate, not equal).
# - Points seen late have little training left to wash their effect out; points seen early have their
#   influence soaked up by later points with similar gradients (lesson 04).
# - Embeddings relative to the checkpoint at step *s* show how the values build up during training.
# - `ReorderModel` / `ReorderExplorer` work on your own problem: `dve_teach.widgets.Problem(...)` or a recorded
#   `Trajectory` with its test set.

# %% [markdown]
# ## Exercises
#
# 1. **Early or late?** For the followed point, compare the exact TSLOO when all its occurrences are
#    moved to the **first** steps and to the **last** steps. Which is larger in magnitude? Does the DVE
#    estimate rank the two orders the same way?
# 2. **Soaking up.** Find the 5 training points whose embeddings (`result.embeddings`) are most similar
#    (cosine) to the followed point's, **leave them out** and retrain. Predict first (lesson 04:
#    similar points seen later soak up a point's influence), then check: what happened, and why might
#    the prediction fail?
# 3. **Your own run.** Build an explorer on a run of your own: `ReorderModel(traj, test)`
#    with a `traj = dt.train(...)` on `dt.datasets.blobs(...)`, or `Problem.moons(lr=...)` (from `dve_teach.widgets`) with a
#    larger learning rate. Where do exact and DVE start to disagree?
#
# Solutions: run `%load solutions/05_reorder_and_watch_solutions.py` in a new cell (it loads the code into the cell; run it again to
# execute), or open [the file](solutions/05_reorder_and_watch_solutions.py).

# %%
# Your answers here. (Stuck? %load solutions/05_reorder_and_watch_solutions.py)

# %% [markdown]
# ---
# Next: [06 · Phases of influence](06_phases_of_influence.ipynb) — from one point to every moment of
# training: which steps of a run matter most, checked by exact replay.
