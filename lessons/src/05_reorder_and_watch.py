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
# # 05 · Reorder and watch
#
# *About 35 minutes. Lessons 02–04 come first: exact trajectory-specific leave-one-out (TSLOO), the
# first-order unrolling of SGD and data value embeddings (DVE).*
#
# A training point's value is not a property of the point alone: it depends on **when** SGD saw it and
# on what came after. In this lesson you take one training run apart and put it back together in
# other orders — move a point earlier or later, shuffle, reverse, try a curriculum, leave points out —
# and after each **Retrain** you watch what happens to that point. Before you retrain, a first-order
# prediction tells you what the edit will do to the test loss, and where the point would do most good.
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
# - Predict an edit before retraining: the removal and insertion terms of lesson 03's first order, the
#   point's "best step" curve, and how far the prediction carries as edits grow.
#
# **Sections** (about 35 minutes): 1. The key figure (≈ 5 min) · 2. Explore: the ReorderExplorer
# (≈ 8 min) · 3. Watching the embeddings form (≈ 5 min) · 4. Predict before you retrain (≈ 8 min) ·
# 5. How far first order carries (≈ 3 min) · 6. Three exercises (≈ 6 min).
#
# **Notation** ([lesson 00's box](00_start_here.ipynb), the same symbols): $z_i$, $B_t$, $b$ — a training point, the batch of
# step $t$, the batch size; $\theta_t$ the parameters before step $t$, $\theta_T$ the final ones;
# $\eta_t$ the learning rate; $\mathrm{TSLOO}(i, t)$ the change of the test loss when $z_i$ is left
# out of step $t$ only, and "every occurrence" when it is left out of every step that uses it (≈ the sum
# of its one-step values: exercise A measures how close); positive = the point **helped**; the kick
# $\delta_{i,t} = \frac{\eta_t}{b}\nabla\ell(\theta_t, z_i)$; $K_t = \prod_{k>t}(I - \eta_k H_k)$; $M_t$
# the data value embedding's recursion matrix; $c_t$ lesson 06's per-step curve. This lesson adds $m$,
# the mean test loss, and the **insertion term** $\mathrm{ins}_t(i)$ of (5.1). Key equations are
# numbered (5.1)–(5.2).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import random

import numpy as np
import torch

import dve_teach as dt
from dve_teach import plots
from dve_teach.teach.exercises import lesson05 as ex
from dve_teach.teach.order_prediction import changed_pairs, random_moves
from dve_teach.widgets import Problem, ReorderExplorer, ReorderModel, order_for

SEED = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
random.seed(SEED); np.random.seed(SEED); torch.manual_seed(SEED)   # seed everything
torch.set_num_threads(1)                  # tiny problems: one thread is fastest
print(f"dve_teach {dt.__version__}, torch {torch.__version__}, fast mode: {dt.config.fast_mode()}")

# %% [markdown]
# ## 1. The key figure (≈ 5 min)
#
# A 2-D moons problem, a small MLP, one recorded SGD run. `ReorderExplorer(problem)` builds the widget
# you will use below; its `model` (a plain `ReorderModel`, no widgets needed) trains the run, fits the
# data value embeddings and follows the point whose estimated influence on the mean test loss is largest
# in size (the largest |DVE value|). Here we move that point as
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
# now. The two axes are only the directions along which the embeddings vary most: moving right or up
# does not mean "more helpful" (the right panel gives the value). *Middle:* its influence at each step where it was used — the DVE estimate (filled stems) and the
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
# ## 2. Explore: the ReorderExplorer (≈ 8 min)
#
# **Predict first.** The key figure moved *every* occurrence of the point. Now move only its **last**
# occurrence to the earliest step that does not use the point yet (step 0, unless its first occurrence
# is there), and retrain. Will its exact TSLOO (removed everywhere) grow or shrink in magnitude? Write
# your guess down, then try it in the explorer: select the point's *last* occurrence in the **move**
# menu, drag the **to step** slider to the earliest free step, and press **Retrain**.
#
# The explorer's other controls: choose a **point** (or keep the suggested one), use **⏮ first / ◀
# earlier / later ▶ / last ⏭**, **shuffle** with a seed, **reverse**, apply a **curriculum** or **leave
# out** another point; the **to step** slider moves the selected occurrence (or, with *every
# occurrence*, the earliest one and the others with it). At every edit, before any retraining, the
# readout's second line gives the **predicted** change of the mean test loss, and the figure under the
# slider the best-step curve of the selected occurrence (section 4 explains both). The status says
# *changed since the last Retrain: press Retrain*. Press **Retrain** (about a second) and compare the
# arrow, the per-step bars and the readout; each Retrain adds its (exact, predicted) pair to the scatter.
# **Play** runs over the training steps. Every control works from the keyboard (Tab, Enter, arrows);
# errors appear in the *log* pane.

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
# The answer to the question above, on a separate model (the widget keeps its own state):
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
earliest = min(t for t in range(len(checker.order)) if t not in occ)   # step 0 unless the point is there
checker.move_occurrence_to(earliest, occurrence=len(occ) - 1)
after_move = checker.retrain()
print(f"point {checker.point}: steps {before_move.steps} -> {after_move.steps}; exact {before_move.exact:+.2e} -> {after_move.exact:+.2e}")

# %% tags=["nbval-check-output"]
print("moving its last occurrence to the earliest free step shrinks |exact TSLOO|:",
      abs(after_move.exact) < abs(before_move.exact))


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
# ## 3. Watching the embeddings form (≈ 5 min)
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
        plots.embedding_map(a, model.frame(s), model.labels, point=p, seen=seen,
                            title=f"checkpoint at step {s}\n({int((~seen).sum())} points not seen yet, at 0)")
        if a is not ax[0, 0] and a.get_legend() is not None:
            a.get_legend().remove()                                      # one legend, in the first frame
seen_by = {s: np.isin(np.arange(model.n), [i for b in model.result.schedule.batches[:s] for i in b]) for s in moments}
size = [float(np.linalg.norm(model.frame(s), axis=1).mean()) for s in moments]
size_seen = [float(np.linalg.norm(model.frame(s)[seen_by[s]], axis=1).mean()) for s in moments]
print("mean distance from the origin, per frame, all points:  ", [f"{v:.4f}" for v in size])
print("                                     seen points only: ", [f"{v:.4f}" for v in size_seen])
fig

# %% [markdown]
# Why does the cloud grow? A point's position on the map is the **sum of its occurrence embeddings**
# (one per step where it was used, lesson 04), projected. Two things happen as the checkpoint moves
# later: more points have been seen (the grey ones sit at the origin until then), and the points
# already seen gain occurrences. What happens to **one** occurrence's embedding when more training
# follows it? Lesson 02 measured it: later steps absorb a kick. Below, the mean length (in all $P$
# dimensions) of the embeddings of the occurrences in the first quarter of the run, at each checkpoint.

# %%
first_quarter = [t for t in range(moments[0])]                     # steps 0 .. T/4 − 1
occ_norm = []
for s in moments:
    frame_dve = dt.DataValueEmbedding(**model.dve_kwargs).fit(model.result.traj.prefix(s))
    early_rows = torch.isin(frame_dve.steps_, torch.tensor(first_quarter))
    occ_norm.append(float(frame_dve.embeddings_[early_rows].norm(dim=1).mean()))
print("first-quarter occurrences, mean embedding length per checkpoint:", [f"{v:.2e}" for v in occ_norm])

# %% tags=["nbval-check-output"]
print("the cloud (mean over all points) is larger at the last frame than at the first:", size[-1] > size[0])
print("the first quarter's occurrence embeddings are shorter at the last checkpoint than at the first:",
      occ_norm[-1] < occ_norm[0])

# %% [markdown]
# So each occurrence's embedding **shrinks** as more training follows it (the later steps' factors
# $I - \eta_k F_k$ absorb it, as in lessons 02 and 04), while the cloud of per-point sums grows:
# points that had not been seen join it, and seen points add occurrences. The growth of the map is
# bookkeeping — more terms in each sum — not influence growing with time. (How the two means above
# compare between frames varies from run to run; the two checked facts do not.)

# %% [markdown]
# ## 4. Predict before you retrain (≈ 8 min)
#
# An edit of the order changes which points are in which batch. Take one change: point *i* is
# **inserted** into the batch of step *t*. Along the recorded run, step *t* then takes the extra step
# −(η_t/b) ∇ℓ(θ_t, z_i) — lesson 02's removal kick δ_{i,t} = (η_t/b) g_i with the opposite sign — and
# lesson 03's K_t = Π_{k>t} (I − η_k H_k) carries it to θ_T. To first order, the mean test loss m
# changes by the **insertion term**
#
# $$\mathrm{ins}_t(i) = -\frac{\eta_t}{b}\, \nabla m(\theta_T)^\top K_t\, \nabla \ell(\theta_t, z_i), \tag{5.1}$$
#
# and removing *i* from a step *t* where it was used changes m by the **removal term**
# −ins_t(i) = (η_t/b) ∇m(θ_T)ᵀ K_t ∇ℓ(θ_t, z_i): lesson 03's first-order TSLOO(i, t). An edit's
# prediction is the sum of its terms. Moving *i* from step t₁ to step t₂ is predicted as
#
# $$\Delta m \approx \mathrm{ins}_{t_2}(i) - \mathrm{ins}_{t_1}(i), \tag{5.2}$$
#
# the value the point has at t₁ minus the value it would have at t₂: the test loss goes down when the
# point goes where it would help more. As a function of t₂ this is the point's **best-step curve**.
# `dt.OrderPredictor(traj, test, mean=True).fit()` runs one reverse sweep (it keeps
# a_t = −η_t ∇m(θ_T)ᵀ K_t for every step, so that ins_t(i) = a_t · ∇ℓ(θ_t, z_i) / b); then
# `insertion_curve(i)` gives ins_t(i) for every t and `predict(schedule)` any edited order of the same
# length, in milliseconds, with nothing retrained. It is an approximation: every gradient is taken
# along the recorded run, so an inserted point sees the θ_t of the old run, not the θ that the rest of
# the edit has already moved.

# %%
model.reset(); r0 = model.retrain()         # the baseline run again (cached)
test = model.problem.test
predictor = dt.OrderPredictor(r0.traj, test, mean=True).fit()
c = predictor.insertion_curve(p)[:, 0]      # ins_t(p) of (5.1) for t = 0..T-1
first_order = dt.sgd_influence(r0.traj, test).at([p] * len(r0.steps), r0.steps).mean(1)
print(f"point {p} is used at steps {r0.steps}")
print("ins_t(p) there:               ", [f"{v:+.2e}" for v in c[r0.steps].tolist()])
print("first-order TSLOO(p, t) there:", [f"{v:+.2e}" for v in first_order.tolist()])

# %% tags=["nbval-check-output"]
print("identity: at its steps, ins_t(p) = -(first-order TSLOO):",
      torch.allclose(c[r0.steps], -first_order, rtol=1e-8, atol=1e-12 * float(first_order.abs().max())))

# %% [markdown]
# The model behind the widget does the same from its last Retrain: `model.best_step_curve(k)` is
# ins_t(p) − ins_{t₁}(p) for its k-th occurrence (at t₁), (5.2), and `model.predicted_change()` the prediction for
# the current order. The widget's slider does not move the point alone, though: to keep every batch at
# size b it **swaps** it with a point *j* of the target batch, and *j* moves the other way, so the
# slider's prediction adds j's two terms. The figure under the slider shows both (the same figure as
# here): the point alone (line), the slider's move (hollow dots), the current order (star, dashed line);
# on the right, every Retrain so far as (exact, predicted) — this model has a few from the cells above.

# %%
k = 0                                       # its first occurrence
t1 = r0.steps[k]
curve = model.best_step_curve(k)            # NaN where the point is already used
print(f"occurrence {k} at step {t1}: lowest predicted change {np.nanmin(curve):+.2e} at step {int(np.nanargmin(curve))}")
model.prediction_figure(occurrence=k)

# %% tags=["nbval-check-output"]
ok = np.isfinite(curve)
print("identity: the model's curve is ins_t - ins_t1, NaN exactly where the point is already used:",
      np.allclose(curve[ok], (c - c[t1]).numpy()[ok], rtol=1e-9, atol=1e-15)
      and set(np.flatnonzero(~ok).tolist()) == set(r0.steps) - {t1})

# %% [markdown]
# Slide it to a step (here the middle of the free ones) and split the slider's prediction into its four
# terms:

# %%
free = [t for t in range(len(c)) if t not in r0.steps]
t2 = free[len(free) // 2]
model.slide_to(t2, k)                       # what the slider does
j = (set(model.order.batches[t1]) - set(r0.schedule.batches[t1])).pop()   # the point it swapped with
cj = predictor.insertion_curve(j)[:, 0]
terms = {f"insert {p} at {t2}": c[t2], f"remove {p} from {t1}": -c[t1],
         f"insert {j} at {t1}": cj[t1], f"remove {j} from {t2}": -cj[t2]}
for name, v in terms.items():
    print(f"{name:18s} {float(v):+.2e}")
print(f"{'sum':18s} {float(sum(terms.values())):+.2e}; model.predicted_change() {model.predicted_change():+.2e}")

# %% tags=["nbval-check-output"]
print("identity: the slider's prediction is the sum of the two points' removal and insertion terms:",
      np.isclose(model.predicted_change(), float(sum(terms.values())), rtol=1e-9, atol=0))

# %% [markdown]
# **Predict, then check.** Now take the slider's best move: the lowest hollow dot over every occurrence
# of the point (the next cell finds it with `model.slider_curve`). Slide there and Retrain. Will the
# exact change of the mean test loss (the new run's minus the old run's) be negative, as predicted? And
# will it be larger or smaller in size than the prediction?

# %%
model.reset()
lowest = [np.nanmin(model.slider_curve(q)) for q in range(len(r0.steps))]
k_best = int(np.argmin(lowest))
t_best = int(np.nanargmin(model.slider_curve(k_best)))
model.slide_to(t_best, k_best)
predicted = model.predicted_change()
print(f"slide the occurrence at step {r0.steps[k_best]} to step {t_best}: predicted change {predicted:+.2e}")

# %% [markdown]
# <details><summary>Answer</summary>
#
# Negative, and a little smaller in size than predicted (the cell below checks both for this run). First
# order is a straight-line extrapolation of each term; the exact replay adds the second-order effects
# it leaves out, and for this best move they worked against it. Try the worst move (the highest dot) in
# the widget and compare.
# </details>

# %%
after = model.retrain()
pair = model.history[-1]                    # appended by this Retrain: (predicted, exact)
print(f"predicted {pair.predicted:+.2e}, exact {pair.exact:+.2e} "
      f"(test loss {r0.test_loss:.4f} -> {after.test_loss:.4f})")

# %% tags=["nbval-check-output"]
print("the predicted pair is the prediction made before the Retrain:", pair.predicted == predicted)
print("the exact change is the difference of the two test losses:", np.isclose(pair.exact, after.test_loss - r0.test_loss))
print("the best predicted move lowers the exact test loss:", pair.exact < 0)
print("... by less than predicted:", abs(pair.exact) < abs(pair.predicted))

# %% [markdown]
# ## 5. How far does first order carry? (≈ 3 min)
#
# One move is a small edit: two (point, step) pairs change. A reversed or reshuffled order changes
# nearly all of them, and the terms no longer add up independently — every point is inserted at a θ
# that the other changes have already moved. On three runs (this seed and the next two), 15 random
# one-point moves (`Schedule.move`, `random_moves`) and three whole-order edits (reverse, two shuffles)
# each, predicted (`OrderPredictor.predict`) against exact (`dt.exact_order_change`, a replay):

# %%
rows = []                                   # (run, predicted, exact, (point, step) pairs changed)
for run in range(3):
    prob = model.problem if run == 0 else Problem.moons(seed=SEED + run)
    traj = r0.traj if run == 0 else prob.fit(order_for(prob, "shuffle", prob.seed))
    pred_run = dt.OrderPredictor(traj, prob.test, mean=True).fit()
    S = traj.schedule
    edits = random_moves(S, 15, seed=SEED + run) + [S.reversed()] + [
        dt.Schedule.shuffled(S.n, S.batch_size, prob.epochs, seed=SEED + 10 + q) for q in range(2)]
    rows += [(run, float(pred_run.predict(e)[0]), float(dt.exact_order_change(traj, prob.test, e).mean()),
              changed_pairs(S, e)) for e in edits]
run_of, pred_all, exact_all, size = (np.array(col) for col in zip(*rows))
one = size == 2
rel = np.abs(pred_all - exact_all) / np.abs(exact_all)
spearman = dt.metrics.fidelity(pred_all[one], exact_all[one])["spearman"]
per_run = [dt.metrics.fidelity(pred_all[one & (run_of == q)], exact_all[one & (run_of == q)])["spearman"]
           for q in range(3)]
print(f"Spearman (rank correlation) over the 45 one-point moves: {spearman:.3f}; per run {[f'{v:.3f}' for v in per_run]}")
print(f"median relative error |predicted - exact| / |exact|: one-point moves {np.median(rel[one]):.3f}, "
      f"whole-order edits {np.median(rel[~one]):.3f}")
with plots.style():
    fig, ax = plots.new_figure(2, figsize=(9, 3.2))
    plots.prediction_scatter(ax[0, 0], pred_all[one], exact_all[one], size[one])
    plots.prediction_scatter(ax[0, 1], pred_all, exact_all, size)
    ax[0, 0].set_title("one-point moves, 3 runs"); ax[0, 1].set_title("every edit, 3 runs")
fig

# %% tags=["nbval-check-output"]
print("over the 45 one-point moves of the 3 runs, predicted and exact have Spearman above 0.95:", spearman > 0.95)
print("over the 3 runs, whole-order edits have a larger median relative error than one-point moves:",
      np.median(rel[~one]) > np.median(rel[one]))

# %% [markdown]
# For one-point moves first order ranks the edits almost perfectly; for whole-order edits its relative
# error is larger. Both are pooled over the three runs, because one run's 15 moves and three
# whole-order edits are a small sample. In the widget every Retrain adds its (exact, predicted) pair to
# the scatter under the slider, coloured by the size of the edit: watch the dots leave the diagonal as
# your edits grow.

# %% [markdown]
# ## 6. Try it: three exercises with automatic checks (≈ 6 min)
#
# **Exercise A — every occurrence, or the sum of its steps?** `explorer.result` is the run the widget
# shows now. `result.exact` is the exact TSLOO of removing the followed point at **every** occurrence;
# `result.per_step_exact` holds the exact TSLOO of removing it at **one** of its steps only. Lesson 00's
# box says the first is "≈ the sum" of the second. **Predict first:** within 1%, 10%, or not even that?
# Then compute the relative gap, (every-occurrence − sum of the one-step values) / |every-occurrence|.
# First write the rule as a function, `additivity_gap(exact, per_step)`: `exact` a number, `per_step` a
# sequence of numbers (the graded version also tries it on other values, negative ones included).

# %% [raw]
# # BEGIN QUESTION
# name: l05_additivity
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def additivity_gap(exact, per_step): ... ; then relative_gap = a number (negative if the sum is larger)
# BEGIN SOLUTION NO PROMPT
def additivity_gap(exact, per_step):
    """(every-occurrence value − sum of the one-step values) / |every-occurrence value|."""
    return (float(exact) - sum(float(v) for v in per_step)) / abs(float(exact))


print(f"every occurrence {explorer.result.exact:+.3e}, "
      f"sum of one-step values {sum(float(v) for v in explorer.result.per_step_exact):+.3e}")
# END SOLUTION
relative_gap = additivity_gap(explorer.result.exact, explorer.result.per_step_exact)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_additivity(relative_gap, explorer.result)

# %% [raw]
# # BEGIN TESTS

# %%
def test_gap_of_this_run(relative_gap, explorer):
    from dve_teach.teach.exercises import lesson05 as ex
    feedback = ex.check_additivity(relative_gap, explorer.result)
    assert feedback, str(feedback)
test_gap_of_this_run(relative_gap, explorer)

# %%
# HIDDEN
def test_additivity_gap_on_other_values(additivity_gap):
    import math
    cases = [(2.0, [1.0, 0.5], 0.25), (-2.0, [-1.0, -0.5], -0.25), (1e-4, [6e-5, 6e-5], -0.2),
             (-3.0, [-4.0], 1 / 3), (5.0, [5.0], 0.0), (0.5, [0.1, 0.1, 0.1, 0.1], 0.2)]
    for exact, parts, truth in cases:
        got = float(additivity_gap(exact, parts))
        assert math.isclose(got, truth, rel_tol=1e-9, abs_tol=1e-12), \
            f"additivity_gap({exact}, {parts}) should be {truth:+.4f} (divide by |exact|: mind negative values)"
test_additivity_gap_on_other_values(additivity_gap)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **Exercise B — its most similar points.** Which 5 training points have embeddings most similar
# (cosine) to the followed point's (`explorer.result.embeddings`, one row per point)? Then leave them
# out (`explorer.model.leave_out(i)` for each, `explorer.retrain()`) and compare the followed point's
# exact TSLOO. Predict first: similar points seen later could absorb part of its effect (lesson 04) —
# so does leaving them out make it larger? Check in your run, and in a run with another seed
# (`DVE_TEACH_SEED`): the intuition is not a law. First write the search as a function,
# `most_similar_points(E, p, k)`: the `k` rows of `E` (one embedding per row) most similar to row `p`
# by cosine, `p` itself excluded (the graded version also tries it on other embeddings and `k`).

# %% [raw]
# # BEGIN QUESTION
# name: l05_most_similar
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def most_similar_points(E, p, k): ... ; then most_similar = a list of 5 training indices
# BEGIN SOLUTION NO PROMPT
def most_similar_points(E, p, k):
    """The k rows of E (any order) with the largest cosine similarity to row p, p excluded."""
    cos = torch.nn.functional.cosine_similarity(E, E[p][None], dim=1)
    cos[p] = -2.0                                   # below any cosine: p is never picked
    return cos.argsort(descending=True)[:k].tolist()


similar_run = explorer.result
similar_model = ReorderModel(Problem.moons(seed=SEED), point=similar_run.point)   # the widget's model stays as it is
similar_model.set_order(similar_run.order)
with_similar = similar_model.retrain()
for similar_i in most_similar_points(similar_run.embeddings, similar_run.point, 5):
    similar_model.leave_out(similar_i)
without_similar = similar_model.retrain()
print(f"point {similar_run.point}: exact {with_similar.exact:+.2e} with its similar points, "
      f"{without_similar.exact:+.2e} without")
# END SOLUTION
most_similar = most_similar_points(explorer.result.embeddings, explorer.result.point, 5)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_most_similar(most_similar, explorer.result)

# %% [raw]
# # BEGIN TESTS

# %%
def test_most_similar_of_this_run(most_similar, explorer):
    from dve_teach.teach.exercises import lesson05 as ex
    feedback = ex.check_most_similar(most_similar, explorer.result)
    assert feedback, str(feedback)
test_most_similar_of_this_run(most_similar, explorer)

# %%
# HIDDEN
def test_most_similar_points_on_other_embeddings(most_similar_points):
    import torch
    gen = torch.Generator().manual_seed(2026)
    for n, d, k in ((12, 3, 1), (40, 8, 5), (40, 8, 39), (200, 16, 10)):
        E = torch.randn(n, d, generator=gen, dtype=torch.float64)
        E *= torch.rand(n, 1, generator=gen, dtype=torch.float64) * 100   # long rows: a dot product would favour them
        for p in (0, n // 2, n - 1):
            kept = E.clone()
            cos = torch.nn.functional.cosine_similarity(E, E[p][None], dim=1)
            cos[p] = -2.0
            truth = set(cos.argsort(descending=True)[:k].tolist())
            got = most_similar_points(E, p, k)
            got = [int(i) for i in (got.tolist() if isinstance(got, torch.Tensor) else got)]
            assert len(got) == k, f"most_similar_points(E, {p}, {k}) should give {k} indices, got {len(got)}"
            assert p not in got, "most_similar_points should leave the point itself out"
            assert set(got) == truth, f"most_similar_points(E, {p}, {k}) is not the top {k} by cosine similarity"
            assert torch.equal(E, kept), "most_similar_points should not change E"
test_most_similar_points_on_other_embeddings(most_similar_points)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **Exercise C — the best move.** On the run the widget shows (`explorer.result`: `traj`, `point`,
# `steps`, `schedule`; the test data is `explorer.model.problem.test`), which single move of the
# followed point *alone* — out of one of its steps t₁, into a step t₂ that does not use it
# (`result.schedule.move(point, t1, t2)`) — is predicted to lower the mean test loss most? Use
# `dt.OrderPredictor(..., mean=True).fit().insertion_curve(point)` and the identity above; answer
# `(t1, t2)`. Then check your move with one exact replay (`dt.exact_order_change`). First write the
# choice as a function, `best_move_from(c, steps)`: `c` the insertion curve (one number per step),
# `steps` the steps that use the point (the graded version also tries it on other curves).

# %% [raw]
# # BEGIN QUESTION
# name: l05_best_move
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def best_move_from(c, steps): ... ; then best_move = (from_step, to_step)
# BEGIN SOLUTION NO PROMPT
def best_move_from(c, steps):
    """Moving the point from t1 to t2 is predicted as c[t2] − c[t1]: out of the occurrence with the
    largest c, into the free step with the smallest c."""
    c = [float(v) for v in c]
    free = [t for t in range(len(c)) if t not in steps]
    return max(steps, key=lambda t: c[t]), min(free, key=lambda t: c[t])


move_run, move_test = explorer.result, explorer.model.problem.test
move_curve = dt.OrderPredictor(move_run.traj, move_test, mean=True).fit().insertion_curve(move_run.point)[:, 0]
move_from, move_into = best_move_from(move_curve, move_run.steps)
move_exact = dt.exact_order_change(move_run.traj, move_test,
                                   move_run.schedule.move(move_run.point, move_from, move_into)).mean()
print(f"move {move_from} -> {move_into}: predicted {float(move_curve[move_into] - move_curve[move_from]):+.2e}, "
      f"exact {float(move_exact):+.2e}")
# END SOLUTION
best_move = best_move_from(move_curve, move_run.steps)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_best_move(best_move, explorer.result, explorer.model.problem.test)

# %% [raw]
# # BEGIN TESTS

# %%
def test_best_move_of_this_run(best_move, explorer):
    from dve_teach.teach.exercises import lesson05 as ex
    feedback = ex.check_best_move(best_move, explorer.result, explorer.model.problem.test)
    assert feedback, str(feedback)
test_best_move_of_this_run(best_move, explorer)

# %%
# HIDDEN
def test_best_move_from_on_other_curves(best_move_from):
    import torch
    gen = torch.Generator().manual_seed(2026)
    for T, used in ((5, 1), (12, 3), (60, 7), (60, 59)):
        for _ in range(5):
            c = torch.randn(T, generator=gen, dtype=torch.float64)
            steps = sorted(torch.randperm(T, generator=gen)[:used].tolist())
            best = min(float(c[b] - c[a]) for a in steps for b in range(T) if b not in steps)
            got = best_move_from(c, steps)
            t1, t2 = (int(v) for v in got)
            assert t1 in steps, f"best_move_from: the point is not used at step {t1} (steps {steps})"
            assert t2 not in steps and 0 <= t2 < T, f"best_move_from: step {t2} already uses the point or is outside the run"
            assert abs(float(c[t2] - c[t1]) - best) < 1e-12, \
                "best_move_from does not give the most negative c[t2] - c[t1] for some curves"
test_best_move_from_on_other_curves(best_move_from)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## What you learned
#
# - The value of a training point belongs to a **run**: the same point, moved to other steps of the
#   same data, gets a different exact leave-one-out value, and a different value at each step. Shifted
#   as late as it goes (every occurrence by the same number of steps, so that its last use is the last
#   step) instead of as early as it goes, the followed point mattered more.
# - A data value embedding is computed once per run and answers "what if this point were removed" for
#   any test set by a dot product; after a reorder it agreed with the exact replay on which placement
#   mattered more, while its values were not equal to the exact ones.
# - Embeddings relative to the checkpoint at step *s* show how the values build up during training: the
#   cloud of per-point sums grows because points join it and add occurrences, while each occurrence's
#   own embedding shrinks as more training follows it.
# - An edit can be predicted before retraining: to first order it is a sum of insertion terms ins_t(i) and
#   removal terms −ins_t(i) (5.1; lesson 03's first-order TSLOO), all from one reverse sweep. Moving a point from
#   t₁ to t₂ is predicted as ins_{t₂} − ins_{t₁} (5.2): its best-step curve. The slider's swap adds the partner's
#   terms (an identity, checked).
# - Over 45 random one-point moves on three runs, predicted and exact changes had Spearman above 0.95;
#   the best predicted move lowered the exact test loss, by less than predicted; whole-order edits had
#   a larger relative error.
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
# 4. **When does first order stop?** On the baseline run, apply k random one-point moves at once
#    (chain `Schedule.move`, or `random_moves` repeatedly) for k = 1, 4, 16, 64, a few edits each, and
#    plot the median relative error of `OrderPredictor.predict` against `dt.exact_order_change` versus k.
#
# Worked solutions: in this lesson's source, [`src/05_reorder_and_watch.py`](src/05_reorder_and_watch.py),
# between the lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1, 2 and 4 (3 is your own run).
# BEGIN SOLUTION NO PROMPT
def open_exercise_solutions():
    """Exercises 1, 2 and 4 on the widget's run (their own models: the widget's state is left as it was)."""
    r = explorer.result
    test = explorer.model.problem.test
    # 1. Early vs late for 10 random points.
    gen = np.random.default_rng(SEED)
    late_wins, agree = 0, 0
    for p in gen.choice(len(r.embeddings), 10, replace=False):
        m = ReorderModel(Problem.moons(seed=SEED), point=int(p))
        m.move_to("first"); early = m.retrain()
        m.move_to("last"); late = m.retrain()
        late_wins += abs(late.exact) > abs(early.exact)
        agree += (abs(late.exact) > abs(early.exact)) == (abs(late.estimate) > abs(early.estimate))
    print(f"1. late mattered more for {late_wins} of 10 points; the DVE ranked the two placements the same "
          f"way for {agree} of 10")

    # 2. The followed point's exact TSLOO over 10 shuffles.
    m = ReorderModel(Problem.moons(seed=SEED), point=r.point)
    values = []
    for seed in range(10):
        m.shuffle(seed)
        values.append(m.retrain().exact)
    print(f"2. exact TSLOO over 10 shuffles: {min(values):+.2e} to {max(values):+.2e}")

    # 4. First order against the number of one-point moves applied at once (baseline run).
    base = ReorderModel(Problem.moons(seed=SEED), point=r.point).result
    pred = dt.OrderPredictor(base.traj, test, mean=True).fit()
    for k in (1, 4, 16, 64):
        errors = []
        for rep in range(3):
            s = base.schedule
            for step in range(k):   # chain k random moves, each from the schedule so far
                s = random_moves(s, 1, seed=1000 * k + 10 * rep + step)[0]
            p_hat = float(pred.predict(s)[0])
            e = float(dt.exact_order_change(base.traj, test, s).mean())
            errors.append(abs(p_hat - e) / abs(e))
        print(f"4. {k:2d} moves at once: median relative error {np.median(errors):.3f}")


open_exercise_solutions()
# END SOLUTION

# %% [markdown]
# ---
# Next: [06 · Phases of influence](06_phases_of_influence.ipynb) — from one point to every moment of
# training: which steps of a run matter most, checked by exact replay.
