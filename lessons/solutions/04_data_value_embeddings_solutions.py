"""Solutions to the exercises of lesson 04 (data value embeddings).

Load into the lesson with ``%load solutions/04_data_value_embeddings_solutions.py`` or run it
alone: ``python lessons/solutions/04_data_value_embeddings_solutions.py``. It rebuilds the
lesson's digits run.
"""
import numpy as np
import torch

import dve_teach as dt
from dve_teach import explain

torch.manual_seed(0)
torch.set_num_threads(1)
sized = dt.config.sized
digits = dt.datasets.digits(n_train=sized(600, 200), n_test=sized(100, 40), seed=0)
model = dt.models.mlp((64, 16, 10), seed=0)
schedule = dt.Schedule.shuffled(len(digits.train), batch_size=32, epochs=3, seed=0)
traj = dt.train(model, digits.train, schedule, lr=0.5)

# ---- Exercise 1: projection ------------------------------------------------------------------
# Each occurrence stores d numbers instead of P, and the recursion's matrix is d x d instead of
# P x P. Gaussian projections keep dot products only approximately (Johnson-Lindenstrauss), so
# fidelity drops as d shrinks; it approaches the unprojected value as d grows towards P.
sample = sorted(np.random.default_rng(0).choice(len(digits.train), sized(100, 40), replace=False).tolist())
truth_every = dt.exact_loo(traj, digits.test, sample, progress=False)
for d in (32, 128, 512, None):
    emb = dt.DataValueEmbedding(proj_dim=d).fit(traj)
    f = dt.metrics.fidelity(emb.influence(digits.test).total()[sample], truth_every)
    dim = emb.embedding_dim_
    print(f"Ex. 1: d = {dim:5d}: spearman {f['spearman']:.3f}; storage {emb.embeddings_.numel() * 8 / 2**20:6.2f} MiB "
          f"for the embeddings, {dim * dim * 8 / 2**20:6.2f} MiB for the d x d matrix")

# ---- Exercise 2: copies placed earlier ----------------------------------------------------------
# Theorem 2 only sums over LATER occurrences, so earlier copies never enter M_t0. They still lower
# the original's influence, through θ_t0: by step t0 the model has already learned the point from
# its copies, so the original's gradient g_{i,t0} -- and with it δ = (η/b) g -- is smaller.
one_pass = dt.Schedule.shuffled(len(digits.train), batch_size=32, epochs=1, seed=0)
T1 = len(one_pass)
t0 = T1 // 3
i = one_pass.batches[t0][0]
same_class = digits.test.y == digits.train.y[i]
for where, steps in (("none", []), ("later", np.linspace(T1 // 2, T1 - 1, 8)), ("earlier", np.linspace(0, t0 - 1, 8))):
    data_k, schedule_k = explain.with_copies(digits.train, one_pass, i, np.round(steps).astype(int).tolist())
    run = dt.train(model, data_k, schedule_k, lr=0.5)
    exact = dt.exact_loo(run, digits.test, [i], [t0], progress=False)[0][same_class].mean()
    grad_norm = explain.removal_direction(run, i, t0).norm() * run.batch_size / float(run.lrs[t0])
    print(f"Ex. 2: 8 copies {where:7s}: exact influence {exact:+.2e}, |g_(i,t0)| = {grad_norm:.3f}")

# ---- Exercise 3: data value dynamics ------------------------------------------------------------
# Embeddings of the prefix run are relative to the checkpoint θ_s. The first epoch's occurrences
# matter most right after they are used; the later epochs hold look-alikes (the same points again)
# that soak up their influence, so their mean influence on the test loss at θ_s decays with s.
# Whether they end above or below the newest epoch depends on the run: early gradients are large
# (the paper's "high-impact warm-up", §5.3 and Figure 4), later ones have less to be saturated by.
T, per_epoch = traj.T, traj.T // 3
for s in (per_epoch, 2 * per_epoch, T):
    emb = dt.DataValueEmbedding().fit(traj.prefix(s))
    scores = emb.influence(digits.test).per_occurrence.mean(1)        # mean over test points
    first = emb.steps_ < per_epoch
    print(f"Ex. 3: checkpoint after step {s:3d}: mean influence of epoch-1 occurrences {scores[first].mean():+.2e}, "
          f"of the newest epoch {scores[emb.steps_ >= s - per_epoch].mean():+.2e}")
