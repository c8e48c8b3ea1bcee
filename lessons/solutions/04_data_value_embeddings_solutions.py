"""Solutions to the exercises of lesson 04 (data value embeddings): the "Try it" exercises, then
the exercises at the end.

Run it inside the lesson, after the lesson's cells: ``%run -i solutions/04_data_value_embeddings_solutions.py``
(or ``%load`` it to read it first). It uses the lesson's objects (``traj``, ``digits``, ``dve``,
``noisy``, ``p``, ``explorer``, ``model``, ``one_pass``, ``sample``, ``truth_every``, ...) and names
everything it makes ``sol_…``, so the lesson's own variables stay as they were.
"""
import numpy as np
import torch

import dve_teach as dt
from dve_teach import explain
from dve_teach.teach.exercises import lesson04 as ex

# ---- Try it: two steps of the recursion by hand --------------------------------------------------
# Nothing follows the last step, so M = 0 there and DVE(j, T-1) = (η/b) g_j. One step earlier,
# Theorem 2 subtracts from (η/b) g_i the last step's embeddings weighted by g_jᵀ g_i.
sol_T = traj.T
sol_last = traj.batch(sol_T - 1)
sol_G_last = traj.objective.per_sample_grads(traj.params(sol_T - 1), sol_last[1], sol_last[2])
sol_E_last = float(traj.lrs[sol_T - 1]) / traj.batch_size * sol_G_last                 # [b, P]
sol_prev = traj.batch(sol_T - 2)
sol_G_prev = traj.objective.per_sample_grads(traj.params(sol_T - 2), sol_prev[1], sol_prev[2])
sol_E_prev = float(traj.lrs[sol_T - 2]) / traj.batch_size * (sol_G_prev - (sol_G_prev @ sol_G_last.T) @ sol_E_last)
print(ex.check_second_to_last_step(sol_E_prev, dve, traj))

# ---- Try it: a query by hand ------------------------------------------------------------------------
sol_g_test = traj.objective.measure_grads(traj.final, noisy)[0]          # ∇ℓ(θ_T, noisy image 0), [P]
sol_score = float((dve.embeddings_[dve.points_ == p] @ sol_g_test).sum())
print(ex.check_query(sol_score, dve, noisy, p))

# ---- Try it: agreement for one test digit -------------------------------------------------------------
sol_methods = explorer.model.methods
sol_top = {m: set(sol_methods[m][:, 3].topk(5).indices.tolist()) for m in ("DVE (GGN)", "exact LOO")}
sol_count = len(sol_top["DVE (GGN)"] & sol_top["exact LOO"])
print(ex.check_confirmed(sol_count, explorer.model, test_index=3, method="DVE (GGN)"))

# ---- Exercise 1: projection ------------------------------------------------------------------
# Each occurrence stores d numbers instead of P, and the recursion's matrix is d x d instead of
# P x P. Gaussian projections keep dot products only approximately (Johnson-Lindenstrauss), so
# fidelity drops as d shrinks; it approaches the unprojected value as d grows towards P.
for sol_d in (32, 128, 512, None):
    sol_emb = dt.DataValueEmbedding(proj_dim=sol_d, seed=SEED + 6).fit(traj)
    sol_f = dt.metrics.fidelity(sol_emb.influence(digits.test).total()[sample], truth_every)
    sol_dim = sol_emb.embedding_dim_
    print(f"Ex. 1: d = {sol_dim:5d}: spearman {sol_f['spearman']:.3f}; storage "
          f"{sol_emb.embeddings_.numel() * 8 / 2**20:6.2f} MiB for the embeddings, "
          f"{sol_dim * sol_dim * 8 / 2**20:6.2f} MiB for the d x d matrix")

# ---- Exercise 2: copies placed earlier ----------------------------------------------------------
# Theorem 2 only sums over LATER occurrences, so earlier copies never enter M_t0. They still lower
# the original's influence, through θ_t0: by step t0 the model has already learned the point from
# its copies, so the original's gradient g_{i,t0} -- and with it δ = (η/b) g -- is smaller.
sol_T1 = len(one_pass)
sol_t0 = sol_T1 // 3
sol_i = one_pass.batches[sol_t0][0]
sol_same = digits.test.y == digits.train.y[sol_i]
for sol_where, sol_steps in (("none", []), ("later", np.linspace(sol_T1 // 2, sol_T1 - 1, 8)),
                             ("earlier", np.linspace(0, sol_t0 - 1, 8))):
    sol_data, sol_schedule = explain.with_copies(digits.train, one_pass, sol_i, np.round(sol_steps).astype(int).tolist())
    sol_run = dt.train(model, sol_data, sol_schedule, lr=0.5)
    sol_exact = dt.exact_loo(sol_run, digits.test, [sol_i], [sol_t0], progress=False)[0][sol_same].mean()
    sol_norm = explain.removal_direction(sol_run, sol_i, sol_t0).norm() * sol_run.batch_size / float(sol_run.lrs[sol_t0])
    print(f"Ex. 2: 8 copies {sol_where:7s}: exact influence {sol_exact:+.2e}, |g_(i,t0)| = {sol_norm:.3f}")

# ---- Exercise 3: data value dynamics ------------------------------------------------------------
# Embeddings of the prefix run are relative to the checkpoint θ_s. The first epoch's occurrences
# matter most right after they are used; the later epochs hold look-alikes (the same points again)
# that soak up their influence, so their mean influence on the test loss at θ_s decays with s.
# Whether they end above or below the newest epoch depends on the run: early gradients are large
# (the paper's "high-impact warm-up", §5.3 and Figure 4), later ones have less to be saturated by.
sol_per_epoch = traj.T // 3
for sol_s in (sol_per_epoch, 2 * sol_per_epoch, traj.T):
    sol_emb = dt.DataValueEmbedding().fit(traj.prefix(sol_s))
    sol_scores = sol_emb.influence(digits.test).per_occurrence.mean(1)        # mean over test points
    sol_first = sol_emb.steps_ < sol_per_epoch
    print(f"Ex. 3: checkpoint after step {sol_s:3d}: mean influence of epoch-1 occurrences "
          f"{sol_scores[sol_first].mean():+.2e}, of the newest epoch "
          f"{sol_scores[sol_emb.steps_ >= sol_s - sol_per_epoch].mean():+.2e}")
