# Solutions to lesson 08 (scaling up). Load into a cell with
#   %load solutions/08_scaling_up_solutions.py
# after running the lesson: it uses the lesson's `traj`, `test`, `model`, `per_layer`, `three` and
# `SEED`, and defines only new names (sol_...).
import time

import torch

import dve_teach as dt
from dve_teach.teach.exercises import lesson08 as sol_ex

# Exercise A: shares of 64 proportional to the capped layer sizes, floored, leftovers to the largest
# remainders (by hand, not with allocate_dims); then the fit confirms it.
sol_caps = [min(sl.stop - sl.start, max(model.pca_samples, 64)) for _, sl in traj.flat.layers]   # noqa: F821
sol_raw = [64 * c / sum(sol_caps) for c in sol_caps]
sol_split = [int(v) for v in sol_raw]
for sol_j in sorted(range(len(sol_raw)), key=lambda j: sol_split[j] - sol_raw[j])[:64 - sum(sol_split)]:
    sol_split[sol_j] += 1
sol_split = tuple(sol_split)
print(sol_ex.check_layer_split(sol_split, traj, 64, model.pca_samples))                  # noqa: F821
sol_fit = dt.DataValueEmbedding(proj_dim=64, projection="pca", layerwise=True,
                                pca_samples=model.pca_samples).fit(traj)                 # noqa: F821
print("fitted blocks:", [b.stop - b.start for b in sol_fit.projection_.blocks],
      "| M holds", sum(k * k for k in sol_split), "numbers instead of", 64 * 64)

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
