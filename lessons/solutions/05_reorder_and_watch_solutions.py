# Solutions to lesson 05 (reorder and watch). Load into a cell with
#   %load solutions/05_reorder_and_watch_solutions.py
# after running the lesson: it uses the lesson's `explorer`, `SEED` and `Problem`, and defines only
# new names (sol_...); it trains its own ReorderModel, so the widget's state is left as it was.
import numpy as np
import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson05 as sol_ex
from dve_teach.teach.order_prediction import random_moves as sol_random_moves
from dve_teach.widgets import ReorderModel

# Exercise A: every-occurrence TSLOO against the sum of the one-step values, relative.
sol_r = explorer.result                                                                   # noqa: F821
sol_gap = (sol_r.exact - float(np.sum(sol_r.per_step_exact))) / abs(sol_r.exact)
print(f"every occurrence {sol_r.exact:+.3e}, sum of one-step values {float(np.sum(sol_r.per_step_exact)):+.3e}")
print(sol_ex.check_additivity(sol_gap, sol_r))

# Exercise B: the 5 most similar embeddings (cosine), then leave them out on a separate model.
sol_cos = torch.nn.functional.cosine_similarity(sol_r.embeddings, sol_r.embeddings[sol_r.point][None], dim=1)
sol_cos[sol_r.point] = -2.0
sol_similar = sol_cos.argsort(descending=True)[:5].tolist()
print(sol_ex.check_most_similar(sol_similar, sol_r))
sol_model = ReorderModel(Problem.moons(seed=SEED), point=sol_r.point)                   # noqa: F821
sol_model.set_order(sol_r.order)
sol_with = sol_model.retrain()
for sol_i in sol_similar:
    sol_model.leave_out(sol_i)
sol_without = sol_model.retrain()
print(f"B. point {sol_r.point}: exact {sol_with.exact:+.2e} with its similar points, {sol_without.exact:+.2e} without")

# Exercise C: the best move of the point alone. Moving it from t1 to t2 is predicted as c[t2] - c[t1]:
# the best target is the free step with the smallest c, the best source the occurrence with the largest c.
sol_test = explorer.model.problem.test                                                   # noqa: F821
sol_c = dt.OrderPredictor(sol_r.traj, sol_test, mean=True).fit().insertion_curve(sol_r.point)[:, 0]
sol_free = [t for t in range(len(sol_c)) if t not in sol_r.steps]
sol_t1 = max(sol_r.steps, key=lambda t: float(sol_c[t]))
sol_t2 = min(sol_free, key=lambda t: float(sol_c[t]))
print(sol_ex.check_best_move((sol_t1, sol_t2), sol_r, sol_test))
sol_exact = dt.exact_order_change(sol_r.traj, sol_test, sol_r.schedule.move(sol_r.point, sol_t1, sol_t2)).mean()
print(f"C. move {sol_t1} -> {sol_t2}: predicted {float(sol_c[sol_t2] - sol_c[sol_t1]):+.2e}, exact {float(sol_exact):+.2e}")

# Exercise 1: early vs late for 10 random points.
sol_gen = np.random.default_rng(SEED)                                                    # noqa: F821
sol_late_wins, sol_agree = 0, 0
for sol_p in sol_gen.choice(sol_model.n, 10, replace=False):
    sol_m = ReorderModel(Problem.moons(seed=SEED), point=int(sol_p))                     # noqa: F821
    sol_m.move_to("first"); sol_e = sol_m.retrain()
    sol_m.move_to("last"); sol_l = sol_m.retrain()
    sol_late_wins += abs(sol_l.exact) > abs(sol_e.exact)
    sol_agree += (abs(sol_l.exact) > abs(sol_e.exact)) == (abs(sol_l.estimate) > abs(sol_e.estimate))
print(f"1. late mattered more for {sol_late_wins} of 10 points; the DVE ranked the two placements the same "
      f"way for {sol_agree} of 10")

# Exercise 2: the followed point's exact TSLOO over 10 shuffles.
sol_values = []
for sol_seed in range(10):
    sol_model.put_back(); sol_model.shuffle(sol_seed)
    sol_values.append(sol_model.retrain().exact)
print(f"2. exact TSLOO over 10 shuffles: {min(sol_values):+.2e} to {max(sol_values):+.2e}")

# Exercise 4: first order against the number of one-point moves applied at once (baseline run).
sol_base = ReorderModel(Problem.moons(seed=SEED), point=sol_r.point).result              # noqa: F821
sol_pred = dt.OrderPredictor(sol_base.traj, sol_test, mean=True).fit()
for sol_k in (1, 4, 16, 64):
    sol_errors = []
    for sol_rep in range(3):
        sol_s = sol_base.schedule
        for sol_step in range(sol_k):   # chain k random moves, each from the schedule so far
            sol_s = sol_random_moves(sol_s, 1, seed=1000 * sol_k + 10 * sol_rep + sol_step)[0]
        sol_p = float(sol_pred.predict(sol_s)[0])
        sol_e = float(dt.exact_order_change(sol_base.traj, sol_test, sol_s).mean())
        sol_errors.append(abs(sol_p - sol_e) / abs(sol_e))
    print(f"4. {sol_k:2d} moves at once: median relative error {np.median(sol_errors):.3f}")
