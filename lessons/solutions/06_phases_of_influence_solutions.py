# Solutions to lesson 06 (phases of influence). Load into a cell with
#   %load solutions/06_phases_of_influence_solutions.py
# or run on its own from lessons/: python solutions/06_phases_of_influence_solutions.py
# (set DVE_TEACH_FAST=1 for smaller problems). Reuses the lesson's long run when it exists.
import numpy as np
import torch

import dve_teach as dt
from dve_teach.teach.phases import PhaseModel, mean_test_loss
from dve_teach.widgets import Problem

torch.set_num_threads(1)
try:
    problem, r  # noqa: B018  (defined in the lesson)
except NameError:
    sized = dt.config.sized
    problem = Problem.digits(n_train=sized(600, 400), n_test=sized(200, 100), batch_size=32, seed=dt.config.seed())
    r = PhaseModel(problem, schedule="warmup_cosine", peak=0.4, epochs=15, seed=dt.config.seed()).update()
traj = r["traj"]
tenth = lambda c: dt.phases.phase_levels(c)["bins"]  # noqa: E731  (the mean of each tenth of the run)

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
