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
# During the warm-up η is small, so the raw curve starts low even though c_t (divided by η) is
# highest there. At the end the cosine takes η towards 0, which hides the late ascent. This is why the
# paper divides by η_t.

# 2. The GGN embedding (several times slower than the Fisher one).
ggn = dt.DataValueEmbedding(hessian="ggn").fit(traj).influence(problem.test)
view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
for name, curve in [("Fisher", r["curve"]), ("GGN", ggn.by_step(**view)), ("SGD-influence", r["sgd_curve"])]:
    lv = dt.phases.phase_levels(curve)
    print(f"2. {name:13s}: start/basin {lv['start_over_basin']:.2f}, end/basin {lv['end_over_basin']:.2f}")
# The GGN does not vanish when the gradients are small, so it absorbs basin kicks more like the true
# Hessian does. Like the Fisher, though, it is positive semi-definite: it cannot stretch a kick, so it
# cannot show the growth of the first kicks that the replays in the lesson measured.

# 3. Influence at a checkpoint θ_s (paper Figure 4): embeddings of the prefix run traj.prefix(s).
T = traj.T
first, basin = range(0, T // 10), range(3 * T // 10, 4 * T // 10)
for s in [T // 5, T // 2, 4 * T // 5, T]:
    inf = dt.DataValueEmbedding().fit(traj.prefix(s)).influence(problem.test)
    c = inf.by_step(**{**view, "lrs": traj.lrs[:s]})
    early = float(c[list(first)].mean())
    mid = float(c[[t for t in basin if t < s]].mean()) if s > basin.start else float("nan")
    print(f"3. at θ_{s}: first-tenth batches {early:.2e}, basin batches {mid:.2e}")
# At every checkpoint after the basin the early batches stay above the basin batches, as in the
# paper's Figure 4. (This uses the Fisher embedding, which understates the start; SGD-influence on
# traj.prefix(s) shows the same ordering more strongly.)
