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
# - See that moving a point in time changes its influence — and how closely the embedding, computed
#   once per run, follows the exact replay.
# - Watch the embeddings form as training goes on (embeddings relative to the checkpoint at step *s*).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import random

import numpy as np
import torch

import dve_teach as dt
from dve_teach import plots
from dve_teach.teach.exercises import lesson05 as ex
from dve_teach.widgets import Problem, ReorderExplorer, ReorderModel

SEED = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
random.seed(SEED); np.random.seed(SEED); torch.manual_seed(SEED)   # seed everything
torch.set_num_threads(1)                  # tiny problems: one thread is fastest
print(f"dve_teach {dt.__version__}, torch {torch.__version__}, fast mode: {dt.config.fast_mode()}")

# %% [markdown]
# ## The key figure
#
# A 2-D moons problem, a small MLP, one recorded SGD run. `ReorderExplorer(problem)` builds the widget
# you will use below; its `model` (a plain `ReorderModel`, no widgets needed) trains the run, fits the
# data value embeddings and follows the point with the largest embedding. Here we move that point as
# **early** as it goes — every occurrence shifted by the same number of steps until the earliest is at
# step 0 — retrain, then as **late** as it goes (the latest at the last step), retrain, and draw the
# model's figure: the same figure the widget shows, with the early placement as "previous".

# %%
explorer = ReorderExplorer(Problem.moons(seed=SEED))   # 2-D moons, batch 16, a few epochs
model = explorer.model                     # the plain model behind the widget (shown further down)
p = model.point
print(f"following point {p}; it is used at steps {model.result.steps} of {len(model.result.schedule)}")
model.move_to("first"); early = model.retrain()
model.move_to("last"); late = model.retrain()
print(f"as early as it goes: steps {early.steps}; as late as it goes: steps {late.steps}")
model.figure()

# %% [markdown]
# **How to read it.** *Left:* every training point's data value embedding, projected on the two main
# directions of the first run's embeddings (the same axes for every run, so positions are comparable);
# the followed point is the star, with an arrow from where it was in the previous order to where it is
# now. *Middle:* its influence at each step where it was used — the DVE estimate (filled stems) and the
# exact replay that removes it at that step only (diamonds); hollow markers: the previous order.
# *Right:* removing it at every step, exact vs DVE, for the previous and the current order. Positive
# means the point **helped**: removing it would raise the mean test loss.

# %%
for name, r in [("early", early), ("late", late)]:
    print(f"{name:5s} steps {r.steps}  exact {r.exact:+.2e}  DVE {r.estimate:+.2e}  test loss {r.test_loss:.3f}")

# %% tags=["nbval-check-output"]
shift = {b - a for a, b in zip(early.steps, late.steps)}
print("every occurrence moved later by the same number of steps:", len(shift) == 1 and shift.pop() > 0)
print("every batch kept its size:", [len(b) for b in late.schedule.batches] == [len(b) for b in early.schedule.batches])
print("seen late, the point matters more than seen early (|exact TSLOO|):", abs(late.exact) > abs(early.exact))
print("the DVE agrees on which placement matters more:", abs(late.estimate) > abs(early.estimate))
print("one embedding per training point:", tuple(late.embeddings.shape)[0] == model.n)

# %% [markdown]
# Same point, same data, same number of uses: moved to the end of training it changes the final test
# loss more than at the start, and the embedding sees the same. Its estimate is not the exact value
# (compare the two columns above); lesson 04 measured how close the DVE comes on average.

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
# *s*. Four such frames of the baseline run, on the same axes (the widget's **Play** control runs
# through all of them); grey dots are points not seen yet.

# %%
model.reset(); model.retrain()
T = len(model.result.schedule)
moments = sorted({max(1, T // 4), T // 2, 3 * T // 4, T})
limits = model.frame_limits()
with plots.style():
    fig, ax = plots.new_figure(len(moments), figsize=(11, 3))
    for a, s in zip(ax[0], moments):
        a.set_xlim(*limits[0]); a.set_ylim(*limits[1]); a.set_autoscale_on(False)
        seen = np.isin(np.arange(model.n), [i for b in model.result.schedule.batches[:s] for i in b])
        plots.embedding_map(a, model.frame(s), model.labels, point=p, seen=seen, title=f"checkpoint at step {s}")
size = [float(np.linalg.norm(model.frame(s), axis=1).mean()) for s in moments]
print("mean distance from the origin, per frame:", [f"{v:.4f}" for v in size])
fig

# %% tags=["nbval-check-output"]
growth = np.diff(size)
print("the cloud grows from frame to frame:", bool((growth > 0).all()))
print("... and grows less between the last two frames than between the first two:", bool(growth[-1] < growth[0]))

# %% [markdown]
# The cloud grows as more points are seen and more training lies between their steps and the
# checkpoint, and its growth slows towards the end of the run.

# %% [markdown]
# ## Explore: the ReorderExplorer
#
# Run the next cell. Choose a **point** (or keep the suggested one), pick which of its occurrences to
# move, use **⏮ first / ◀ earlier / later ▶ / last ⏭**, **shuffle** with a seed, **reverse**, apply a
# **curriculum** or **leave out** another point; the **to step** slider moves the selected occurrence
# (or, with *every occurrence*, the earliest one and the others with it) to a step of your choice. The
# status says *order changed: press Retrain*. Press
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
# **Predict, then check.** Select the point's *last* occurrence in the **move** menu and drag the
# **to step** slider to step 0, then Retrain. Will the exact TSLOO (removed everywhere) grow or shrink
# in magnitude?
#
# <details><summary>Answer</summary>
#
# It shrinks (the cell below checks it for this run): the point's last use came late in training, and
# after the move nothing of it comes late any more. For another point it can go the other way — try.
# </details>

# %%
checker = ReorderModel(Problem.moons(seed=SEED))           # a separate model: the widget keeps its state
occ = checker.order.occurrences(checker.point)
before_move = checker.retrain()
checker.move_occurrence_to(0, occurrence=len(occ) - 1)
after_move = checker.retrain()
print(f"point {checker.point}: steps {before_move.steps} -> {after_move.steps}; exact {before_move.exact:+.2e} -> {after_move.exact:+.2e}")

# %% tags=["nbval-check-output"]
print("moving its last occurrence to step 0 shrinks |exact TSLOO|:", abs(after_move.exact) < abs(before_move.exact))

# %% [markdown]
# ## Try it: two exercises with automatic checks
#
# **Exercise A — its strongest moment.** `explorer.result` is the run the widget shows now; at which of
# its steps (`result.steps`) does removing the followed point *alone* move the mean test loss the most
# (`result.per_step_exact`)?

# %%
strongest_step = None   # TODO: one of explorer.result.steps
ex.check_strongest_step(strongest_step, explorer.result)

# %% [markdown]
# **Exercise B — its most similar points.** Which 5 training points have embeddings most similar
# (cosine) to the followed point's (`explorer.result.embeddings`, one row per point)? Then leave them
# out (`explorer.model.leave_out(i)` for each, `explorer.retrain()`) and compare the followed point's
# exact TSLOO. Predict first: similar points seen later could absorb part of its effect (lesson 04) —
# so does leaving them out make it larger? Check in your run, and in a run with another seed
# (`DVE_TEACH_SEED`): the intuition is not a law.

# %%
most_similar = None     # TODO: a list of 5 training indices
ex.check_most_similar(most_similar, explorer.result)

# %% [markdown]
# ## What you learned
#
# - The value of a training point belongs to a **run**: the same point, moved to other steps of the
#   same data, gets a different exact leave-one-out value, and a different value at each step. Moved
#   from the start to the end of training, the followed point mattered more.
# - A data value embedding is computed once per run and answers "what if this point were removed" for
#   any test set by a dot product; after a reorder it agreed with the exact replay on which placement
#   mattered more, while its values were not equal to the exact ones.
# - Embeddings relative to the checkpoint at step *s* show how the values build up during training: the
#   cloud grows, and its growth slows.
# - `ReorderModel` / `ReorderExplorer` work on your own problem: `dve_teach.widgets.Problem(...)` or a recorded
#   `Trajectory` with its test set. An order must use the followed point (otherwise its value is 0 by
#   definition, and the model says so).

# %% [markdown]
# ## Exercises
#
# 1. **Early or late, for every point?** Repeat the key figure's experiment (move as early as it goes,
#    then as late) for 10 random points. For how many does the late placement matter more? Does the DVE
#    rank the two placements the same way for each?
# 2. **Shuffle seeds.** Retrain on 10 shuffles (`model.shuffle(seed)`) and record the followed point's
#    exact TSLOO: how much does its value vary with the order alone?
# 3. **Your own run.** Build an explorer on a run of your own: `ReorderModel(traj, test)`
#    with a `traj = dt.train(...)` on `dt.datasets.blobs(...)`, or `Problem.moons(lr=...)` (from `dve_teach.widgets`) with a
#    larger learning rate. Where do exact and DVE start to disagree?
#
# Solutions: run `%load solutions/05_reorder_and_watch_solutions.py` in a new cell (it loads the code into the cell; run it again to
# execute), or open [the file](solutions/05_reorder_and_watch_solutions.py).

# %% [markdown]
# ---
# Next: [06 · Phases of influence](06_phases_of_influence.ipynb) — from one point to every moment of
# training: which steps of a run matter most, checked by exact replay.
