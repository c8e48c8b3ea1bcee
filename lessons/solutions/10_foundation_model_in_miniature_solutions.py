# Solutions to lesson 10 (a foundation model in miniature). Load into a cell with
#   %load solutions/10_foundation_model_in_miniature_solutions.py
# after running the lesson: it uses the lesson's `traj`, `B`, `SEED`, `SIZES`, `star`, `occ`, `last`,
# `n_plays`, `sonnets`, `one`, `query`, `cands` and `by_exact`, and defines only new names (sol_...). The open exercises 1-3
# are in `sol_exercises()` (a few seconds): call it to run them.
import dve_teach as sol_dt
from dve_teach.teach import foundation as sol_fd
from dve_teach.teach.exercises import lesson10 as sol_ex

# Exercise A: the batch gradient at the boundary, θ_B and the first fine-tuning batch, nominal divisor b.
_, sol_X, sol_y = traj.batch(B)                                                             # noqa: F821
sol_g = traj.objective.per_sample_grads(traj.params(B), sol_X, sol_y).sum(0) / traj.batch_size   # noqa: F821
sol_eps = traj.optimizer.rules[1].eps                                                       # noqa: F821
sol_near_zero = int((sol_g.abs() < sol_eps).sum())
print(sol_ex.check_near_zero_coordinates(sol_near_zero, traj))                              # noqa: F821

# Exercise B: move the first occurrence, retrain, remove it at its new step only.
sol_order = sol_dt.Schedule(traj.schedule.batches[:B], traj.schedule.batch_size, n_plays)   # noqa: F821
sol_run = sol_fd.foundation_run(SEED, sizes=SIZES,                                          # noqa: F821
                                plays_schedule=sol_fd.place(sol_order, star, occ[0], last))[0]   # noqa: F821
sol_moved = float(sol_dt.exact_loo(sol_run, sonnets.test[:1], [star], [last],               # noqa: F821
                                   measure=sol_fd.MeanLoss(sonnets.test), progress=False)[0, 0])   # noqa: F821
print(sol_ex.check_moved_exact(sol_moved, SEED, star, occ[0], last, sizes=SIZES))           # noqa: F821


def sol_exercises():
    """The open exercises at the end of the lesson (seed SEED)."""
    from scipy.stats import spearmanr
    # 1. ε = 1e-5 in fine-tuning only, the same passages as in the lesson.
    sol_run1 = sol_fd.foundation_run(SEED, sizes=SIZES, eps=(1e-8, 1e-5))[0]                # noqa: F821
    est = sol_dt.unrolled_influence(sol_run1, one, measure=query).total()[cands, 0]          # noqa: F821
    exa = sol_dt.exact_loo(sol_run1, one, cands, measure=query, chunk_size=len(cands), progress=False)[:, 0]  # noqa: F821
    print(f"1. ε = 1e-5 in stage 2 only: Spearman {spearmanr(est, exa)[0]:+.2f}, max |estimate / exact| "
          f"{float((est / exa).abs().max()):.1f}; compare the lesson's table (stats)")
    # 3. Each occurrence of the three most helpful passages, removed alone.
    for i in by_exact[:3]:                                                                   # noqa: F821
        steps = traj.schedule.occurrences(i)                                                 # noqa: F821
        vals = sol_dt.exact_loo(traj, one, [i] * len(steps), steps, measure=query, progress=False)[:, 0]  # noqa: F821
        print(f"3. passage {i}: " + ", ".join(f"step {t}: {float(v):+.2e}" for t, v in zip(steps, vals)))
    print("   the first batch (step 0) is the fresh AdamW's first step, lesson 09's all-or-nothing step")
