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
# strip_solutions_from_all_cells: true
# tests:
#     ok_format: false

# %% [markdown]
# # 08 · Scaling up
#
# *About 30 minutes. Lessons 02 and 04 come first: exact trajectory-specific leave-one-out (TSLOO) and
# data value embeddings (DVE).*
#
# Everything so far ran on models with a thousand or so parameters, where a $P\times P$ matrix is
# small. The paper's second contribution is that data value embeddings can be computed for language
# models with hundreds of millions of parameters (paper §4.2–4.4). Three ideas make that possible, and
# this lesson takes each apart on a model small enough to check against the exact replay.
#
# ## Goals
#
# - See why **per-sample gradients** are the bottleneck, and how a Linear layer's gradient factors into
#   *input activation × output gradient* (paper §4.2) — checked against full per-sample gradients.
# - Compare **random** projections (Gaussian, orthogonal, Kronecker) with projections **fitted to the
#   data** (PCA of per-sample gradients): fidelity against exact LOO and seconds, as $d$ grows.
# - Understand **why random projection noise hurts rank correlation**: its error does not shrink with
#   the dot product it estimates.
# - Keep **one $M$ per layer** (paper §4.3) and count what it saves.
# - Split the recursion into segments — **influence checkpointing** (paper §4.4) — and check that it
#   gives the same embeddings.
# - Know what changes on a GPU, how these sizes compare with the paper's Pythia-410M run, and where to
#   go when one machine is not enough.
#
# **Sections** (about 40 minutes): 1. A question to explore (≈ 5 min) · 2. The key figure (≈ 5 min) ·
# 3. Per-sample gradients (≈ 5 min) · 4. Projection noise (≈ 5 min) · 5. One M per layer (≈ 5 min) ·
# 6. Influence checkpointing (≈ 8 min) · 7. GPUs, the paper's sizes, more machines (≈ 7 min).
#
# **Notation** ([lesson 00's box](00_start_here.ipynb), the same symbols): $z_i$, $B_t$, $b$ — a training point, the batch of
# step $t$, the batch size; $\theta_t$ the parameters before step $t$, $\theta_T$ the final ones;
# $\eta_t$ the learning rate (each point's step is $\eta_t/b$ times its gradient);
# $\mathrm{TSLOO}(i, t)$ the change of the test loss when $z_i$ is left out of step $t$ only, and
# "every occurrence" when it is left out of every step that uses it; positive = the point **helped**;
# the kick $\delta_{i,t} = \frac{\eta_t}{b}\nabla\ell(\theta_t, z_i)$; $K_t = \prod_{k>t}(I - \eta_k H_k)$;
# $M_t$ the data value embedding's recursion matrix; $c_t$ lesson 06's per-step curve. **This lesson's
# other δ:** in section 3, $\delta_i = \partial\ell_i/\partial z_i$ is the gradient at a layer's
# *output* (the name of the backpropagation literature), not the kick. Key equations are numbered
# (8.1)–(8.4) and referred to by number.

# %%
# %matplotlib inline
# %config InlineBackend.figure_formats = ['png']
import time

import numpy as np
import torch

import dve_teach as dt
from dve_teach import plots
from dve_teach.influence.projection import allocate_dims, factored_grads, make_projection
from dve_teach.teach.exercises import lesson08 as ex
from dve_teach.widgets import Problem, ScalingExplorer, ScalingModel

SEED = dt.config.seed()                   # DVE_TEACH_SEED (default 0): every seed below derives from it
np.random.seed(SEED); torch.manual_seed(SEED)   # seed everything
torch.set_num_threads(1)                  # small problems: one thread is fastest (and fair to other users)
sized = dt.config.sized                   # sized(full, fast): smaller problems when DVE_TEACH_FAST=1
print(f"dve_teach {dt.__version__}, torch {torch.__version__}, fast mode: {dt.config.fast_mode()}")

# %% [markdown]
# ## 1. A question to explore (≈ 5 min)
#
# A run with $P$ parameters gives every (point, step) occurrence a gradient of $P$ numbers, and the
# recursion's matrix is $P\times P$: too big for a language model. So the paper **projects** every
# gradient to $d \ll P$ dimensions. Which projection, and how many dimensions?
#
# **Predict first.** A random Gaussian projection with $d = 128$ dimensions, or a projection fitted to
# the run's gradients (PCA) with only $d = 16$: which ranks the training points closer to the exact
# leave-one-out? Write your guess down, then find out with the explorer below.
#
# The problem: 8×8 digits, a 64-16-10 tanh MLP ($P = 1210$ parameters), two epochs of SGD with batches
# of 32. `ScalingModel` trains the run once, replays the exact leave-one-out of **every** training
# point (every occurrence removed) and fits the unprojected Fisher embedding as the reference (a few
# seconds). The explorer fits the embedding with the **projection** and the **dimension d** you choose
# and scores it: the Spearman correlation, over training points, between the embedding's estimate and
# the exact LOO, averaged over test digits (as in lesson 04). Each (kind, $d$) is fitted once and then
# cached; every choice tried so far stays on the plot, and the readout gives the Spearman, its share of
# the unprojected one and the fit's seconds.

# %% tags=["widget"]
model = ScalingModel(Problem.digits(n_train=sized(300, 200), n_test=sized(100, 50), hidden=16, seed=SEED))
explorer = ScalingExplorer(model=model)     # the widget, on the model above (its cache is shared)
explorer

# %% [markdown]
# The same explorer can be driven from code (which is how it is tested): set a control's `.value`.

# %% tags=["nbval-check-output"]
explorer.controls["kind"].value = "gaussian"
explorer.controls["d"].value = 128
print("the widget now shows gaussian at d = 128:", (explorer.model.kind, explorer.model.d) == ("gaussian", 128))
print("its readout names the projection:", "gaussian" in explorer.readout.value)

# %% [markdown]
# ## 2. The key figure (≈ 5 min)
#
# `sweep()` fits every projection kind at $d = 16, 32, 64, 128$ on the same run — the whole grid the
# explorer offers — and the figure draws all of them.

# %%
traj, test = model.traj, model.test
P, ref = traj.flat.P, model.reference_
print(f"P = {P} parameters, {len(traj.data)} training digits, T = {traj.T} steps; "
      f"unprojected Spearman {ref.spearman:.3f} (fit {ref.seconds:.3f} s)")
results = {(r.kind, r.d): r for r in model.sweep()}
print(model.table())
model.kind, model.d = "pca", 128
model.figure()

# %% [markdown]
# **How to read it.** *Left:* fidelity against $d$ for each projection; circles are random projections,
# squares are projections fitted to the run; the dashed line is the unprojected embedding; the star is
# the current choice. *Right:* the seconds each fit took (one run each, on a shared machine: read
# them, do not trust the third digit). The answer to the question of section 1:

# %%
g128, p16 = results[("gaussian", 128)], results[("pca", 16)]
print(f"gaussian d = 128: {g128.spearman:.3f};  pca d = 16: {p16.spearman:.3f}")

# %% tags=["nbval-check-output"]
print("pca with 16 dimensions beats gaussian with 128:", p16.spearman > g128.spearman)

# %% tags=["nbval-check-output"]
kinds, dims = ("gaussian", "orthogonal", "kronecker", "pca", "kronecker_pca"), model.dims
random_kinds = ("gaussian", "orthogonal", "kronecker")
sp = {k: [results[(k, d)].spearman for d in dims] for k in kinds}
print("pca beats every random projection at every d:",
      all(sp["pca"][j] > sp[k][j] for k in random_kinds for j in range(len(dims))))
print("kronecker_pca beats kronecker (its random twin) at every d:",
      all(a > b for a, b in zip(sp["kronecker_pca"], sp["kronecker"])))
print("every random projection gains from d = 16 to d = 128:", all(sp[k][-1] > sp[k][0] for k in random_kinds))
print("pca at d = 64 keeps over 80% of the unprojected Spearman:", results[("pca", 64)].share > 0.8)
print("no random projection keeps 75% even at d = 128:", all(results[(k, 128)].share < 0.75 for k in random_kinds))

# %% [markdown]
# Eight times fewer dimensions, fitted to where the gradients are, beat the random ones: a projection
# fitted to the run beats every random one at every $d$ tried, and the random ones stay far below the
# unprojected embedding even with 128 dimensions (about a tenth of $P$). The fitted projections
# (`pca`, `kronecker_pca`) are this library's extension; the paper uses a random Kronecker projection
# (section 4 says which of the two could scale). The rest of the lesson explains both halves of that
# picture.

# %% [markdown]
# ## 3. Why per-sample gradients are the bottleneck (≈ 5 min)
#
# The recursion needs $g_i = \nabla\ell(\theta_t, z_i)$ for **every point of every batch**, each a
# vector of $P$ numbers. Training only ever needs their *sum*, which one backward pass gives. Asking
# autograd for $b$ separate gradients naively costs $b$ backward passes and $b\cdot P$ numbers per
# step; for Pythia-410M that is 410 million numbers per training example.
#
# For a Linear layer $z = W a + c$ the chain rule gives the gradient of one example as an **outer
# product** of two small vectors: the layer's input $a_i$ (kept by the forward pass) and the gradient
# $\delta_i = \partial\ell_i/\partial z_i$ at its output (from the backward pass of the *summed* loss,
# because examples do not interact):
#
# $$\nabla_{[W\,|\,c]}\,\ell_i = \delta_i\,[a_i;\,1]^\top \qquad (\text{out}\times(\text{in}+1)) \tag{8.1}$$
#
# So one forward and one backward pass give every example's gradient by (8.1) (paper §4.2), and storing the
# two factors takes $\text{out} + \text{in} + 1$ numbers instead of their product.
# (For a language model, one training example is a sequence: its gradient is a **sum over tokens** of
# such outer products, so the factors are stored per token and the saving shrinks as sequences grow.)
# `dve_teach.influence.projection.factored_grads` does this with hooks; the cell below checks it
# against `vmap(grad)` per-sample gradients, and the last layer by hand: for cross-entropy
# $\delta = \mathrm{softmax}(z) - \mathrm{onehot}(y)$.

# %%
theta, X, y = traj.final, traj.data.X, traj.data.y
start = time.perf_counter(); full = traj.objective.per_sample_grads(theta, X, y); t_full = time.perf_counter() - start
start = time.perf_counter(); fact = factored_grads(traj.objective, theta, X, y); t_fact = time.perf_counter() - start
print(f"{len(X)} per-sample gradients of {P} numbers: vmap(grad) {t_full:.4f} s, factored {t_fact:.4f} s")
net = traj.model_at(traj.T)                                     # the final model as an nn.Module
hidden = torch.tanh(net[0](X))                                  # a_i of the last Linear layer: [n, 16]
delta = torch.softmax(net[2](hidden), dim=1) - torch.nn.functional.one_hot(y, 10)   # δ_i: [n, 10]
by_hand = torch.einsum("no,ni->noi", delta, hidden).reshape(len(X), -1)             # δ_i a_iᵀ, flattened
w_last = traj.flat.slices[traj.flat.names.index("2.weight")]
print("numbers per example: full gradient", P, "| its factors", sum(m.in_features + 1 + m.out_features for m in (net[0], net[2])))

# %% tags=["nbval-check-output"]
print("factored per-sample gradients equal vmap(grad) ones:", torch.allclose(fact, full, atol=1e-12, rtol=0))
print("last layer by hand, softmax(z) - onehot(y) times its input, equals them too:",
      torch.allclose(by_hand.detach(), full[:, w_last], atol=1e-12, rtol=0))

# %% [markdown]
# The factorisation is exact, not an approximation. Still, $P$ numbers per example are too many to
# keep for every step of a large run, and the recursion's matrix $M$ would be $P\times P$. Hence
# projections: $R: \mathbb{R}^P\to\mathbb{R}^d$, the recursion run on $Rg$, and test gradients mapped
# by the same $R$. A Kronecker projection (LoGra's — Choe et al., 2024, who compute per-sample
# gradients at $\theta_T$ from the same factorisation and project them — used by the paper) projects the two factors
# separately, $(P_\text{out}\,\delta)\otimes(P_\text{in}\,[a;1])$, so it never forms $g$ at all.

# %% [markdown]
# ## 4. Why random projection noise hurts rank correlation (≈ 5 min)
#
# A Gaussian $R$ (entries $\mathcal N(0, 1/d)$) keeps dot products **on average**: $\mathbb E[(Ru)^\top(Rg)]
# = u^\top g$. But its error has standard deviation
#
# $$\sqrt{\big((u^\top g)^2 + \lVert u\rVert^2\lVert g\rVert^2\big)/d}, \tag{8.2}$$
#
# dominated by $\lVert u\rVert\,\lVert g\rVert/\sqrt d$, which does **not** shrink when $u^\top g$ is
# small. For the many training-test pairs with small dot products the estimate is mostly noise, and
# the ranking of training points — what Spearman measures — is scrambled. Below: every (training, test) pair's dot product at $\theta_T$ against its
# Gaussian-projected estimate at $d = 64$, and the measured error against (8.2).

# %%
U = traj.objective.per_sample_grads(theta, test.X, test.y)             # test gradients [n_test, P]
true = full @ U.T                                                      # exact dot products [n, n_test]
R = make_projection(traj.flat, 64, "gaussian", seed=SEED)
approx = R.project(full) @ R.project(U).T
predicted = ((true ** 2 + full.norm(dim=1)[:, None] ** 2 * U.norm(dim=1)[None] ** 2) / 64).sqrt()
error_ratio = float((approx - true).pow(2).mean().sqrt() / predicted.pow(2).mean().sqrt())
small = true.abs() < true.abs().median()
rel = (approx - true).abs() / true.abs()
print(f"measured RMS error / predicted = {error_ratio:.2f}; median relative error: small half "
      f"{rel[small].median():.1f}, large half {rel[~small].median():.1f}")
with plots.style():
    fig, ax = plots.new_figure(1, figsize=(5, 3.3))
    ax[0, 0].scatter(true.flatten()[::7], approx.flatten()[::7], s=3, alpha=0.3, color=plots.COLORS[0])
    lim = float(true.abs().max())
    ax[0, 0].plot([-lim, lim], [-lim, lim], color="0.4", lw=1)
    ax[0, 0].set(xlabel="exact gᵀu", ylabel="(Rg)ᵀ(Ru), Gaussian d = 64", title="projected dot products")
fig

# %% tags=["nbval-check-output"]
print("the error has the size the formula predicts (ratio 0.8 to 1.25):", 0.8 < error_ratio < 1.25)
print("small dot products get over 3x the relative error of large ones:", bool(rel[small].median() > 3 * rel[~small].median()))

# %% [markdown]
# A projection **fitted to the data** spends its $d$ directions where per-sample gradients actually
# lie. `projection="pca"` draws a sample of training points (here up to 256), takes their per-sample
# gradients at $\theta_0$ and keeps the top $d$ right singular vectors (`dve_teach.influence.pca`);
# if every gradient of the run lay in their span, the scores would be exactly the unprojected ones.
# `"kronecker_pca"` does the same per factor (inputs and output gradients of each Linear layer), so
# it never forms a full gradient either. Both are **this library's extension, not the paper's method**
# (the paper uses random Kronecker projections). Of the two, only `kronecker_pca` could scale: plain
# `pca` needs the full per-sample gradients of its sample and an SVD — for Pythia-410M about 10¹¹
# numbers for 256 samples. How much of the run's gradients do 64 such directions hold,
# compared with 64 random orthonormal ones (which hold $d/P$ on average)?

# %%
run_grads = torch.cat([traj.objective.per_sample_grads(traj.params(t), *traj.batch(t)[1:]) for t in range(traj.T)])
held = {}
for kind in ("pca", "orthogonal"):
    R64 = dt.DataValueEmbedding(proj_dim=64, projection=kind, seed=SEED, pca_samples=model.pca_samples).fit(traj).projection_
    held[kind] = float(R64.project(run_grads).pow(2).sum() / run_grads.pow(2).sum())
print(f"share of the squared length of all {len(run_grads)} gradients of the run kept by d = 64: "
      f"pca {held['pca']:.0%}, orthogonal {held['orthogonal']:.1%} (d/P = {64 / P:.1%})")

# %% tags=["nbval-check-output"]
print("64 principal directions fitted at θ_0 hold over 70% of the whole run's gradients:", held["pca"] > 0.7)
print("64 random orthonormal directions hold under 10%:", held["orthogonal"] < 0.1)

# %% [markdown]
# Gradients of the whole run concentrate in a few directions that are already visible at $\theta_0$;
# a random projection keeps only its $d/P$ share of them and then rescales, noise included. That is
# the key figure's gap.

# %% [markdown]
# ## 5. One M per layer (≈ 5 min)
#
# The recursion's matrix is $d\times d$: its memory grows with $d^2$ and each step costs $O(b\,d^2)$.
# The paper keeps **one block per layer** (§4.3): with $d$ split into $d_l$ per layer, $M$ holds
#
# $$\sum_l d_l^2 \quad\text{numbers instead of}\quad d^2 = \Big(\sum_l d_l\Big)^2, \tag{8.3}$$
#
# and directions of different layers no longer interact in the recursion (the curvature between layers
# is dropped). `layerwise=True` does it; `projection_.blocks` shows the split. **How $d$ is split** (the
# paper leaves it open; this is the library's rule, `dve_teach.influence.projection.allocate_dims`):
# each layer gets a share proportional to the number of directions it can offer — for `pca`, the
# smaller of its parameter count and the number of sampled gradients (a PCA of $s$ gradients finds at
# most $s$ directions) — rounded down, with the dimensions left over going to the largest remainders,
# so that the shares sum to $d$.

# %%
full_m = dt.DataValueEmbedding(proj_dim=128, projection="pca", seed=SEED, pca_samples=model.pca_samples).fit(traj)
per_layer = dt.DataValueEmbedding(proj_dim=128, projection="pca", layerwise=True, seed=SEED,
                                  pca_samples=model.pca_samples).fit(traj)
blocks = [b.stop - b.start for b in per_layer.projection_.blocks]
layer_sizes = [sl.stop - sl.start for _, sl in traj.flat.layers]
caps = [min(k, max(model.pca_samples, 128)) for k in layer_sizes]
rho = {name: dt.metrics.fidelity(e.influence(test).total(), model.exact_)["spearman"]
       for name, e in (("one M", full_m), ("per layer", per_layer))}
print(f"layers with {layer_sizes} parameters, {model.pca_samples} sampled gradients: capped sizes {caps}")
print(f"per-layer dimensions {blocks} (128 · cap / {sum(caps)} = {[round(128 * c / sum(caps), 1) for c in caps]}); "
      f"Spearman one M {rho['one M']:.3f}, per layer {rho['per layer']:.3f}")

# %% tags=["nbval-check-output"]
print("identity: the split is proportional to the capped layer sizes, rounded to sum to d:",
      blocks == allocate_dims(128, caps))
print("per-layer M holds fewer numbers than one d×d M (8.3):", sum(k * k for k in blocks) < 128 ** 2)
print("and loses at most 0.05 Spearman here:", bool(rho["per layer"] > rho["one M"] - 0.05))

# %% [markdown]
# With $L$ equal layers the saving in (8.3) is a factor $L$ in memory and in the recursion's flops; on
# this two-layer model it is modest, and here it cost (almost) no fidelity.
#
# **Exercise A — predict the split.** Before fitting anything: on the same run, with the same
# `pca_samples=model.pca_samples`, what per-layer dimensions would `proj_dim=64, projection="pca",
# layerwise=True` give — one int per layer, in the order of `traj.flat.layers`? Work it out from the
# rule above and the sizes printed by the cell before (mind the rounding), then fit it and look at
# `projection_.blocks`. How many numbers does its $M$ hold, by (8.3)? Write the rule as a function,
# `split_dims(d, caps)`: `d` dimensions shared out over layers in proportion to `caps` (the capped
# sizes), floored, the leftovers to the largest remainders (the graded version also tries it on other
# `d` and `caps`).

# %% [raw]
# # BEGIN QUESTION
# name: l08_layer_split
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def split_dims(d, caps): ... ; then split_64 = a tuple of ints, one per layer
# BEGIN SOLUTION NO PROMPT
def split_dims(d, caps):
    """Shares of d proportional to caps, floored; the leftover dimensions to the largest remainders."""
    raw = [d * c / sum(caps) for c in caps]
    dims = [int(v) for v in raw]
    for j in sorted(range(len(raw)), key=lambda j: dims[j] - raw[j])[:d - sum(dims)]:
        dims[j] += 1
    return tuple(dims)


caps_64 = [min(k, max(model.pca_samples, 64)) for k in layer_sizes]   # a PCA draws at least d points
split_kw = dict(proj_dim=64, projection="pca", layerwise=True, pca_samples=model.pca_samples)
split_fit = dt.DataValueEmbedding(**split_kw).fit(traj)
print("fitted blocks:", [b.stop - b.start for b in split_fit.projection_.blocks],
      "| M holds", sum(k * k for k in split_dims(64, caps_64)), "numbers instead of", 64 * 64)
# END SOLUTION
split_64 = split_dims(64, caps_64)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_layer_split(split_64, traj, 64, model.pca_samples)

# %% [raw]
# # BEGIN TESTS

# %%
def test_split_of_this_run(split_64, traj, model):
    from dve_teach.teach.exercises import lesson08 as ex
    feedback = ex.check_layer_split(split_64, traj, 64, model.pca_samples)
    assert feedback, str(feedback)
test_split_of_this_run(split_64, traj, model)

# %%
# HIDDEN
def test_split_dims_on_other_layers(split_dims):
    import math
    import random
    gen = random.Random(2026)
    cases = [(10, [3, 7]), (64, [100, 100, 100]), (128, [2000, 330]), (7, [5, 5, 5, 5, 5, 5, 5])]
    cases += [(gen.randint(20, 300), [gen.randint(50, 5000) for _ in range(gen.randint(2, 6))]) for _ in range(30)]
    for d, caps in cases:
        raw = [d * c / sum(caps) for c in caps]
        got = [int(v) for v in split_dims(d, list(caps))]
        assert len(got) == len(caps), f"split_dims({d}, {caps}) should give one entry per layer"
        assert sum(got) == d, f"split_dims({d}, {caps}) should share out all {d} dimensions, got {got}"
        assert all(math.floor(r) <= g <= math.floor(r) + 1 for g, r in zip(got, raw)), \
            f"split_dims({d}, {caps}) = {got}: each share is d·cap/Σcaps rounded down, or up by one"
        up = [r - math.floor(r) for g, r in zip(got, raw) if g > math.floor(r)]
        down = [r - math.floor(r) for g, r in zip(got, raw) if g == math.floor(r)]
        assert not up or not down or min(up) >= max(down) - 1e-12, \
            f"split_dims({d}, {caps}) = {got}: the leftover dimensions go to the largest remainders"
test_split_dims_on_other_layers(split_dims)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Influence checkpointing: the recursion in segments (≈ 8 min)
#
# The backward recursion is sequential: step $t$ needs $M$ from every later step. Influence
# checkpointing (paper §4.4, which sketches the idea; the composition below is this library's
# reconstruction, checked as an identity) cuts the $T$ steps at $0 = s_0 < s_1 < \dots < s_K = T$. Each segment $k$
# runs the recursion **with $M = 0$ at its own end** — its embeddings are relative to the checkpoint
# $\theta_{s_{k+1}}$ — and keeps its propagation matrix $\Pi_k = Z_{s_{k+1}-1}\cdots Z_{s_k}$,
# $Z_t = I - \eta_t H_t$. The final embeddings follow by carrying each segment's embeddings across the
# later segments:
#
# $$\mathrm{DVE}(i,t) = \Pi_{K-1}\cdots\Pi_{k+1}\,\mathrm{DVE}_{\text{local}}(i,t)\qquad (t \text{ in segment } k). \tag{8.4}$$
#
# (8.4) is an identity, so the result must equal the sequential one up to rounding; the segments can run
# at the same time in worker processes (`segments=K, workers=W`). The cell fits the unprojected Fisher
# embedding sequentially, in 2 and 4 segments in this process, and in 4 segments on 2 worker
# processes (`start_method="fork"` here: nothing to re-import). It prints the seconds but checks only
# the equality: on a run this small, starting workers can cost more than they save.

# %%
timings, fits = {}, {}
for name, kw in [("sequential", {}), ("2 segments", dict(segments=2)), ("4 segments", dict(segments=4)),
                 ("4 segments, 2 workers", dict(segments=4, workers=2, start_method="fork"))]:
    start = time.perf_counter()
    fits[name] = dt.DataValueEmbedding(**kw).fit(traj)
    timings[name] = time.perf_counter() - start
seq = fits["sequential"].embeddings_
diffs = {name: float((f.embeddings_ - seq).abs().max() / seq.abs().max()) for name, f in fits.items()}
for name in fits:
    print(f"{name:22s} {timings[name]:.3f} s   max |difference| / max |entry| = {diffs[name]:.1e}")

# %% tags=["nbval-check-output"]
print("every segmented fit equals the sequential one (relative difference < 1e-10):",
      all(v < 1e-10 for v in diffs.values()))

# %% [markdown]
# The composition, by hand for two segments: the local embeddings of segment 0 are the embeddings of
# the run stopped at $s_1$ (`traj.prefix(s1)`), and one propagation matrix carries them to $\theta_T$
# (rows are embeddings, so they are multiplied by $\Pi_1^\top$).

# %%
two = fits["2 segments"]
s1 = two.segment_bounds_[1]
local = dt.DataValueEmbedding().fit(traj.prefix(s1)).embeddings_        # relative to θ_{s1}
carried = local @ two.propagations_[1][0].T                             # Π_1 · DVE_local, as rows
rows = int((two.steps_ < s1).sum())
print(f"segment 0 = steps 0..{s1 - 1}: {rows} occurrences, Π_1 is {tuple(two.propagations_[1][0].shape)}")

# %% tags=["nbval-check-output"]
print("local embeddings carried by Π_1 equal the sequential ones:",
      torch.allclose(carried, seq[:rows], atol=1e-10 * float(seq.abs().max()), rtol=0))

# %% [markdown]
# **Exercise B — compose three segments by hand.** `three` below is a fit in 3 segments. Build the
# final-model embeddings of the occurrences in its first segment from the local embeddings of
# `traj.prefix(three.segment_bounds_[1])` and the propagation matrices `three.propagations_[k][0]`.
# Which segments' matrices do you need, and in which order? Write the composition as a function,
# `carry_across(local, propagations)`: `local` the local embeddings (one row per occurrence),
# `propagations` the matrices $[\Pi_{k+1}, \dots, \Pi_{K-1}]$ of the later segments in the order of the
# run (the graded version also tries it on other matrices).

# %%
three = dt.DataValueEmbedding(segments=3).fit(traj)

# %% [raw]
# # BEGIN QUESTION
# name: l08_composed
# points: 2

# %% [raw]
# # BEGIN SOLUTION

# %%
# TODO: def carry_across(local, propagations): ... ; then composed = a Tensor [occurrences in segment 0, P]
# BEGIN SOLUTION NO PROMPT
def carry_across(local, propagations):
    """(8.4) for row vectors: local @ (Π_{K-1} ··· Π_{k+1})ᵀ, later segments on the left."""
    out = local
    for Pi in propagations:          # Π_{k+1} first: each later matrix multiplies from the left
        out = out @ Pi.T
    return out


local_0 = dt.DataValueEmbedding().fit(traj.prefix(three.segment_bounds_[1])).embeddings_   # relative to θ_{s1}
# END SOLUTION
composed = carry_across(local_0, [three.propagations_[1][0], three.propagations_[2][0]])  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
ex.check_composed(composed, three, traj)

# %% [raw]
# # BEGIN TESTS

# %%
def test_composed_of_this_run(composed, three, traj):
    from dve_teach.teach.exercises import lesson08 as ex
    feedback = ex.check_composed(composed, three, traj)
    assert feedback, str(feedback)
test_composed_of_this_run(composed, three, traj)

# %%
# HIDDEN
def test_carry_across_on_other_matrices(carry_across):
    import torch
    gen = torch.Generator().manual_seed(2026)
    for n, P, K in ((1, 2, 1), (5, 3, 2), (40, 17, 4)):
        local = torch.randn(n, P, generator=gen, dtype=torch.float64)
        mats = [torch.eye(P, dtype=torch.float64) + 0.3 * torch.randn(P, P, generator=gen, dtype=torch.float64)
                for _ in range(K)]        # not symmetric, not commuting: order and transpose matter
        truth = local.clone()
        for Pi in mats:                   # θ moves on by Π_1, then Π_2, ...: each later one on the left
            truth = (Pi @ truth.T).T
        got = torch.as_tensor(carry_across(local.clone(), list(mats)), dtype=torch.float64)
        assert tuple(got.shape) == (n, P), f"carry_across should keep one row per occurrence, shape {(n, P)}"
        assert torch.allclose(got, truth, rtol=1e-10, atol=1e-12), \
            "carry_across is not Π_K ··· Π_1 applied to each row for some matrices (order or transpose)"
    local = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    got = torch.as_tensor(carry_across(local.clone(), []), dtype=torch.float64)
    assert torch.allclose(got, local), "with no later segment, carry_across should leave the embeddings as they are"
test_carry_across_on_other_matrices(carry_across)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. What changes on a GPU (≈ 7 min, with the next two parts)
#
# No GPU numbers were measured for this lesson; this paragraph says what the code does, not what it
# achieves. Every estimator runs with `device="cuda"` and `dtype=torch.float32` (`dt.train(...,
# device=..., dtype=...)`; the embedding follows the trajectory). On a GPU the per-step work is a few
# large matrix products ($b\times d$ by $d\times d$), the kind of work GPUs are built for, so the
# $O(T\,b\,d^2)$ recursion should get much faster while the sequential loop over steps stays;
# influence checkpointing is what removes that limit, one segment per device. `python -m dve_teach
# bench --device cuda` runs the benchmark on a GPU.
#
# float32 (the usual GPU precision) halves the memory of $M$ and of stored gradients. What it costs in
# fidelity can be measured here, on the CPU: the same run trained and embedded in float32.

# %%
run32 = dt.train(traj.model_at(0), traj.data, traj.schedule, traj.lrs.tolist(), loss=traj.loss, dtype=torch.float32)
scores64 = ref.scores
scores32 = dt.DataValueEmbedding().fit(run32).influence(test.to(dtype=torch.float32)).total().double()
rho32 = dt.metrics.fidelity(scores32, model.exact_)["spearman"]
rel32 = float((scores32 - scores64).abs().max() / scores64.abs().max())
print(f"float32: Spearman {rho32:.4f} (float64 {ref.spearman:.4f}); largest score difference / largest score = {rel32:.1e}")

# %% tags=["nbval-check-output"]
print("float32 moves the scores by less than 1e-4 (relative) on this run:", rel32 < 1e-4)
print("and the Spearman by less than 0.001:", abs(rho32 - ref.spearman) < 1e-3)

# %% [markdown]
# On this short run float32 rounding is invisible in the ranking. Rounding errors add up over steps,
# so on long runs measure it again (`python -m dve_teach bench` reports it for its own run).
#
# ## These sizes and the paper's
#
# The paper's efficiency experiment (§5.2, Table 1) — **the paper's numbers, not measured here** —
# beside this lesson's run (the right column is computed by the cell below):

# %%
occurrences = len(fits["sequential"].points_)
print(f"this lesson: P = {P}, d = 16..128, {occurrences} (point, step) occurrences in {traj.T} steps, "
      f"unprojected fit {timings['sequential']:.3f} s = {occurrences / timings['sequential']:.0f} occurrences/s, "
      f"one float64 d×d matrix at d = 128: {128 ** 2 * 8 / 2 ** 20:.2f} MiB; "
      f"stored embeddings {occurrences * 128 * 8 / 2 ** 20:.2f} MiB at d = 128, {seq.numel() * 8 / 2 ** 20:.2f} MiB unprojected")

# %% [markdown]
# | | paper, Table 1 (Pythia-410M) | this lesson |
# |---|---|---|
# | model | Pythia-410M, about 4·10⁸ parameters, trained on 1% of the Pile | 64-16-10 MLP, $P = 1210$ |
# | projection | Kronecker (LoGra-style), $\tilde p = 1024$ | random or PCA, $d = 16$–$128$ |
# | parameters per projected dimension | about 400 000 | about 10–75 |
# | hardware | one A100 80 GB | shared CPU cores |
# | storing throughput | DVEmb 667.52 points/s, LoGra 41.6 points/s | printed above (occurrences/s) |
# | peak GPU memory | DVEmb 64.6 GB while storing gradients during training (about training memory), 0.84 GB computing the embeddings after it; LoGra 63.6 GB | — |
# | disk for the stored vectors | 171 GB (LoGra 170 GB) | printed above (MiB) |
#
# The ratio $P/d$ is what separates the two: the paper projects by a factor of about $4\cdot10^5$,
# far beyond anything this lesson can check against an exact replay. What transfers is the
# mechanism — factored per-sample gradients, a projection, one $M$ per layer, segments — and the
# warning of this lesson: at a given $d$, *which* projection you use matters a lot.
#
# One more difference: Pythia-410M is trained with an Adam-family optimizer, while the embeddings
# follow the SGD recursion. The paper applies it as a **proxy** for Adam (§6) and lists a proper
# extension as future work. Everything in this course so far was plain SGD; lesson 09 measures what
# the proxy costs.
#
# ## When one machine is not enough
#
# Libraries built for larger models and several GPUs (names only, for further reading):
# **dattri** and **dattri-llm** (attribution methods side by side; both include data value
# embeddings, without influence checkpointing), **kronfluence** (influence functions with
# Kronecker-factored curvature) and **bergson** (data attribution from stored, projected gradients);
# PyTorch's own **torch.distributed** spreads work over several GPUs or machines. The paper's influence
# checkpointing maps naturally onto
# several devices: one segment each, then one pass to compose.

# %% [markdown]
# ## What you learned
#
# - Per-sample gradients are what the recursion needs and training never forms; for a Linear layer
#   each is an outer product of its input and its output gradient, exactly (8.1, checked above), which
#   gives all of them from one forward and one backward pass.
# - Random projections keep dot products on average, but with an error of size
#   $\lVert u\rVert\lVert g\rVert/\sqrt d$ (8.2) that swamps the many small dot products, so they lose much of
#   the ranking: no random projection here kept 75% of the unprojected Spearman at $d = 128$.
# - Projections fitted to the data (PCA of per-sample gradients) put $d$ where the gradients are:
#   here PCA beat every random projection at every $d$, and with 16 dimensions beat a Gaussian one with
#   128.
# - One $M$ per layer stores $\sum_l d_l^2$ instead of $d^2$ numbers (8.3), with $d$ split in proportion to
#   what each layer can offer; here it cost almost no fidelity.
# - Influence checkpointing splits the recursion into segments with their own $d\times d$ propagation
#   matrices and composes them by (8.4): the same embeddings as the sequential run, up to rounding.
# - float32 halves the memory and, on this short run, left the scores' ranking unchanged; GPU speed
#   was not measured here.

# %% [markdown]
# ## Exercises
#
# 1. **Where to fit the PCA.** `DataValueEmbedding(projection="pca", pca_step=s)` fits the directions
#    at $\theta_s$ instead of $\theta_0$, and `pca_samples` sets how many training points it uses.
#    Try `pca_step=traj.T // 2` and `traj.T`, and 32 vs 256 samples, at $d = 32$: what matters more?
# 2. **Averaging random projections.** Fit the Gaussian embedding at $d = 32$ with 8 seeds and average
#    the scores. Does the average beat one projection with $d = 256$? (Think of the error formula.)
# 3. **Curvature.** Repeat the key figure's `pca` row with `hessian="ggn"` and
#    `hessian="sampled_fisher"` (`DataValueEmbedding(hessian=..., proj_dim=d, projection="pca")`):
#    which keeps most of the GGN's fidelity, and at what cost in seconds?
# 4. **Workers for real.** Train a larger run (`Problem.digits(n_train=1000, hidden=64)`, several epochs)
#    and time `segments=4` with `workers=1` and `workers=2` (`start_method="spawn"` from a script, with
#    `if __name__ == "__main__":`). When do workers start to pay off on your machine?
#
# Worked solutions: in this lesson's source, [`src/08_scaling_up.py`](src/08_scaling_up.py), between the
# lines `# BEGIN SOLUTION` and `# END SOLUTION` (and on lines that end in `# SOLUTION`).

# %%
# Your work on exercises 1-3 (a few seconds of computing); 4 is a script.
# BEGIN SOLUTION NO PROMPT
def open_exercise_solutions():
    """The open exercises 1-3 at the end of the lesson."""
    def spearman(dve):
        return dt.metrics.fidelity(dve.influence(test).total(), model.exact_)["spearman"]

    # 1. Where and on how many points the PCA is fitted (d = 32).
    for step in (0, traj.T // 2, traj.T):
        for samples in (32, model.pca_samples):
            e = dt.DataValueEmbedding(proj_dim=32, projection="pca", pca_step=step, pca_samples=samples,
                                      seed=SEED).fit(traj)
            print(f"1. pca_step {step:3d}, {samples:3d} samples: Spearman {spearman(e):.3f}")

    # 2. 8 Gaussian projections at d = 32, averaged, against one at d = 256 (if P allows).
    avg = sum(dt.DataValueEmbedding(proj_dim=32, seed=SEED + k).fit(traj).influence(test).total()
              for k in range(8)) / 8
    avg_rho = dt.metrics.fidelity(avg, model.exact_)["spearman"]
    big = spearman(dt.DataValueEmbedding(proj_dim=256, seed=SEED).fit(traj))
    print(f"2. mean of 8 Gaussian d=32: {avg_rho:.3f}; one Gaussian d=256: {big:.3f} "
          "(averaging k projections shrinks the noise like one projection of k·d dimensions, roughly)")

    # 3. The GGN and the sampled-target Fisher in the pca-projected space.
    for h in ("fisher", "ggn", "sampled_fisher"):
        t0 = time.perf_counter()
        kw = dict(hessian=h, proj_dim=64, projection="pca", seed=SEED, pca_samples=model.pca_samples)
        e = dt.DataValueEmbedding(**kw).fit(traj)
        print(f"3. {h:15s} pca d=64: Spearman {spearman(e):.3f}, {time.perf_counter() - t0:.2f} s")

    # 4 needs a script run outside the notebook (spawned workers re-import __main__): put the training
    # and `dt.DataValueEmbedding(segments=4, workers=2).fit(traj)` under `if __name__ == "__main__":`
    # in a .py file and time it against workers=1.


open_exercise_solutions()
# END SOLUTION

# %% [markdown]
# ---
# Next: [09 · Beyond SGD](09_beyond_sgd.ipynb) — momentum, Adam and AdamW: what the paper's SGD proxy
# costs, and what an estimate that follows the optimizer gets back.
