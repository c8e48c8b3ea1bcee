# Solutions to lesson 01 (order matters). Load into a cell with
#   %load solutions/01_order_matters_solutions.py
# or run on its own from lessons/: python solutions/01_order_matters_solutions.py
# (set DVE_TEACH_FAST=1 for smaller problems). Reuses the lesson's data and model when they exist.
import numpy as np
import torch

import dve_teach as dt
from dve_teach.training.orders import final_test_losses

torch.set_num_threads(1)
try:
    split, model, epochs  # noqa: B018, F821  (defined in the lesson)
except NameError:
    split = dt.datasets.moons(n_train=200, n_test=dt.config.sized(200, 100), seed=0)
    model = dt.models.mlp((2, 16, 2), seed=0)
    epochs = dt.config.sized(10, 5)
n, lr, R = len(split.train), 1.0, 64

# 1. Batch size: smaller batches mean more steps (more places where the order enters) and noisier
#    steps; larger batches average over more points per step, so each step depends less on the order.
spread = {}
for b in (5, 20, 50):
    shuffles_b = [dt.Schedule.shuffled(n, b, epochs, seed=r) for r in range(R)]
    loss = final_test_losses(model, split.train, split.test, shuffles_b, lr).mean(1)
    spread[b] = float(loss.std())
    print(f"1. batch {b:2d}: T = {len(shuffles_b[0]):3d} steps, test loss {loss.mean():.3f} ± {loss.std():.3f} "
          f"(range {loss.min():.3f} to {loss.max():.3f})")
print(f"   widest spread with batch size {max(spread, key=spread.get)}")

# 2. Two steps that do not commute: from θ = θ_{T−2}, batches a = B_{T−2} then b = B_{T−1} versus the
#    other way round: θ(a→b) − θ(b→a) ≈ η² (H_b g_a − H_a g_b), all at θ.
base = dt.Schedule.shuffled(n, 20, epochs, seed=0)
T = len(base)
run = dt.train(model, split.train, base, lr)
theta, obj = run.params(T - 2), run.objective
(_, Xa, ya), (_, Xb, yb) = run.batch(T - 2), run.batch(T - 1)
w, div = torch.ones(20, dtype=theta.dtype), torch.tensor(20.0, dtype=theta.dtype)
g_a, g_b = obj.batch_grad(theta, Xa, ya, w, div), obj.batch_grad(theta, Xb, yb, w, div)
Hb_ga, Ha_gb = obj.hvp(theta, Xb, yb, 20, g_a[None])[0], obj.hvp(theta, Xa, ya, 20, g_b[None])[0]
for eta in (1.0, 0.3, 0.1):
    ab = theta - eta * obj.batch_grad(theta, Xa, ya, w, div)      # plain SGD steps (λ = 0 here)
    ab = ab - eta * obj.batch_grad(ab, Xb, yb, w, div)
    ba = theta - eta * obj.batch_grad(theta, Xb, yb, w, div)
    ba = ba - eta * obj.batch_grad(ba, Xa, ya, w, div)
    actual, predicted = ab - ba, eta ** 2 * (Hb_ga - Ha_gb)
    print(f"2. η {eta:3.1f}: |θ(a→b) − θ(b→a)| {actual.norm():.2e}, predicted {predicted.norm():.2e}, "
          f"relative error {(actual - predicted).norm() / actual.norm():.3f}")
# The relative error falls roughly in proportion to η: the first neglected term is O(η³).
print(f"   and the full runs differ too: |θ_T − θ_T(swapped)| = "
      f"{(run.final - dt.train(model, split.train, base.swap(T - 2, T - 1), lr).final).norm():.2e}")

# 3a. A left-to-right curriculum (by the first coordinate).
shuffles = [dt.Schedule.shuffled(n, 20, epochs, seed=r) for r in range(R)]
losses = final_test_losses(model, split.train, split.test, shuffles + [
    dt.Schedule.curriculum(split.train.X[:, 0], 20, epochs)], lr).mean(1)
print(f"3a. left→right: test loss {losses[-1]:.3f}; {int((losses[:R] < losses[-1]).sum())} of {R} shuffles end lower")

# 3b. Six copies of a class-0 point, labelled correctly, each seen once at a different step.
reference = dt.train(model, split.train, shuffles[0], lr)
i = int(reference.predict(split.train.X).softmax(1)[:, 0].argmax())
K = 6
steps = np.linspace(0, T - 1, K).round().astype(int).tolist()
copies = list(range(n, n + K))
data = dt.Data(torch.cat([split.train.X, split.train.X[i].repeat(K, 1)]),
               torch.cat([split.train.y, torch.zeros(K, dtype=torch.int64)]))   # correct label: 0
batches = [list(batch) for batch in shuffles[0].batches]
for copy, s in zip(copies, steps):
    batches[s].append(copy)
traj = dt.train(model, data, dt.Schedule(batches, 20, n + K), lr)
tsloo = dt.exact_loo(traj, split.test, copies, steps).mean(1)
for s, e in zip(steps, tsloo):
    print(f"3b. correctly labelled copy seen at step {s:3d}: exact TSLOO {e:+.5f}")
# A point the model already fits well has a small gradient, so these values are tiny next to the
# mislabelled copies'. They still depend on the step (in the runs we tried the first and the last
# steps matter most), and with another problem size the sign can flip: a value belongs to a
# (point, moment) pair, not to the point alone.
