# Solutions to lesson 02 (trajectory-specific leave-one-out). Load into a cell with
#   %load solutions/02_trajectory_specific_loo_solutions.py
# or run on its own from lessons/: python solutions/02_trajectory_specific_loo_solutions.py
# (set DVE_TEACH_FAST=1 for smaller problems). Reuses the lesson's run when it exists.
import torch

import dve_teach as dt
from dve_teach.influence.counterfactual import divergence

torch.set_num_threads(1)
try:
    split, model, traj, schedule, p  # noqa: B018, F821  (defined in the lesson)
except NameError:
    split = dt.datasets.moons(n_train=dt.config.sized(100, 60), n_test=dt.config.sized(100, 50), seed=0)
    model = dt.models.mlp((2, 16, 2), seed=0)
    schedule = dt.Schedule.shuffled(len(split.train), 10, 3, seed=0)
    traj = dt.train(model, split.train, schedule, 0.5)
    p = int(traj.test_losses(split.train).argmax())
n, batch_size, lr, T = len(split.train), schedule.batch_size, 0.5, traj.T

# 1. Which epoch matters most? Mean |TSLOO| of the occurrences in each epoch.
points, steps = schedule.occurrence_pairs()
per_step = dt.exact_loo(traj, split.test, points, steps).mean(1)
epoch = torch.tensor(steps) // (n // batch_size)
for e in range(int(epoch.max()) + 1):
    print(f"1. epoch {e + 1}: mean |TSLOO| {per_step[epoch == e].abs().mean():.2e}")
# The last epoch dominates, by far: its kicks have the fewest steps left to be absorbed (the
# surviving fractions were largest there), and the test loss is measured right after them.

# 2a. The order of the points inside a batch does not matter: the step uses their sum.
inside_reversed = dt.Schedule([batch[::-1] for batch in schedule.batches], batch_size, n)
same = dt.train(model, split.train, inside_reversed, lr)
print(f"2a. max |θ_T − θ_T(reversed inside batches)| = {(same.final - traj.final).abs().max():.1e}  (rounding only)")

# 2b. Which batch a point is in does matter: move p's last occurrence to the nearest earlier batch
#     that does not hold it (that batch gets b + 1 points, the old one b − 1), retrain, and compare.
s_from = schedule.occurrences(p)[-1]
s_to = next(t for t in range(s_from - 1, -1, -1) if p not in schedule.batches[t])
moved = schedule.move(p, s_from, s_to)
traj_moved = dt.train(model, split.train, moved, lr)
before = float(dt.exact_loo(traj, split.test, [p], [s_from])[0].mean())
after = float(dt.exact_loo(traj_moved, split.test, [p], [s_to])[0].mean())
print(f"2b. point {p} removed at step {s_from}: TSLOO {before:+.2e}; after moving it to step {s_to}: {after:+.2e}")
# Moving a point changes its value (and, slightly, every other point's): the trajectory is different.

# 3. Learning rate and memory: the fraction of the kick left at each step after removing p at its
#    first occurrence.
s = schedule.occurrences(p)[0]
for eta in (0.1, 0.5, 1.0):
    run = traj if eta == lr else dt.train(model, split.train, schedule, eta)
    d = divergence(run, p, s)
    kick = d[s + 1]
    print(f"3. lr {eta:3.1f}: ‖δ‖ = {kick:.2e}; fraction left at the end {d[-1] / kick:.2f}, "
          f"smallest fraction along the way {(d[s + 1:] / kick).min():.2f}")
# Each step multiplies the gap by (I − η H̄_t): with a small η the factor is close to the identity,
# so more of the (smaller, ∝ η) kick survives the same number of steps. A larger η contracts faster
# along curved directions — as long as η h < 2; beyond that a direction would grow instead.
# To plot: dve_teach.teach.plots.divergence_curve(ax, d / kick, [s]) for each learning rate.
