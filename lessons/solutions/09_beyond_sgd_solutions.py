# Solutions to lesson 09 (beyond SGD). Load into a cell with
#   %load solutions/09_beyond_sgd_solutions.py
# after running the lesson: it uses the lesson's `problem`, `runs`, `mom`, `adam_run`, `batch0`, `p` and
# `SEED`, and defines only new names (sol_...). The open exercises 1-4 are in `sol_exercises()` (about
# half a minute): call it to run them.
import numpy as np

from dve_teach.teach import optimizers as sol_opt
from dve_teach.teach.exercises import lesson09 as sol_ex
from dve_teach.widgets import OptimizerModel as SolOptimizerModel

# Exercise A: with the later gradients unchanged, the buffer hands the kick on with factors 1, μ, μ², ...
# over the T − 1 − t steps that follow: Σ_{j=0}^{T-1-t} μ^j = (1 − μ^{T−t}) / (1 − μ).
sol_mu, sol_T = mom.optimizer.momentum, mom.T                                                 # noqa: F821
sol_carry = ((1 - sol_mu ** sol_T) / (1 - sol_mu), (1 - sol_mu ** 2) / (1 - sol_mu))
print(sol_ex.check_momentum_carry(sol_carry, mom))                                            # noqa: F821

# Exercise B: at t = 0, m̂ = g and v̂ = g², so the step is −η g/(|g| + ε), coordinate by coordinate.
_, sol_X, sol_y = adam_run.batch(0)                                                           # noqa: F821
sol_G = adam_run.objective.per_sample_grads(adam_run.params(0), sol_X, sol_y)                 # noqa: F821
sol_g = sol_G.sum(0) / adam_run.batch_size                                                    # noqa: F821
sol_g_without = sol_g - sol_G[batch0.index(p)] / adam_run.batch_size                          # noqa: F821
sol_eta, sol_eps = float(adam_run.lrs[0]), adam_run.optimizer.eps                             # noqa: F821


def sol_adam_first_step(g):
    return -sol_eta * g / (g.abs() + sol_eps)


sol_first_step = sol_adam_first_step(sol_g_without) - sol_adam_first_step(sol_g)
print(sol_ex.check_first_step(sol_first_step, adam_run, p))                                   # noqa: F821


def sol_exercises():
    """The open exercises at the end of the lesson (seed SEED)."""
    # 1. The paper's curvature: the empirical Fisher in all three embeddings.
    for hessian in ("ggn", "fisher"):
        rho = SolOptimizerModel(problem, optimizer="adam", hessian=hessian).update()["spearman"]  # noqa: F821
        print(f"1. {hessian:6s}: " + ", ".join(f"{m} {v:.2f}" for m, v in rho.items() if m.startswith("DVE")))
    # The Fisher lowers the embeddings, and the lead of the recorded recursion over the SGD proxy shrinks
    # (in the full-mode run of seed 0 the three land close together): with the paper's curvature, the
    # curvature and not only the optimizer limits the embedding. Try a few seeds before concluding.

    # 2. β₂: how fast v forgets.
    for beta2 in (0.9, 0.999, 0.9999):
        rho = SolOptimizerModel(problem, optimizer="adam", beta2=beta2).update()["spearman"]     # noqa: F821
        print(f"2. β₂ = {beta2}: " + ", ".join(f"{m} {v:.2f}" for m, v in rho.items()))
    # With a small β₂, v follows the latest gradients closely, so how v reacts to a removal matters
    # more, and that is what the frozen preconditioner leaves out: in the full-mode run of seed 0 it
    # drops from 0.74 to 0.64 at β₂ = 0.9, while 0.9999 changes little over so few steps.

    # 3. A longer warm-up: the first step's staircase scales with η_0 (a flip moves by 2η_0) and c_t
    #    divides by η_t, so a smaller η_0 does not soften it: the start still stands out.
    for warmup in (0.1, 0.3):
        r = sol_opt.phase_run(sol_opt.phase_problem(SEED), "adamw", warmup=warmup, seed=SEED)  # noqa: F821
        print(f"3. warm-up {warmup:.0%}: start/basin {r['levels']['start_over_basin']:.1f}, "
              f"c_0 / median c_t {float(r['curve'][0] / r['curve'].median()):.1f}")

    # 4. Momentum's tail: the last batches' gradients have not been fully handed on when training stops.
    r = sol_opt.phase_run(sol_opt.phase_problem(SEED), "momentum", peak=0.05, seed=SEED)        # noqa: F821
    bins = r["levels"]["bins"]
    print("4. momentum, mean c_t per tenth of the run:", np.array2string(bins, precision=4),
          "| last tenth below the highest of the second half:", bool(bins[-1] < bins[5:-1].max()))
