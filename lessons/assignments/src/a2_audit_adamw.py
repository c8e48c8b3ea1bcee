# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# init_cell: true
# export_cell: false
# check_all_cell: false
# run_tests: false
# generate: true
# tests:
#     ok_format: false

# %% [markdown]
# # Assignment 2 — audit an AdamW-trained model (10 points)
#
# The paper computes data value embeddings for Adam-trained language models with the plain-SGD
# recursion — an approximation it calls practical. Here you audit that choice on a model you can
# replay exactly: a small MLP on scikit-learn's 8×8 digits trained with **AdamW**. You compute the
# exact trajectory-specific LOO (TSLOO) of 30 training points, three estimates of it — the SGD proxy
# (the paper's practice), the embedding through AdamW's recorded state, and the exact first-order
# sweep through that state — and say which estimate ranks the points closest to the truth.
# Lessons 04 and 09 cover what you need.
#
# Sign convention: TSLOO(i) = m(θ′_T) − m(θ_T) for the mean test loss m, point i removed from every
# step where it was used; positive = the point helped. Each question ends with a check cell that
# names what is wrong, never the answer; hidden tests recompute your results from your own objects.

# %%
import numpy as np
import torch
from scipy.stats import spearmanr

import dve_teach as dt
from dve_teach import DataValueEmbedding

torch.set_num_threads(1)
SEED = dt.config.seed()          # DVE_TEACH_SEED (default 0)
split = dt.datasets.digits(n_train=200, n_test=40, seed=SEED)
train, test = split.train, split.test
points = sorted(np.random.default_rng(SEED).choice(len(train), 30, replace=False).tolist())
print(f"{len(train)} training digits, {len(test)} test digits; audit points: {points[:5]} ...")

# %% [raw]
# # BEGIN QUESTION
# name: q1_adamw
# points: 2

# %% [markdown]
# **Question 1 — train with AdamW (2 points).** Train `dt.models.mlp((64, 8, 10), seed=SEED)` on
# `train` for 2 epochs of batches of 20 (`dt.Schedule.shuffled(..., seed=SEED)`) with
# `dt.optim.AdamW(weight_decay=0.01)` and learning rate 0.01. Call the run `traj`.

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
traj = dt.train(dt.models.mlp((64, 8, 10), seed=SEED), train, dt.Schedule.shuffled(len(train), 20, epochs=2, seed=SEED),
                0.01, optimizer=dt.optim.AdamW(weight_decay=0.01))
# END SOLUTION
print(f"{traj.T} steps, final test loss {float(traj.test_losses(test).mean()):.3f}")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_adamw_run(traj):
    import dve_teach as dt
    assert isinstance(traj, dt.Trajectory), "traj should be the dt.Trajectory that dt.train returns"
    assert isinstance(traj.optimizer, dt.optim.AdamW), "train with optimizer=dt.optim.AdamW(weight_decay=0.01)"
test_adamw_run(traj)

# %%
# HIDDEN
def test_adamw_settings(traj, train):
    import torch
    assert traj.optimizer.weight_decay == 0.01, "the weight decay should be 0.01"
    assert len(traj.data) == len(train) and traj.T == 20, "2 epochs of batches of 20 over the 200 training digits"
    assert torch.isfinite(traj.final).all()
test_adamw_settings(traj, train)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_truth
# points: 2

# %% [markdown]
# **Question 2 — the truth (2 points).** Replay training without each of the 30 `points` (every
# occurrence removed) and store the change of the **mean** test loss as `truth` (Tensor[30], in the
# order of `points`).

# %% [raw]
# # BEGIN SOLUTION

# %%
truth = dt.exact_loo(traj, test, points).mean(1)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_truth_shape(truth):
    import torch
    assert torch.is_tensor(truth) and truth.shape == (30,), "truth should be a Tensor with one value per audit point"
test_truth_shape(truth)

# %%
# HIDDEN
def test_truth_values(truth, traj, test, points):
    import torch
    import dve_teach as dt
    expected = dt.exact_loo(traj, test, points).mean(1)
    assert torch.allclose(truth.double(), expected, rtol=1e-6, atol=1e-12), \
        "truth should be dt.exact_loo of the audit points (every occurrence), averaged over the test set"
test_truth_values(truth, traj, test, points)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3_estimates
# points: 4

# %% [markdown]
# **Question 3 — three estimates (4 points).** For the same points, in the same order, as the change
# of the mean test loss with every occurrence removed (``.total()``, then the points' rows, then the
# mean over the test set), compute a dict `estimates` with
# - `"sgd_proxy"`: `DataValueEmbedding(optimizer="sgd_proxy")` — the plain-SGD recursion with the
#   run's learning rates, the paper's practice;
# - `"recorded"`: `DataValueEmbedding(optimizer="recorded")` — the recursion through AdamW's state;
# - `"unrolled"`: `dt.unrolled_influence` — the exact first-order sweep through AdamW's state;
#
# and a dict `rho` with each estimate's Spearman correlation with `truth` (`spearmanr(...)[0]`, a float).

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
estimates = {}
for mode in ("sgd_proxy", "recorded"):
    estimates[mode] = DataValueEmbedding(optimizer=mode).fit(traj).influence(test).total()[points].mean(1)
estimates["unrolled"] = dt.unrolled_influence(traj, test).total()[points].mean(1)
rho = {name: float(spearmanr(est.numpy(), truth.numpy())[0]) for name, est in estimates.items()}
# END SOLUTION
print({name: round(r, 3) for name, r in rho.items()})

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_estimate_keys(estimates, rho):
    import torch
    assert isinstance(estimates, dict) and set(estimates) == {"sgd_proxy", "recorded", "unrolled"}, \
        "estimates should be a dict with the keys 'sgd_proxy', 'recorded' and 'unrolled'"
    assert all(torch.is_tensor(v) and v.shape == (30,) for v in estimates.values()), \
        "each estimate should be a Tensor with one value per audit point"
    assert isinstance(rho, dict) and set(rho) == set(estimates), "rho should have the same keys as estimates"
    assert all(isinstance(r, float) and -1 <= r <= 1 for r in rho.values()), "each rho should be a float in [-1, 1]"
test_estimate_keys(estimates, rho)

# %%
# HIDDEN
def test_estimate_values(estimates, rho, traj, test, points, truth):
    import torch
    from scipy.stats import spearmanr
    import dve_teach as dt
    expected = {m: dt.DataValueEmbedding(optimizer=m).fit(traj).influence(test).total()[points].mean(1)
                for m in ("sgd_proxy", "recorded")}
    expected["unrolled"] = dt.unrolled_influence(traj, test).total()[points].mean(1)
    for name, e in expected.items():
        assert torch.allclose(estimates[name].double(), e, rtol=1e-6, atol=1e-12), \
            f"estimates[{name!r}] differs from the method the question names (every occurrence, mean over test)"
        assert abs(rho[name] - spearmanr(e.numpy(), truth.numpy())[0]) < 1e-9, \
            f"rho[{name!r}] should be the Spearman correlation of that estimate with truth"
test_estimate_values(estimates, rho, traj, test, points, truth)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4_verdict
# points: 2

# %% [markdown]
# **Question 4 — the verdict (2 points).** Name the estimate that ranks the points closest to the
# truth as `best` (a key of `rho`), and store by how much the exact first-order sweep's Spearman
# correlation exceeds the SGD proxy's as `gain` (negative if the proxy ranks better). Which
# estimate wins depends on the run; lesson 09 explains why the proxy can rank an Adam run's points
# poorly.

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
best = max(rho, key=rho.get)
gain = rho["unrolled"] - rho["sgd_proxy"]
# END SOLUTION
print(f"closest: {best}; the exact sweep ranks {gain:+.3f} better (Spearman) than the SGD proxy")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_verdict_types(best, gain, rho):
    assert best in rho, "best should be one of the keys of rho"
    assert isinstance(gain, float), "gain should be a float"
test_verdict_types(best, gain, rho)

# %%
# HIDDEN
def test_verdict_values(best, gain, rho):
    assert rho[best] == max(rho.values()), "best should be the estimate with the largest Spearman correlation"
    assert abs(gain - (rho["unrolled"] - rho["sgd_proxy"])) < 1e-12, "gain should be rho['unrolled'] - rho['sgd_proxy']"
test_verdict_values(best, gain, rho)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## What to hand in
# This notebook, run top to bottom. Your grade is the sum of the hidden tests' points (10).
