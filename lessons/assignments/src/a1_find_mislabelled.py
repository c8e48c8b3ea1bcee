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
# # Assignment 1 — find the mislabelled wines (10 points)
#
# A tenth of the training labels of scikit-learn's **wine** data set (178 wines, 13 chemical
# measurements, 3 cultivars) have been flipped to a wrong class. You will train a model of your
# choice on the noisy labels, rank the training points by their data value embedding (DVE) value on a
# clean validation set, measure how many flips the ranking finds, and then check the points you
# flag with exact replays of training — the trajectory-specific leave-one-out (TSLOO) of the
# lessons. Lessons 02, 04 and 07 cover everything you need.
#
# Sign convention (as in every lesson): TSLOO(i) = m(θ′_T) − m(θ_T), the change of the mean
# validation loss when point i is removed from every step where it was used. **Positive: the point
# helped; negative: it hurt.** A mislabelled point tends to hurt.
#
# Run every cell top to bottom. Each question ends with a check cell (`grader.check`): it says which
# part is wrong, never the answer. Hidden tests (for the grade) recompute your results from your own
# objects, so they hold for any seed (`DVE_TEACH_SEED`) and any model you choose.

# %%
import numpy as np
import torch
from sklearn.datasets import load_wine

import dve_teach as dt
from dve_teach import DataValueEmbedding

torch.set_num_threads(1)
SEED = dt.config.seed()          # DVE_TEACH_SEED (default 0)

wine = load_wine()
X = torch.tensor(wine.data, dtype=torch.float64)
X = (X - X.mean(0)) / X.std(0)                     # standardise each measurement
y = torch.tensor(wine.target, dtype=torch.int64)
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(SEED))
train, val = dt.Data(X[perm[:120]], y[perm[:120]]), dt.Data(X[perm[120:]], y[perm[120:]])
noisy, flipped = dt.curation.flip_labels(train, 0.10, seed=SEED)   # flipped: the truth, for question 3 only
print(f"{len(noisy)} training wines ({len(flipped)} labels flipped), {len(val)} clean validation wines")

# %% [raw]
# # BEGIN QUESTION
# name: q1_train
# points: 2

# %% [markdown]
# **Question 1 — train (2 points).** Train a model of your choice on `noisy` with `dt.train` (any
# `nn.Module` whose output is 3 logits; `dt.models.mlp((13, 16, 3), seed=SEED)` is a good start)
# with cross-entropy, a shuffled schedule (`dt.Schedule.shuffled(len(noisy), batch_size, epochs,
# seed=SEED)`) and a learning rate that trains without diverging. Call the recorded run `traj`.

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
model = dt.models.mlp((13, 16, 3), seed=SEED)
schedule = dt.Schedule.shuffled(len(noisy), 16, epochs=5, seed=SEED)
traj = dt.train(model, noisy, schedule, 0.1)
# END SOLUTION
print(f"final validation loss {float(traj.test_losses(val).mean()):.3f}")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_a_trajectory(traj):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    assert isinstance(traj, dt.Trajectory), "traj should be the dt.Trajectory that dt.train returns"
test_a_trajectory(traj)

# %%
def test_on_the_noisy_labels(traj, noisy):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    assert len(traj.data) == len(noisy), "train on all the points of `noisy`"
    assert torch.equal(traj.data.y, noisy.y), "train on the noisy labels (`noisy`), not the clean ones"
test_on_the_noisy_labels(traj, noisy)

# %%
# HIDDEN
def test_it_learned(traj, val):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    losses = traj.test_losses(val)
    assert torch.isfinite(losses).all(), "the validation loss is not finite"
    assert float(losses.mean()) < float(np.log(3)), "the model predicts no better than chance on the validation set"
test_it_learned(traj, val)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_rank
# points: 3

# %% [markdown]
# **Question 2 — rank by DVE value (3 points).** Fit a `DataValueEmbedding()` (the paper's Fisher
# recursion, unprojected) on `traj`. A point's **value** is the mean over the validation set of its
# influence summed over all its occurrences: `emb.influence(val).total()` is a
# Tensor[n_train, n_val]. Store the values as `values` (Tensor[n_train]) and the training indices
# ordered from the **most harmful** (lowest value) to the most helpful as `ranking` (a list of ints).

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
emb = DataValueEmbedding().fit(traj)
values = emb.influence(val).total().mean(1)
ranking = torch.argsort(values).tolist()
# END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_shapes(values, ranking, traj):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    assert torch.is_tensor(values) and values.shape == (len(traj.data),), \
        "values should be a Tensor with one value per training point"
    assert sorted(int(i) for i in ranking) == list(range(len(traj.data))), \
        "ranking should list every training index exactly once"
test_shapes(values, ranking, traj)

# %%
def test_direction(values, ranking):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    v = values[torch.as_tensor([int(i) for i in ranking])]
    assert bool((v[1:] >= v[:-1]).all()), \
        "ranking should start with the most harmful point (the lowest value) and end with the most helpful"
test_direction(values, ranking)

# %%
# HIDDEN
def test_values_are_the_dve_values(values, traj, val):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    expected = DataValueEmbedding().fit(traj).influence(val).total().mean(1)
    assert torch.allclose(values.double(), expected, rtol=1e-6, atol=1e-12), \
        "values differ from the mean validation influence of the Fisher embedding, summed over occurrences"
test_values_are_the_dve_values(values, traj, val)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3_precision
# points: 2

# %% [markdown]
# **Question 3 — how many flips does it find? (2 points).** With k = `len(flipped)`, compute the
# precision at k of your ranking — the share of its first k points that are flipped — as
# `precision` (a float), and the precision a *random* ranking has in expectation as
# `random_precision`.

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
k = len(flipped)
precision = len(set(ranking[:k]) & set(flipped.tolist())) / k
random_precision = k / len(noisy)
# END SOLUTION
print(f"precision at {len(flipped)}: {precision:.2f} (random: {random_precision:.2f})")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_precision_range(precision, random_precision):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    assert isinstance(precision, float) and 0 <= precision <= 1, "precision should be a float between 0 and 1"
    assert isinstance(random_precision, float) and 0 < random_precision < 1, \
        "random_precision should be a float between 0 and 1"
test_precision_range(precision, random_precision)

# %%
# HIDDEN
def test_precision_values(precision, random_precision, ranking, flipped, noisy):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    k = len(flipped)
    top = {int(i) for i in ranking[:k]}
    assert abs(precision - len(top & set(flipped.tolist())) / k) < 1e-12, \
        "precision should count the flipped points among the first k of your ranking, divided by k"
    assert abs(random_precision - k / len(noisy)) < 1e-12, \
        "a random ranking puts flipped points in its top k at the rate they occur in the data"
test_precision_values(precision, random_precision, ranking, flipped, noisy)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4_exact
# points: 3

# %% [markdown]
# **Question 4 — check your flags by replaying training (3 points).** For the five points your
# ranking flags first, compute the exact TSLOO with every occurrence removed (`dt.exact_loo`), as the
# mean change of the validation loss: `exact_top5` (Tensor[5], in ranking order). Then count how
# many of the five the replay confirms as harmful (exact value below zero): `confirmed` (an int).
# If the embedding and the replay disagree on a point, that is worth a sentence in your report.

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
exact_top5 = dt.exact_loo(traj, val, ranking[:5]).mean(1)
confirmed = int((exact_top5 < 0).sum())
# END SOLUTION
print(f"{confirmed} of the 5 flagged points hurt in the exact replay")

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_exact_shape(exact_top5, confirmed):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    assert torch.is_tensor(exact_top5) and exact_top5.shape == (5,), "exact_top5 should be a Tensor of 5 values"
    assert isinstance(confirmed, int) and 0 <= confirmed <= 5, "confirmed should be an int from 0 to 5"
test_exact_shape(exact_top5, confirmed)

# %%
# HIDDEN
def test_exact_values(exact_top5, confirmed, traj, val, ranking):
    import numpy as np, torch
    import dve_teach as dt
    from dve_teach import DataValueEmbedding
    expected = dt.exact_loo(traj, val, [int(i) for i in ranking[:5]]).mean(1)
    assert torch.allclose(exact_top5.double(), expected, rtol=1e-6, atol=1e-12), \
        "exact_top5 should be dt.exact_loo of your first five points (every occurrence), averaged over val"
    assert confirmed == int((expected < 0).sum()), "confirmed should count the five values below zero"
test_exact_values(exact_top5, confirmed, traj, val, ranking)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## What to hand in
# This notebook, run top to bottom. Your grade is the sum of the hidden tests' points (10).
