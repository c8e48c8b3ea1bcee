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
# # 06 · Phases of influence
#
# *About 35 minutes. Lessons 02–04 come first: exact trajectory-specific leave-one-out (TSLOO),
# SGD-influence and data value embeddings (DVE).*
#
# So far we asked how much **one point** mattered. Now we ask how much each **moment of training**
# mattered. Average the influence of the points of each batch and plot it against the step: the paper
# (§5.3, Figure 1(a)) finds three regimes in the pretraining of a 410M-parameter language model:
#
# 1. a **short, very influential start**;
# 2. a **low basin** through early and middle training;
# 3. a **gradual ascent** at the end: the later a batch, the more it matters.
#
# Here we measure the same curve on 8×8 digits, where we can check it against exact replay. Some of
# it carries over to this toy, and some of it changes.
#
# A caveat about the paper's picture: its language model was trained with an Adam-family optimizer,
# while the embeddings it plots come from the SGD recursion, applied as a proxy (§6 lists a proper
# extension as future work). Here everything is plain SGD, so the exact replay and the estimators
# answer the same question; lesson 09 measures what the proxy costs under Adam.
#
# ## Goals
#
# - Compute the per-step curve: the mean over each batch of |influence on the mean test loss|,
#   divided by the learning rate η_t (`Influence.by_step("mean_abs", per_lr=True)`).
# - See which of the three regimes a short run and a longer warm-up + cosine run have. Check the curve
#   against exact TSLOO for a sample of (point, step) pairs.
# - Test the explanations: large early gradients, later training absorbing earlier influence, and late
#   steps having little training after them.
# - See where the data value embedding's Fisher approximation flattens the curve.
# - Run the duplicate experiment: the same point seen in the basin and seen late, in raw terms and per
#   unit of learning rate.
#
# **Sections** (about 35 minutes): 1. The curve and a question to explore (≈ 8 min) · 2. Reading the
# key figure, two exercises (≈ 7 min) · 3. A short run (≈ 4 min) · 4. Why: gradients and absorption
# (≈ 7 min) · 5. Why the embedding is flatter (≈ 3 min) · 6. The duplicate experiment (≈ 6 min).
#
# **Notation** ([lesson 00's box](00_start_here.ipynb), the same symbols): $z_i$, $B_t$, $b$ — a training point, the batch of
# step $t$, the batch size; $\theta_t$ the parameters before step $t$, $\theta_T$ the final ones;
# $\eta_t$ the learning rate; $\mathrm{TSLOO}(i, t)$ the change of the test loss when $z_i$ is left
# out of step $t$ only (one occurrence, the kind this lesson uses throughout); positive = the point
# **helped**; the kick $\delta_{i,t} = \frac{\eta_t}{b}\nabla\ell(\theta_t, z_i)$;
# $K_t = \prod_{k>t}(I - \eta_k H_k)$; $M_t$ the data value embedding's recursion matrix; $c_t$ the
# per-step curve, defined in (6.2) below. Key equations are numbered (6.1)–(6.3).

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import numpy as np
import torch
from scipy import stats

import dve_teach as dt
from dve_teach import plots
from dve_teach.influence.counterfactual import divergences
from dve_teach.teach.exercises import lesson06 as ex
from dve_teach.teach.phases import PhaseModel
from dve_teach.widgets import PhaseExplorer, Problem

seed = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
np.random.seed(seed); torch.manual_seed(seed)
torch.set_num_threads(1)                  # tiny models: one thread is fastest
sized = dt.config.sized                   # sized(full, fast): smaller problems when DVE_TEACH_FAST=1
problem = Problem.digits(n_train=sized(600, 400), n_test=sized(200, 100), batch_size=32, seed=seed)
print(f"{len(problem.train)} training digits, {len(problem.test)} test digits, batch size {problem.batch_size}")

# %% [markdown]
# ## 1. The curve, and a question to explore (≈ 8 min)
#
# For every (point, step) occurrence we have an estimate of $\mathrm{TSLOO}(z_i, t)$: how much the mean
# test loss rises if $z_i$ is left out of step $t$ only. To first order it is
#
# $$\mathrm{TSLOO}(z_i, t) \approx \frac{\eta_t}{b}\,\nabla L_{\text{test}}(\theta_T)^\top K_t\,\nabla\ell(\theta_t, z_i) \tag{6.1}$$
#
# with
# $K_t = \prod_{k>t}(I - \eta_k H_k)$ (lesson 03). The factor $\eta_t$ in front only says how big the
# step was. The paper divides each batch's influence by its learning rate "for a fair comparison". We
# also take the magnitude, because within a batch helpful and harmful points cancel — a departure from
# the paper, whose Figure 1(a) averages the signed scores, so its curve can differ where signs mix. The
# curve is
#
# $$c_t = \frac{1}{\eta_t}\cdot\frac{1}{|B_t|}\sum_{i\in B_t}\big|\mathrm{TSLOO}(z_i, t)\big|. \tag{6.2}$$
#
# `PhaseModel` trains the digits problem with a learning-rate schedule (`dt.lr`). It then computes
# $c_t$ for every step with two first-order estimators of (6.1):
#
# - **SGD-influence** (lesson 03), with the exact Hessians $H_k$;
# - the **data value embedding** (lesson 04), with the paper's empirical-Fisher approximation
#   $H_k \approx \frac1b\sum g g^\top$.
#
# It also computes exact TSLOO, by replay, for a few points of 12 evenly spaced steps.
#
# ### The key figure: a longer run with warm-up and cosine decay
#
# Fifteen epochs with `dt.lr.warmup_cosine`: η rises linearly for the first 10% of the steps and
# then falls along a half cosine (left panel).

# %%
long = PhaseModel(problem, schedule="warmup_cosine", peak=0.4, epochs=15, seed=seed)
r = long.update()
print(long.summary())
long.figure()

# %% [markdown]
# **Predict, then explore.** The run above differs from a plain one in three ways: it is long (15
# epochs), its η warms up and then decays (the paper's "high-impact warm-up phase"), and its peak is
# 0.4. (a) A run of **3 epochs at a constant η = 0.2** — will its curve still start far above a basin?
# (b) If not, which **one** of the three changes brings the high start back: 15 epochs at constant
# 0.2, warm-up + cosine for 3 epochs, or a constant 0.4 for 3 epochs? Write your guesses down, then
# try them in the explorer: choose the schedule, its peak and the run length; it retrains, recomputes
# both curves and replays the sampled points (a few seconds per change; a setting seen before comes
# from the cache). It starts from the long run above, already computed. Section 3 answers (a).

# %% tags=["widget"]
PhaseExplorer(model=long)

# %% [markdown]
# ## 2. Reading the key figure (≈ 7 min)
#
# Read the blue curve (SGD-influence) from left to right (thin lines: every step; thick lines: a moving
# average over about a twentieth of the run). The first steps stand far above everything after them.
# The curve then drops into a basin and rises again towards the end (checked: the end is more than
# twice the basin). The diamonds are exact replays of only 8 sampled points of their batch (6 in fast
# mode), not of the whole batch, so they are noisy, and in many runs the late diamonds sit near basin
# level although the curve climbs. What they do show is that the estimator is right **point by
# point**: SGD-influence at the same sampled points ranks the sampled steps almost exactly as the
# replays do (checked below; the hollow circles are SGD-influence at the diamonds' points). The curve itself is SGD-influence averaged over whole batches — a
# first-order estimate we trust because of that agreement, not a replay. Each claim, checked (the start, basin and end are the first, the lowest middle
# and the last tenth of the steps, `dt.phases.phase_levels`):

# %% tags=["nbval-check-output"]
sv, dv = r["sgd_levels"], r["levels"]
e, s = r["exact_curve"].numpy(), r["sgd_at_samples"].numpy()
print("SGD-influence: the start is more than 2x the basin:", sv["start_over_basin"] > 2)
print("SGD-influence: the end is more than 2x the basin (a late ascent):", sv["end_over_basin"] > 2)
print("the basin lies inside the run, not at its ends:", 1 <= sv["basin_bin"] <= 8)
print("exact TSLOO at the sampled steps ranks them like SGD-influence (Spearman > 0.9):",
      stats.spearmanr(e, s)[0] > 0.9)
print("exact TSLOO: the first sampled step is above the median of the middle ones:",
      e[0] > np.median(e[1:-1]))

# %% [markdown]
# **Exercise A — the curve by hand.** `r["influence"]` holds the data value embedding's score of every
# (point, step) occurrence on every test point (`.per_occurrence` [occurrences, test points], `.steps`
# the step of each row), and `r["traj"].lrs` the learning rates. Compute the orange curve
# $c_t$ of (6.2) yourself, as a Tensor with one value per step. Write it as a function,
# `phase_curve(per_occurrence, steps, lrs)` (the graded version also tries it on other scores).

# %% [raw]
# # BEGIN QUESTION
# name: l06_phase_curve
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def phase_curve(per_occurrence, steps, lrs): ... ; then my_curve = Tensor[T]
# BEGIN SOLUTION NO PROMPT
def phase_curve(per_occurrence, steps, lrs):
    """c_t (6.2): per occurrence the mean over the test points, then |.|; per step the mean, / η_t."""
    score = per_occurrence.mean(1).abs()
    return torch.stack([score[steps == t].mean() for t in range(len(lrs))]) / lrs


# END SOLUTION
my_curve = phase_curve(r["influence"].per_occurrence, r["influence"].steps, r["traj"].lrs)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_phase_curve(my_curve, r["influence"], r["traj"].lrs)

# %% [raw]
# # BEGIN TESTS

# %%
def test_curve_of_this_run(my_curve, r):
    from dve_teach.teach.exercises import lesson06 as ex
    feedback = ex.check_phase_curve(my_curve, r["influence"], r["traj"].lrs)
    assert feedback, str(feedback)
test_curve_of_this_run(my_curve, r)

# %%
# HIDDEN
def test_phase_curve_on_other_scores(phase_curve):
    import torch
    gen = torch.Generator().manual_seed(2026)
    for T, n_test in ((3, 1), (7, 5), (40, 12)):
        counts = torch.randint(1, 6, (T,), generator=gen)           # 1 to 5 occurrences per step
        steps = torch.repeat_interleave(torch.arange(T), counts)
        steps = steps[torch.randperm(len(steps), generator=gen)]   # rows in any order
        scores = torch.randn(len(steps), n_test, generator=gen, dtype=torch.float64)   # signs mixed
        lrs = torch.rand(T, generator=gen, dtype=torch.float64) * 0.5 + 1e-3
        occ = scores.mean(1).abs()
        truth = torch.stack([occ[steps == t].mean() for t in range(T)]) / lrs
        got = torch.as_tensor(phase_curve(scores, steps, lrs), dtype=torch.float64).reshape(-1)
        assert got.shape == truth.shape, f"phase_curve should give one value per step ({T}), got {tuple(got.shape)}"
        assert torch.allclose(got, truth, rtol=1e-9, atol=0), \
            "phase_curve is not c_t for some scores (mean over test points, then |.|, mean per step, / η_t)"
test_phase_curve_on_other_scores(phase_curve)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# **Exercise B — without dividing by η.** The curve is divided by $\eta_t$ in (6.2). Undo it: the raw
# curve is `r["sgd_curve"] * r["traj"].lrs`, the mean |SGD-influence| of each batch. **Predict first:**
# is its start/basin ratio larger or smaller than the divided curve's (`sv["start_over_basin"]`, printed
# by `long.summary()`)? Look at the learning-rate panel. Then compute it with
# `dt.phases.phase_levels(...)["start_over_basin"]`. Write it as a function,
# `undivided_start_over_basin(curve, lrs)` (the graded version also tries it on other curves).

# %% [raw]
# # BEGIN QUESTION
# name: l06_raw_ratio
# points: 1

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def undivided_start_over_basin(curve, lrs): ... ; then raw_start_over_basin = a number
# BEGIN SOLUTION NO PROMPT
def undivided_start_over_basin(curve, lrs):
    """Multiply the η-divided curve back by η_t, then the first tenth over the lowest middle tenth.
    Predicted: smaller than the divided curve's ratio, the warm-up's η_t being small at the start."""
    return dt.phases.phase_levels(curve * lrs)["start_over_basin"]


# END SOLUTION
raw_start_over_basin = undivided_start_over_basin(r["sgd_curve"], r["traj"].lrs)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_raw_ratio(raw_start_over_basin, r["sgd_curve"], r["traj"].lrs)

# %% [raw]
# # BEGIN TESTS

# %%
def test_raw_ratio_of_this_run(raw_start_over_basin, r):
    from dve_teach.teach.exercises import lesson06 as ex
    feedback = ex.check_raw_ratio(raw_start_over_basin, r["sgd_curve"], r["traj"].lrs)
    assert feedback, str(feedback)
test_raw_ratio_of_this_run(raw_start_over_basin, r)

# %%
# HIDDEN
def test_undivided_start_over_basin_on_other_curves(undivided_start_over_basin):
    import math
    import numpy as np
    import torch
    gen = torch.Generator().manual_seed(2026)
    for T in (10, 37, 200):
        lrs = torch.rand(T, generator=gen, dtype=torch.float64) + 0.01
        # a curve that is 1/η_t: undivided it is flat, so the ratio is 1
        got = float(undivided_start_over_basin(1 / lrs, lrs))
        assert math.isclose(got, 1.0, rel_tol=1e-9), "undivided_start_over_basin(1/lrs, lrs) should be 1 (a flat raw curve)"
        curve = torch.rand(T, generator=gen, dtype=torch.float64) + 0.01
        chunks = [float(c.mean()) for c in np.array_split((curve * lrs).numpy(), 10)]
        truth = chunks[0] / min(chunks[1:-1])
        got = float(undivided_start_over_basin(curve, lrs))
        assert math.isclose(got, truth, rel_tol=1e-9), \
            "undivided_start_over_basin is not the first tenth of curve·η over its lowest middle tenth for some curves"
test_undivided_start_over_basin_on_other_curves(undivided_start_over_basin)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# So the toy has all three regimes of the paper. The orange curve, the data value embedding, is
# much flatter:

# %% tags=["nbval-check-output"]
print("DVE (Fisher): its start/basin ratio is less than half of SGD-influence's:",
      dv["start_over_basin"] < 0.5 * sv["start_over_basin"])
print("DVE (Fisher): its end is still above its basin:", dv["end_over_basin"] > 1)

# %% [markdown]
# We come back to that gap below (section 5). First, a short run.
#
# ## 3. A short run (≈ 4 min)
#
# Question (a) of section 1: the same problem with a constant η = 0.2 for only 3 epochs (a fifth of
# the steps, no warm-up). Will its curve still start far above a basin?

# %%
short = PhaseModel(problem, schedule="constant", peak=0.2, epochs=3, seed=seed)
rs = short.update()
print(short.summary())
short.figure()

# %% tags=["nbval-check-output"]
ss = rs["sgd_levels"]
print("short run: start/basin below 2 (no high-impact start):", ss["start_over_basin"] < 2)
print("short run: the start stands out less than in the long run:", ss["start_over_basin"] < sv["start_over_basin"])
print("short run: the end is above the basin:", ss["end_over_basin"] > 1)

# %% [markdown]
# No: in a run of a few dozen steps the first steps do not stand out, so there is no basin between a
# high start and a high end. But the two runs differ in three things at once — length (3 vs 15
# epochs), schedule (constant vs warm-up + cosine, and the warm-up is what the paper calls the
# high-impact phase) and peak (0.2 vs 0.4) — so this comparison alone cannot say which one matters
# (question (b) of section 1). A cheap run isolates length: 3 epochs with the long run's schedule
# **and** peak (warm-up + cosine, 0.4), so that it differs from the long run in length only.

# %%
short_cosine = PhaseModel(problem, schedule="warmup_cosine", peak=0.4, epochs=3, seed=seed)
rc = short_cosine.update()
print(f"SGD-influence start/basin: 3 epochs, constant 0.2: {ss['start_over_basin']:.2f} | "
      f"3 epochs, warm-up + cosine 0.4: {rc['sgd_levels']['start_over_basin']:.2f} | "
      f"15 epochs, warm-up + cosine 0.4 (the key figure): {sv['start_over_basin']:.2f}")

# %% tags=["nbval-check-output"]
print("3 epochs with the long run's schedule and peak: still no high-impact start (start/basin below 2):",
      rc["sgd_levels"]["start_over_basin"] < 2)

# %% [markdown]
# The warm-up + cosine schedule and its larger peak do not bring the high start back in a short run
# (checked), so of the three differences, length remains. That fits one reading: both the high start
# and the basin are made by the *later* steps, which stretch the first kicks and absorb the middle
# ones (measured in the next section). The opposite one-factor run, 15 epochs at a constant 0.2, costs
# as much as the long run: run it in the explorer of section 1 and see whether the start returns.
#
# ## 4. Why: large early gradients, and later steps absorbing influence (≈ 7 min)
#
# The paper offers two explanations.
#
# 1. **Early gradients are large** and shrink quickly. A large $\nabla\ell(\theta_t, z_i)$ is a large
#    kick, so early points can keep a large influence even after everything that follows.
# 2. **Influence saturation.** Every later step multiplies the kick by $(I - \eta_k H_k)$, which shrinks
#    it along the directions the later batches care about. Points seen earlier face more such steps.
#    The paper notes that the decay is strongest when *similar* points come later. A point seen at the
#    end has almost no steps after it ($K_t \approx I$), hence the ascent.
#
# The first one we can read off the run. Below is the mean per-sample gradient norm of each batch.

# %%
g = r["grad_norms"]
glv = dt.phases.phase_levels(g)
with plots.style():
    fig, ax = plots.new_figure(2, figsize=(9, 3))
    ax[0, 0].plot(g.numpy(), color=plots.COLORS[2])
    ax[0, 0].set(xlabel="step t", ylabel=r"mean $\|\nabla\ell(\theta_t, z_i)\|$", title="gradient norms per batch")
    ratio = (r["sgd_curve"] / g).numpy()
    ax[0, 1].plot(np.arange(4, len(ratio) - 4), np.convolve(ratio, np.ones(9) / 9, mode="valid"),
                  color=plots.COLORS[0])                          # centred 9-step moving average
    ax[0, 1].set(xlabel="step t", ylabel="c_t / mean ‖g‖", yscale="log",
                 title="influence per unit of gradient (SGD-influence)")
fig

# %% tags=["nbval-check-output"]
share = dt.phases.phase_levels(r["sgd_curve"] / g)
print("gradient norms fall by more than 3x from the first tenth to the last:", glv["start"] > 3 * glv["end"])
print("per unit of gradient, the last tenth still beats the middle (less training after it):",
      share["end_over_basin"] > 1.5)
print("per unit of gradient, the first tenth still beats the middle:", share["start_over_basin"] > 1)

# %% [markdown]
# Gradient size explains part of the start, but not all of it. Per unit of gradient (right panel),
# the first steps still stand above the basin. The rest must come from the factors $K_t$. Lesson 02
# measured them exactly: remove a point at step $s$, replay, and compare how far the two runs end
# apart with the kick they started from,
#
# $$\text{surviving fraction} = \lVert\theta'_T-\theta_T\rVert \,/\, \lVert\delta_{i,s}\rVert. \tag{6.3}$$
#
# We do
# this for 8 points of the first batch, of a basin batch (35% of the way through) and of a late
# batch (90%).

# %%
traj, T = r["traj"], r["traj"].T
surviving = {}
for where, step in [("start", 0), ("basin", int(0.35 * T)), ("late", int(0.9 * T))]:
    pts = list(traj.schedule.batches[step][:8])
    gaps = divergences(traj, pts, [step] * len(pts))          # ‖θ'_t − θ_t‖ for t = 0..T, one row per removal
    surviving[where] = float((gaps[:, -1] / gaps[:, step + 1]).median())
    print(f"removed at step {step} ({where}): median ‖θ'_T − θ_T‖ / ‖δ‖ = {surviving[where]:.2f}")

# %% tags=["nbval-check-output"]
print("a kick at the first step ends LARGER than it started (amplified):", surviving["start"] > 1)
print("a kick in the basin shrinks to less than 70%:", surviving["basin"] < 0.7)
print("a late kick survives almost whole (more than 90%):", surviving["late"] > 0.9)

# %% [markdown]
# This is the mechanism, measured by replay:
#
# - **Start.** The first kicks are not absorbed. They grow (checked). Something in the early factors
#   $I - \eta_k H_k$ must stretch: a direction of negative curvature, or one with
#   $\eta_k\lambda_{\max}(H_k) > 2$. We have not measured which here (print the extreme eigenvalues
#   of `explain.batch_hessian(traj, k)` for the first steps to find out). A large early gradient,
#   stretched over the whole run, is the high-impact start.
# - **Basin.** A kick in the middle meets a long run of better-conditioned steps that shrink it. The
#   paper calls this saturation by future data.
# - **Late.** With few steps left, $K_t \approx I$ and the kick survives whole. That is the ascent.
#
# ## 5. Why the data value embedding is flatter (≈ 3 min)
#
# The embedding replaces every $H_k$ by the empirical Fisher $\frac1b\sum_{j\in B_k} g_j g_j^\top$.
# That matrix is positive semi-definite, so with small steps each factor $I - \eta_k F_k$ can only
# shrink a kick or leave it alone. It cannot produce the growth we just measured at the start, and
# that is consistent with the much flatter orange curve: its start/basin ratio is less than half that
# of SGD-influence (checked above). The Fisher also scales with the squared gradients, which become
# small late in training while the true curvature need not. Lesson 04's GGN option
# (`hessian="ggn"`) is positive semi-definite too, and several times slower here, so it is left as
# an exercise. This is an honest difference from the paper's picture. There, the embedding itself
# shows the three regimes; in this toy it shows them only faintly, while the exact-Hessian estimate
# and the replays show them clearly.

# %% [markdown]
# ## 6. The duplicate experiment: the same point in the basin and late (≈ 6 min)
#
# Take a test digit $z$ and add a copy of it to the training set, in one batch. In one run the copy
# sits at 35% of the way through (the basin); in the other it sits at 90% (the ascent). How much does
# the copy lower $z$'s own final loss? We measure it exactly — the TSLOO of the copy at its step — for
# 8 test digits at once (8 copies, one of each digit, join the same batch; each copy is scored on its
# own digit), so that we can count instead of trusting one digit.
#
# **Predict first.** The per-step curve (6.2) is divided by η. The question "how much does the copy
# lower $z$'s loss?" is not. In this run $\eta$ at the basin step is about 25 times $\eta$ at the late
# step (cosine decay). Which copy lowers $z$'s loss more — and which would, per unit of learning rate?

# %%
K = 8
zs, n, order = problem.test[list(range(K))], len(problem.train), r["traj"].schedule
with_copies = dt.Data(torch.cat([problem.train.X, zs.X]), torch.cat([problem.train.y, zs.y]))
copies = list(range(n, n + K))                                      # copy k is test digit k
copy_value, copy_lr = {}, {}
for lr_name, lrs in (("warm-up + cosine", r["traj"].lrs), ("constant 0.1", torch.full((len(order),), 0.1))):
    for where, frac in (("basin", 0.35), ("late", 0.9)):
        s = int(frac * len(order))
        batches = [list(batch) for batch in order.batches]
        batches[s] += copies                                        # the 8 copies join batch s
        run = dt.train(problem.model, with_copies, dt.Schedule(batches, problem.batch_size, n + K), lrs)
        copy_value[lr_name, where] = dt.exact_loo(run, zs, copies, [s] * K, progress=False).diagonal()
        copy_lr[lr_name, where] = float(run.lrs[s])
for lr_name in ("warm-up + cosine", "constant 0.1"):
    b, l = copy_value[lr_name, "basin"], copy_value[lr_name, "late"]
    eb, el = copy_lr[lr_name, "basin"], copy_lr[lr_name, "late"]
    print(f"{lr_name}: η basin {eb:.3f}, late {el:.4f}")
    print(f"   raw TSLOO, median over the 8 digits: basin {b.median():.2e}, late {l.median():.2e}; "
          f"basin larger for {int((b > l).sum())} of 8")
    print(f"   TSLOO/η,   median over the 8 digits: basin {(b / eb).median():.2e}, late {(l / el).median():.2e}; "
          f"late larger for {int((l / el > b / eb).sum())} of 8")

# %% tags=["nbval-check-output"]
cb, cl = copy_value["warm-up + cosine", "basin"], copy_value["warm-up + cosine", "late"]
eb, el = copy_lr["warm-up + cosine", "basin"], copy_lr["warm-up + cosine", "late"]
print("every copy helps its digit (all 32 TSLOO positive):", all(bool((v > 0).all()) for v in copy_value.values()))
print("warm-up + cosine, raw: the basin copy lowers its digit's loss more, for at least 6 of 8 digits:",
      int((cb > cl).sum()) >= 6)
print("warm-up + cosine, per unit of η: the late copy is larger (median over the 8 digits of late/basin > 1):",
      bool(((cl / el) / (cb / eb)).median() > 1))

# %% [markdown]
# Two answers, both exact, to two questions:
#
# - **Raw**, under this warm-up + cosine schedule, the copy in the **basin** lowers its digit's loss
#   more, for nearly every digit (checked: at least 6 of 8). It was applied with a learning rate about
#   25 times larger, and that outweighs everything the later steps absorb.
# - **Per unit of learning rate** — the units of the curve $c_t$ — the **late** copy is worth more
#   (median over the digits, checked). Under a **constant** η, where the two readings coincide, read the
#   count above: in the stored run the late copy lowers the loss more for 7 of 8 digits, but over other
#   seeds it can be a toss-up (a sweep over seeds found one where the median digit favours the basin).
#   Without the schedule's help, "late beats basin" is a tendency at this scale, not a law.
#
# So "late data matter more" is a statement per unit of learning rate, and only a tendency at equal
# learning rates. It
# is the paper's reading: it divides by η (§5.3) and reports that a duplicate ranks at the top when it
# appears late but not in the basin (App. E). A schedule that decays η by a factor 25 can reverse it
# in raw terms — and raw terms are what lesson 07 meets: the effect of choosing a batch is not divided
# by η.

# %% [markdown]
# More to try in the explorer of section 1:
# - Drag the run length from 1 to 30 epochs. When do the high start and the basin appear?
# - Use `step_decay`: η halves every quarter of the run. Does $c_t$ jump where η drops? Dividing by
#   η_t removes the step's own size, but not the later steps' sizes inside $K_t$.
# - A peak of 0.8: does the start get stronger or weaker?

# %% [markdown]
# ## What you learned
#
# - The per-step curve $c_t$ (6.2) is the mean $|\mathrm{TSLOO}|$ of each batch divided by η_t:
#   `influence.by_step("mean_abs", per_lr=True, lrs=traj.lrs, test="mean")`. Dividing by η_t removes the
#   step's own size, so that steps with different learning rates can be compared.
# - On digits, a 15-epoch warm-up + cosine run has the paper's three regimes: a start several times
#   above a basin, and a late ascent. Exact replays of sampled points agree with the estimator point by
#   point (a few points per step are too few to draw the curve themselves). A 3-epoch run has no
#   high start and no basin, even with the long run's schedule and peak: length is what differs.
# - Early gradients are several times larger, which explains part of the start. The later factors
#   $K_t$ explain the rest, as the replays' surviving fractions (6.3) show: a kick at the first step ends larger than it started,
#   a basin kick shrinks to under 70%, and a late kick survives almost whole.
# - The data value embedding's Fisher approximation is positive semi-definite and scales with the
#   gradients, which flattens the curve on this toy. The phase picture is a property of the true
#   TSLOO, and the estimator can blur it.
# - The duplicate experiment: per unit of learning rate a copy seen late is worth more than one seen in
#   the basin (median over 8 digits); at a constant η it usually is, not always; in raw terms, under
#   warm-up + cosine, the basin copy lowers its digit's loss more, because its η is about 25 times larger.
#
# ## Exercises
#
# 1. **Without dividing by η, whole curves.** Exercise B took one ratio; now plot
#    `r["influence"].by_step("mean_abs", test="mean")` (DVE) and the same for SGD-influence, without `per_lr`. Compare them with the learning-rate panel. Which
#    regimes survive?
# 2. **The GGN embedding.** Fit `dt.DataValueEmbedding(hessian="ggn")` on `r["traj"]` (several times
#    slower) and draw its $c_t$ next to the Fisher one and SGD-influence. Is it closer to either? Think
#    about what a positive semi-definite curvature can and cannot do.
# 3. **Influence at a checkpoint (paper Figure 4).** For $s$ in a few steps, fit an embedding on
#    `r["traj"].prefix(s)` and measure the influence of the first-tenth batches and of the basin
#    batches on the test loss *at θ_s*. Do the early points stay above the basin points at every
#    checkpoint?
#
# Worked solutions: in this lesson's source, [`src/06_phases_of_influence.py`](src/06_phases_of_influence.py),
# between the lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-3. (The worked solution defines open_exercise_solutions() and does not call it: about
# half a minute of computing in fast mode.)
# BEGIN SOLUTION NO PROMPT
def open_exercise_solutions():
    """The open exercises at the end of the lesson (defined here, not called: about a minute)."""
    from dve_teach.teach.phases import mean_test_loss
    tenth = lambda c: dt.phases.phase_levels(c)["bins"]  # noqa: E731  (the mean of each tenth of the run)
    traj = r["traj"]

    # 1. Without dividing by η: the curve is multiplied by η_t, so it follows the learning-rate envelope.
    sgd = dt.sgd_influence(traj, problem.test[[0]], measure=mean_test_loss(problem))
    for name, est in [("DVE", r["influence"]), ("SGD-influence", sgd)]:
        raw = est.by_step("mean_abs", test="mean")
        print(f"1. {name}, not divided by η, per tenth of the run:", np.array2string(tenth(raw), precision=1))
    print("   η_t per tenth:", np.array2string(tenth(traj.lrs), precision=2))
    # Both raw curves fall to nothing at the end, where the cosine takes η towards 0: without the
    # division the late ascent is hidden. The warm-up dims the DVE's first tenth below its second; the
    # SGD-influence start is strong enough to stay on top anyway. This is why the paper divides by η_t.

    # 2. The GGN embedding (several times slower than the Fisher one).
    ggn = dt.DataValueEmbedding(hessian="ggn").fit(traj).influence(problem.test)
    view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
    for name, curve in [("Fisher", r["curve"]), ("GGN", ggn.by_step(**view)), ("SGD-influence", r["sgd_curve"])]:
        lv = dt.phases.phase_levels(curve)
        print(f"2. {name:13s}: start/basin {lv['start_over_basin']:.2f}, end/basin {lv['end_over_basin']:.2f}")
    # The GGN does not vanish when the gradients are small, so it absorbs basin kicks more like the true
    # Hessian does. Like the Fisher, though, it is positive semi-definite: it cannot stretch a kick, so it
    # cannot show the growth of the first kicks that the replays in the lesson measured.

    # 3. Influence at a checkpoint θ_s (paper Figure 4): the influence on the test loss *at θ_s* is the
    #    same estimate on the prefix run traj.prefix(s) (SGD-influence: it shows the start clearly).
    T = traj.T
    first, basin = list(range(0, T // 10)), list(range(3 * T // 10, 4 * T // 10))
    for s in [T // 5, T // 2, 7 * T // 10, T]:
        est = dt.sgd_influence(traj.prefix(s), problem.test[[0]], measure=mean_test_loss(problem))
        c = est.by_step(**{**view, "lrs": traj.lrs[:s]})
        mid = float(c[basin].mean()) if s >= basin[-1] + 1 else float("nan")
        print(f"3. at θ_{s}: first-tenth batches {float(c[first].mean()):.2e}, basin batches {mid:.2e}")
    # At every checkpoint the first-tenth batches stay well above the basin batches, and the basin
    # batches' influence keeps decaying as training goes on, while the early batches' hardly changes:
    # the purple and red curves of the paper's Figure 4.
# END SOLUTION

# %% [markdown]
# ---
# Next: [07 · Data selection](07_data_selection.ipynb) — act on influence: find mislabelled digits, and
# select training data only in some phases of the run.
