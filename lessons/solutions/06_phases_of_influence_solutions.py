# Solutions to lesson 06 (phases of influence). Load into a cell with
#   %load solutions/06_phases_of_influence_solutions.py
# after running the lesson: it uses the lesson's `problem` and `r` and defines only new names
# (sol_...). The open exercises 1-3 are in `sol_exercises()` (about a minute): call it to run them.
import numpy as np
import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson06 as sol_ex
from dve_teach.teach.phases import mean_test_loss

# Exercise A: c_t by hand, from the per-occurrence scores.
sol_steps = r["influence"].steps                                                           # noqa: F821
sol_score = r["influence"].per_occurrence.mean(1).abs()                                    # noqa: F821
sol_curve = torch.stack([sol_score[sol_steps == t].mean() for t in range(r["traj"].T)]) / r["traj"].lrs  # noqa: F821
print(sol_ex.check_phase_curve(sol_curve, r["influence"], r["traj"].lrs))                  # noqa: F821

# Exercise B: multiply the η-divided curve back by η_t, then the first chunk over the lowest middle
# chunk (10 chunks, by hand). Predicted: smaller — the warm-up's η_t is small at the start.
sol_raw = (r["sgd_curve"] * r["traj"].lrs).numpy()                                          # noqa: F821
sol_chunks = [np.nanmean(c) for c in np.array_split(sol_raw, 10)]
sol_raw_ratio = sol_chunks[0] / min(sol_chunks[1:-1])
print(f"raw start/basin {sol_raw_ratio:.3g} vs divided {r['sgd_levels']['start_over_basin']:.3g}")  # noqa: F821
print(sol_ex.check_raw_ratio(sol_raw_ratio, r["sgd_curve"], r["traj"].lrs))                 # noqa: F821


def sol_exercises():
    """The open exercises at the end of the lesson."""
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
