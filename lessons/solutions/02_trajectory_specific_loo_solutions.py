# Solutions to lesson 02 (trajectory-specific leave-one-out). Load into a cell with
#   %load solutions/02_trajectory_specific_loo_solutions.py
# after running the lesson: it uses the lesson's variables (split, model, traj, schedule, p, n,
# batch_size, epochs, lr, points, steps, per_step) and defines only new names (sol_...).
import torch

import dve_teach as dt
from dve_teach.influence.counterfactual import divergence
from dve_teach.teach.exercises import lesson02 as sol_ex

# Exercise A: the epoch whose removals have the largest mean |TSLOO|.
sol_epoch = torch.tensor(steps) // (n // batch_size)                                   # noqa: F821
sol_means = [float(per_step[sol_epoch == e].abs().mean()) for e in range(int(sol_epoch.max()) + 1)]  # noqa: F821
print(sol_ex.check_dominant_epoch(sol_means.index(max(sol_means)) + 1, per_step, steps, n // batch_size))  # noqa: F821

# Exercise B: replayed steps for every (point, step) with batches of 5: a removal at step s replays
# T - s steps; halving the batch doubles T and keeps N·E removals, so about twice the steps (2.7).
sol_b5 = dt.Schedule.shuffled(n, 5, epochs)                                            # noqa: F821
sol_replayed_b5 = sum(len(sol_b5) - s for s in sol_b5.occurrence_pairs()[1])
print(sol_ex.check_replayed_steps_for(sol_replayed_b5, n, 5, epochs, current=schedule))  # noqa: F821
sol_replayed = sum(traj.T - s for s in schedule.occurrence_pairs()[1])                # noqa: F821
print(sol_ex.check_replayed_steps(sol_replayed, schedule))                             # noqa: F821
print(f"B. batches of 5: {sol_replayed_b5} replayed steps; batches of {batch_size}: {sol_replayed}")  # noqa: F821

# Exercise 1: points whose single-step TSLOO changes sign between occurrences.
sol_values = {}
for sol_i, sol_v in zip(points, per_step.tolist()):                                    # noqa: F821
    sol_values.setdefault(sol_i, []).append(sol_v)
sol_flips = [i for i, v in sol_values.items() if min(v) < 0 < max(v)]
print(f"1. {len(sol_flips)} points change sign between their occurrences, e.g. {sol_flips[:5]}")

# Exercise 2a. The order of the points inside a batch does not matter: the step uses their sum.
sol_inside = dt.Schedule([batch[::-1] for batch in schedule.batches], batch_size, n)  # noqa: F821
sol_same = dt.train(model, split.train, sol_inside, lr)                                # noqa: F821
print(f"2a. max |θ_T − θ_T(reversed inside batches)| = {(sol_same.final - traj.final).abs().max():.1e}")  # noqa: F821

# Exercise 2b. Which batch a point is in does matter: move p's last occurrence to the nearest
# earlier batch that does not hold it, retrain, and compare its single-step TSLOO.
sol_from = schedule.occurrences(p)[-1]                                                  # noqa: F821
sol_to = next(t for t in range(sol_from - 1, -1, -1) if p not in schedule.batches[t])  # noqa: F821
sol_moved = dt.train(model, split.train, schedule.move(p, sol_from, sol_to), lr)       # noqa: F821
print(f"2b. point {p} at step {sol_from}: {float(dt.exact_loo(traj, split.test, [p], [sol_from]).mean()):+.2e}; "  # noqa: F821
      f"moved to step {sol_to}: {float(dt.exact_loo(sol_moved, split.test, [p], [sol_to]).mean()):+.2e}")  # noqa: F821

# Exercise 3. Learning rate and memory: the fraction of the kick left after removing p at its first step.
sol_s = schedule.occurrences(p)[0]                                                      # noqa: F821
for sol_eta in (0.1, 0.5, 1.0):
    sol_run = dt.train(model, split.train, schedule, sol_eta)                          # noqa: F821
    sol_d = divergence(sol_run, p, sol_s)                                               # noqa: F821
    print(f"3. lr {sol_eta:3.1f}: ‖δ‖ = {sol_d[sol_s + 1]:.2e}; fraction left at the end "
          f"{sol_d[-1] / sol_d[sol_s + 1]:.2f}")
# Each step multiplies the gap by (I − η H̄_t): with a small η the factor is close to the identity,
# so more of the (smaller, ∝ η) kick can survive; a larger η contracts faster along curved directions
# as long as η h < 2. Compare with the printed fractions. To plot one:
# dve_teach.teach.plots.divergence_curve(ax, sol_d / sol_d[sol_s + 1], [sol_s]).
