# Solutions to lesson 00 (start here). Load into a cell with
#   %load solutions/00_start_here_solutions.py
# or run on its own from lessons/: python solutions/00_start_here_solutions.py
# (set DVE_TEACH_FAST=1 for smaller problems). Reuses the lesson's run when it exists.
import torch

import dve_teach as dt
from dve_teach import plots
from dve_teach import DataValueEmbedding

torch.set_num_threads(1)
try:
    split, schedule, traj, influence, p  # noqa: B018, F821  (defined in the lesson)
except NameError:
    split = dt.datasets.moons(n_train=dt.config.sized(200, 100), n_test=dt.config.sized(100, 50), seed=0)
    schedule = dt.Schedule.shuffled(len(split.train), batch_size=16, epochs=3, seed=0)
    traj = dt.train(dt.models.mlp((2, 16, 2), seed=0), split.train, schedule, lr=0.2)
    influence = DataValueEmbedding().fit(traj).influence(split.test)
    p = int(traj.test_losses(split.train).argmax())

# 1. The most helpful point according to the DVE, checked by the exact replay.
best = int(influence.total().mean(1).argmax())
exact_best = float(dt.exact_loo(traj, split.test, [best])[0].mean())
print(f"1. most helpful by DVE: point {best} (label {int(split.train.y[best])}), "
      f"DVE {influence.total()[best].mean():+.4f}, exact {exact_best:+.4f}")

# 2. Remove p only at its last occurrence.
last_step = schedule.occurrences(p)[-1]
once = dt.exact_loo(traj, split.test, [p], [last_step])[0]
everywhere = dt.exact_loo(traj, split.test, [p])[0]
dve_once = influence.at([p], [last_step])[0]
print(f"2. point {p} at step {last_step} only: exact {once.mean():+.4f}, DVE {dve_once.mean():+.4f}; "
      f"every occurrence: exact {everywhere.mean():+.4f} -> the last step carries "
      f"{float(once.mean() / everywhere.mean()):.0%} of it")
# Most of the effect comes from the last occurrence: earlier kicks are largely absorbed by the steps
# after them (lesson 02 measures this).

# 1 (continued). Where does the most helpful point sit? (The figure shows when this is the last
# line of a notebook cell.)
with plots.style():
    fig, ax = plots.new_figure(1, figsize=(4, 3.3))
    plots.decision_boundary(ax[0, 0], traj, highlight=[best], title=f"most helpful point: {best}")
# It usually sits close to the decision boundary, on its own class's side: a point the model still
# had to learn from in the last epoch, and one that agrees with the test points near it.
fig  # noqa: B018
