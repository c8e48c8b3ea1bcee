# Solutions to lesson 05 (reorder and watch). Load into a cell with
#   %load solutions/05_reorder_and_watch_solutions.py
# or run on its own from lessons/: python solutions/05_reorder_and_watch_solutions.py
# (set DVE_TEACH_FAST=1 for smaller problems). Reuses `model` from the lesson when it exists.
import torch

import dve_teach as dt
from dve_teach.widgets import ReorderModel

try:
    model  # noqa: F821  (defined in the lesson)
except NameError:
    model = ReorderModel()
model.reset()
p = model.point

# 1. Early or late? Move every occurrence to the first steps, then to the last steps.
runs = {}
for where in ("first", "last"):
    model.reset()
    model.move_to(where)
    runs[where] = model.retrain()
    r = runs[where]
    print(f"1. {where:5s} steps {r.steps}: exact {r.exact:+.2e}  DVE {r.estimate:+.2e}")
bigger = max(runs, key=lambda w: abs(runs[w].exact))
same_rank = (abs(runs["last"].exact) > abs(runs["first"].exact)) == (abs(runs["last"].estimate) > abs(runs["first"].estimate))
print(f"   larger exact influence when seen {bigger}; DVE ranks the two orders the same way: {same_rank}")
# Usually "last": a point seen late has little training left to wash its effect out.

# 2. Soaking up: leave out the 5 points whose embeddings are most similar to the point's.
model.reset()
base = model.retrain()
E = base.embeddings
cos = torch.nn.functional.cosine_similarity(E, E[p][None, :], dim=1)
cos[p] = -float("inf")
similar = cos.topk(5).indices.tolist()
for i in similar:
    model.leave_out(i)
alone = model.retrain()
print(f"2. left out {similar}: exact {base.exact:+.2e} -> {alone.exact:+.2e}, "
      f"DVE {base.estimate:+.2e} -> {alone.estimate:+.2e}")
print(f"   magnitude {'grew' if abs(alone.exact) > abs(base.exact) else 'shrank'}")
# Two effects compete. Points with similar gradients seen later soak up part of this point's
# contribution (lesson 04's recursion, M += DVE g^T): without them that part stays, so the
# magnitude tends to grow. But the run itself changes too: without its neighbours the model fits
# that region differently, and this point's gradient, and the test loss it moves, change with it.
# On the default problem the second effect can win; try leaving out only dissimilar points to compare.
model.put_back()
model.reset()

# 3. Your own run: blobs, a trajectory you trained, at two learning rates.
split = dt.datasets.blobs(n_train=dt.config.sized(120, 60), n_test=30, seed=0)
for lr in (0.1, 1.0):
    order = dt.Schedule.shuffled(len(split.train), 12, epochs=2, seed=0)
    traj = dt.train(dt.models.mlp((2, 16, 3), seed=0), split.train, order, lr=lr)
    own = ReorderModel(traj, split.test)
    r = own.result
    print(f"3. lr {lr}: point {r.point}: exact {r.exact:+.2e}  DVE {r.estimate:+.2e}  "
          f"(relative error {abs(r.estimate - r.exact) / max(abs(r.exact), 1e-12):.2f})")
# The first-order picture holds while steps are small; with a large learning rate the run is far
# from linear around the recorded trajectory and exact and DVE drift apart.
