# Solutions to lesson 01 (order matters). Load into a cell with
#   %load solutions/01_order_matters_solutions.py
# after running the lesson: it uses the lesson's variables (split, model, n, epochs, lr, R, shuffles,
# losses, best, worst, loss_per_order, curriculum_loss, i, steps) and defines only new names (sol_...).
import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson01 as sol_ex
from dve_teach.training.orders import final_test_losses

# Exercise A: the share of test points on which the best shuffle ends with the lower loss.
sol_share = float((losses[best] < losses[worst]).double().mean())                  # noqa: F821
print(sol_ex.check_share_better(sol_share, losses, best, worst))                   # noqa: F821
# The mean loss differs by far more than the boundaries suggest: read the share against the key
# figure's right panel (where the two models' probabilities differ).

# Exercise B: six correctly labelled copies; the one seen at the last step.
sol_data, sol_schedule = dt.explain.with_copies(split.train, shuffles[0], i, steps)   # noqa: F821
sol_traj = dt.train(model, sol_data, sol_schedule, lr)                                 # noqa: F821
sol_copies = list(range(n, n + len(steps)))                                            # noqa: F821
sol_tsloo = dt.exact_loo(sol_traj, split.test, sol_copies, steps).mean(1)              # noqa: F821
print(sol_ex.check_correct_copy_last(sol_tsloo[-1], model, split.train, shuffles[0], i, steps, lr,  # noqa: F821
                                     split.test))                                                   # noqa: F821
for sol_s, sol_e in zip(steps, sol_tsloo):                                             # noqa: F821
    print(f"B. correctly labelled copy seen at step {sol_s:3d}: exact TSLOO {sol_e:+.5f}")
# Compare with the mislabelled copies: a point the model already fits well has a small gradient, so
# these values are much smaller; whether they still depend on the step, and their sign, the printout says.

# Exercise 1: batch size and the spread of final test losses over R shuffles.
sol_spread = {}
for sol_b in (5, 20, 50):
    sol_orders = [dt.Schedule.shuffled(n, sol_b, epochs, seed=r) for r in range(R)]           # noqa: F821
    sol_loss = final_test_losses(model, split.train, split.test, sol_orders, lr).mean(1)      # noqa: F821
    sol_spread[sol_b] = float(sol_loss.std())
    print(f"1. batch {sol_b:2d}: T = {len(sol_orders[0]):3d} steps, test loss {sol_loss.mean():.3f} ± {sol_loss.std():.3f}")
print(f"   widest spread with batch size {max(sol_spread, key=sol_spread.get)}: smaller batches mean more "
      "steps (more places where the order enters) and noisier ones")

# Exercise 2: two steps that do not commute. From θ = θ_{T−2}: a = B_{T−2} then b = B_{T−1}, and back.
sol_run = dt.train(model, split.train, shuffles[0], lr)                                   # noqa: F821
sol_T = len(shuffles[0])                                                                  # noqa: F821
sol_theta, sol_obj = sol_run.params(sol_T - 2), sol_run.objective
(_, sol_Xa, sol_ya), (_, sol_Xb, sol_yb) = sol_run.batch(sol_T - 2), sol_run.batch(sol_T - 1)
sol_b = shuffles[0].batch_size                                                            # noqa: F821
sol_w, sol_div = torch.ones(sol_b, dtype=sol_theta.dtype), torch.tensor(float(sol_b), dtype=sol_theta.dtype)


def sol_grad(theta, X, y):
    return sol_obj.batch_grad(theta, X, y, sol_w, sol_div)


sol_ga, sol_gb = sol_grad(sol_theta, sol_Xa, sol_ya), sol_grad(sol_theta, sol_Xb, sol_yb)
sol_Hb_ga = sol_obj.hvp(sol_theta, sol_Xb, sol_yb, sol_b, sol_ga[None])[0]
sol_Ha_gb = sol_obj.hvp(sol_theta, sol_Xa, sol_ya, sol_b, sol_gb[None])[0]
for sol_eta in (1.0, 0.3, 0.1):
    sol_ab = sol_theta - sol_eta * sol_ga
    sol_ab = sol_ab - sol_eta * sol_grad(sol_ab, sol_Xb, sol_yb)
    sol_ba = sol_theta - sol_eta * sol_gb
    sol_ba = sol_ba - sol_eta * sol_grad(sol_ba, sol_Xa, sol_ya)
    sol_actual, sol_pred = sol_ab - sol_ba, sol_eta ** 2 * (sol_Hb_ga - sol_Ha_gb)
    print(f"2. η {sol_eta:3.1f}: |θ(a→b) − θ(b→a)| {sol_actual.norm():.2e}, predicted {sol_pred.norm():.2e}, "
          f"relative error {(sol_actual - sol_pred).norm() / sol_actual.norm():.3f}")
# The first neglected term is O(η³), so the relative error should shrink about in proportion to η:
# read it off the three lines above.

# Exercise 3: a left-to-right curriculum (by the first coordinate).
sol_lr_order = dt.Schedule.curriculum(split.train.X[:, 0], shuffles[0].batch_size, epochs)   # noqa: F821
sol_lr_loss = final_test_losses(model, split.train, split.test, [sol_lr_order], lr).mean()   # noqa: F821
sol_lr_below = int((loss_per_order < sol_lr_loss).sum())                                    # noqa: F821
print(sol_ex.check_shuffles_below(sol_lr_below, loss_per_order, sol_lr_loss))                # noqa: F821
print(f"3. left→right: test loss {sol_lr_loss:.3f}; {sol_lr_below} of {R} shuffles end lower")  # noqa: F821
