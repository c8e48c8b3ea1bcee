# Solutions to lesson 08 (scaling up). Load into a cell with
#   %load solutions/08_scaling_up_solutions.py
# after running the lesson: it uses the lesson's `traj`, `test`, `model`, `per_layer`, `three` and
# `SEED`, and defines only new names (sol_...).
import time

import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson08 as sol_ex

# Exercise A: one square block per layer.
sol_blocks = [b.stop - b.start for b in per_layer.projection_.blocks]                    # noqa: F821
print(sol_ex.check_matrix_numbers(sum(k * k for k in sol_blocks), per_layer))            # noqa: F821

# Exercise B: local embeddings of segment 0, carried across segments 1 and 2 (later on the left).
sol_s1 = three.segment_bounds_[1]                                                        # noqa: F821
sol_local = dt.DataValueEmbedding().fit(traj.prefix(sol_s1)).embeddings_                 # noqa: F821
sol_P1, sol_P2 = three.propagations_[1][0], three.propagations_[2][0]                    # noqa: F821
sol_composed = sol_local @ (sol_P2 @ sol_P1).T
print(sol_ex.check_composed(sol_composed, three, traj))                                  # noqa: F821


def sol_spearman(dve):
    return dt.metrics.fidelity(dve.influence(test).total(), model.exact_)["spearman"]    # noqa: F821


# Exercise 1: where and on how many points the PCA is fitted (d = 32).
for sol_step in (0, traj.T // 2, traj.T):                                                 # noqa: F821
    for sol_samples in (32, model.pca_samples):                                          # noqa: F821
        sol_e = dt.DataValueEmbedding(proj_dim=32, projection="pca", pca_step=sol_step, pca_samples=sol_samples,
                                      seed=SEED).fit(traj)                               # noqa: F821
        print(f"1. pca_step {sol_step:3d}, {sol_samples:3d} samples: Spearman {sol_spearman(sol_e):.3f}")

# Exercise 2: 8 Gaussian projections at d = 32, averaged, against one at d = 256 (if P allows).
sol_avg = sum(dt.DataValueEmbedding(proj_dim=32, seed=SEED + k).fit(traj).influence(test).total()   # noqa: F821
              for k in range(8)) / 8
sol_avg_rho = dt.metrics.fidelity(sol_avg, model.exact_)["spearman"]                     # noqa: F821
sol_big = sol_spearman(dt.DataValueEmbedding(proj_dim=256, seed=SEED).fit(traj))         # noqa: F821
print(f"2. mean of 8 Gaussian d=32: {sol_avg_rho:.3f}; one Gaussian d=256: {sol_big:.3f} "
      "(averaging k projections shrinks the noise like one projection of k·d dimensions, roughly)")

# Exercise 3: the GGN and the sampled-target Fisher in the pca-projected space.
for sol_h in ("fisher", "ggn", "sampled_fisher"):
    sol_t = time.perf_counter()
    sol_e = dt.DataValueEmbedding(hessian=sol_h, proj_dim=64, projection="pca", seed=SEED,
                                  pca_samples=model.pca_samples).fit(traj)                 # noqa: F821
    print(f"3. {sol_h:15s} pca d=64: Spearman {sol_spearman(sol_e):.3f}, {time.perf_counter() - sol_t:.2f} s")

# Exercise 4 needs a script run outside the notebook (spawned workers re-import __main__): put the
# training and `dt.DataValueEmbedding(segments=4, workers=2).fit(traj)` under
# `if __name__ == "__main__":` in a .py file and time it against workers=1.
