"""Lesson 09's models: the same data, order and model trained with SGD, momentum, Adam or AdamW, and
how faithful each estimate of trajectory-specific LOO stays against exact replay; Adam's first
step; the per-step influence curve under AdamW with warm-up. Plain Python (no ipywidgets):
`dve_teach.teach.widgets.OptimizerExplorer` is the thin view over `OptimizerModel`.

The estimates (`compare_methods`), each summed over a point's occurrences and compared with the
exact removal of the point from every step (`dt.exact_loo`) by the mean over test points of the
Spearman correlation (`dt.metrics.fidelity`, paper §5.1):

  - ``"unrolled"``: `dt.unrolled_influence`, the first-order sweep through the optimizer's whole
    state (θ, momentum buffer, Adam's m and v), exact Hessians;
  - ``"DVE recorded"``: `DataValueEmbedding(optimizer="recorded")`, the embedding recursion through
    the same state;
  - ``"DVE frozen v"`` (Adam, AdamW only): `optimizer="frozen_preconditioner"`, v held at its
    recorded values;
  - ``"DVE SGD proxy"``: `optimizer="sgd_proxy"`, the plain-SGD recursion with the run's η_t — what
    the paper does for its AdamW-trained language models (§6);
  - ``"TracIn"``: `dt.tracin`, (η_t/b) ∇m(θ_t)·∇ℓ(θ_t, z_i), which ignores the optimizer.

All embeddings use one curvature (`hessian`, default the GGN of lesson 04), so that only the
handling of the optimizer differs between them.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from . import plots
from ..data.checks import as_int, as_number
from ..data.config import sized
from ..influence.baselines import tracin
from ..influence.embedding import DataValueEmbedding
from ..influence.loo import exact_loo
from ..influence.metrics import fidelity
from ..influence.phases import exact_influence, phase_levels, sample_occurrences
from ..influence.scores import Influence
from ..influence.unroll import unrolled_influence
from ..training import optim
from ..training.linearize import removal_deltas
from ..training.loop import train
from ..training.trajectory import Trajectory
from .explorers import Problem, _threads, order_for
from .phases import make_schedule, mean_test_loss

__all__ = ["OPTIMIZERS", "DEFAULT_LR", "LR_RANGE", "METHODS", "make_rule", "optimizer_problem", "phase_problem",
           "train_with", "compare_methods", "optimizer_runs", "cross_spearman", "spearman_over_seeds", "fidelity_table",
           "step_response", "sign_flips", "first_order_by_step",
           "removal_kicks", "phase_run", "OptimizerModel", "cross_figure", "first_step_figure", "phase_figure"]

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
#: learning rates at which the three rules train the default problem to a similar test loss
DEFAULT_LR = {"sgd": 0.3, "momentum": 0.03, "adam": 0.05, "adamw": 0.05}
LR_RANGE = (1e-3, 1.0)
METHODS = ("unrolled", "DVE recorded", "DVE frozen v", "DVE SGD proxy", "TracIn")
HESSIANS = ("fisher", "ggn", "sampled_fisher")


def _check_optimizer(optimizer) -> str:
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    return optimizer


def _beta(value, name: str) -> float:
    v = as_number(value, name)
    if not (math.isfinite(v) and 0.0 <= v < 1.0):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return v


def _lr(value) -> float:
    v = as_number(value, "lr")
    lo, hi = LR_RANGE
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"lr must be a number in {lo:g}..{hi:g}, got {value!r}")
    return v


def make_rule(optimizer: str, beta1: float = 0.9, beta2: float = 0.999) -> optim.UpdateRule:
    """The `dt.optim` rule: "sgd" = SGD(); "momentum" = SGD(momentum=beta1); "adam" =
    Adam(betas=(beta1, beta2)); "adamw" = AdamW(betas=(beta1, beta2)) with its default λ = 0.01."""
    optimizer = _check_optimizer(optimizer)
    b1, b2 = _beta(beta1, "beta1"), _beta(beta2, "beta2")
    if optimizer == "sgd":
        return optim.SGD()
    if optimizer == "momentum":
        return optim.SGD(momentum=b1)
    return (optim.Adam if optimizer == "adam" else optim.AdamW)(betas=(b1, b2))


def optimizer_problem(seed: int = 0, n_train: Optional[int] = None, n_test: Optional[int] = None,
                      epochs: Optional[int] = None) -> Problem:
    """2-D moons, 60 training points (fast mode 40), 60 test points (fast 40), a 2-16-2 tanh MLP
    (P = 82), batch size 10, 6 epochs (fast 4); data, θ_0 and the order all from `seed`."""
    return Problem.moons(n_train=n_train or sized(60, 40), n_test=n_test or sized(60, 40),
                         epochs=epochs or sized(6, 4), batch_size=10, hidden=16, seed=as_int(seed, "seed", 0))


def phase_problem(seed: int = 0) -> Problem:
    """A longer run for the per-step curves: 100 moons (fast mode 60), 10 epochs (fast 8), b = 10."""
    return Problem.moons(n_train=sized(100, 60), n_test=sized(100, 50), epochs=sized(10, 8), batch_size=10,
                         hidden=16, seed=as_int(seed, "seed", 0))


def train_with(problem: Problem, optimizer: str, lr=None, beta1: float = 0.9, beta2: float = 0.999) -> Trajectory:
    """Train `problem` on its seed's shuffled order with the rule of `make_rule`; lr: a number, a
    `dt.lr` schedule or None (`DEFAULT_LR`). A diverging run is refused with a ValueError."""
    rule = make_rule(optimizer, beta1, beta2)
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    try:
        return train(problem.model, problem.train, order_for(problem, "shuffle", problem.seed), lr,
                     loss=problem.loss, optimizer=rule)
    except FloatingPointError as e:
        raise ValueError(f"{optimizer} diverged at this learning rate ({e}); lower lr") from None


def compare_methods(traj: Trajectory, test, hessian: str = "ggn") -> dict:
    """Every training point removed from every step where it was used: {"exact": Tensor[n, n_test]
    (`dt.exact_loo`), "estimates": {method: Tensor[n, n_test]} (the `METHODS` that apply: no
    "DVE frozen v" unless the run used Adam or AdamW), "spearman": {method: mean over test points of
    the Spearman with exact}}."""
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    n = traj.schedule.n
    exact = exact_loo(traj, test, list(range(n)), progress=False)
    modes = {"DVE recorded": "recorded", "DVE SGD proxy": "sgd_proxy"}
    if traj.optimizer.name in ("adam", "adamw"):
        modes["DVE frozen v"] = "frozen_preconditioner"
    est = {"unrolled": unrolled_influence(traj, test).total()}
    for name, mode in modes.items():
        est[name] = DataValueEmbedding(hessian=hessian, optimizer=mode).fit(traj).influence(test).total()
    est["TracIn"] = tracin(traj, test).total()
    est = {m: est[m] for m in METHODS if m in est}
    return dict(exact=exact, estimates=est, spearman={m: float(fidelity(v, exact)["spearman"]) for m, v in est.items()})


@_threads
def optimizer_runs(seeds: Sequence[int], settings: dict, hessian: str = "ggn", problem=optimizer_problem) -> list:
    """For each seed, each setting {label: dict(optimizer=..., lr=..., beta1=..., beta2=...)} trained
    on `problem(seed)` (the same data, θ_0 and order for every label) and `compare_methods`:
    a list (one per seed) of {label: {"traj", "test_loss", "exact", "estimates", "spearman"}}."""
    out = []
    for seed in seeds:
        p = problem(seed)
        row = {}
        for label, kw in settings.items():
            traj = train_with(p, **kw)
            row[label] = dict(traj=traj, test_loss=float(traj.test_losses(p.test).mean()),
                              **compare_methods(traj, p.test, hessian))
        out.append(row)
    return out


def cross_spearman(run: dict, a: str, b: str) -> float:
    """How alike two rules' exact TSLOO rank the training points: the mean over test points of the
    Spearman correlation between ``run[a]["exact"]`` and ``run[b]["exact"]`` (`dt.metrics.fidelity`)."""
    return float(fidelity(run[a]["exact"], run[b]["exact"])["spearman"])


def spearman_over_seeds(runs: list) -> dict:
    """{label: {method: np.ndarray[n_seeds]}}: each method's Spearman with exact LOO in every seed of
    `optimizer_runs` (a method that does not apply to a label's rule is left out)."""
    out: dict = {}
    for row in runs:
        for label, r in row.items():
            for m, v in r["spearman"].items():
                out.setdefault(label, {}).setdefault(m, []).append(v)
    return {label: {m: np.asarray(v) for m, v in d.items()} for label, d in out.items()}


def fidelity_table(stats: dict) -> str:
    """`spearman_over_seeds` as text: one row per method, per label the median [lowest] over seeds."""
    labels = list(stats)
    rows = [f"{'Spearman with exact LOO':<16}" + "".join(f"{lb:>18}" for lb in labels),
            f"{'median [lowest]':<16}" + " " * 18 * len(labels)]
    for m in METHODS:
        cells = [f"{np.median(stats[lb][m]):.2f} [{stats[lb][m].min():.2f}]" if m in stats[lb] else "n/a"
                 for lb in labels]
        rows.append(f"{m:<16}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(rows)


# ---- Adam's first step -----------------------------------------------------------------------------
def _batch_grads(traj: Trajectory, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = traj.state(t)
    _, X, y = traj.batch(t)
    return s, traj.objective.per_sample_grads(traj.optimizer.theta(s), X, y).detach(), X


def step_response(traj: Trajectory, t: int = 0, fractions=None) -> torch.Tensor:
    """θ'_{t+1} − θ_{t+1} when member i of batch t keeps only the weight 1 − f, for every member i
    and removed fraction f (0 = the recorded step, 1 = the point removed): Tensor[m, F, P].
    The rule's own step on the batch gradient (Σ_j w_j g_j)/b (nominal b), s_t shared."""
    t = as_int(t, "t", 0)
    if t >= traj.T:
        raise IndexError(f"step {t} is out of range: the run has {traj.T} steps")
    f = torch.linspace(0, 1, 101, dtype=traj.dtype) if fractions is None else \
        torch.as_tensor(fractions, dtype=traj.dtype).reshape(-1)
    s, G, _ = _batch_grads(traj, t)
    rule, b, lr, P = traj.optimizer, traj.batch_size, float(traj.lrs[t]), traj.flat.P
    S = G.sum(0)
    g = (S[None, None] - f[None, :, None] * G[:, None, :]) / b                        # [m, F, P]
    base = rule.update(s, S / b, lr, t)[:P]
    return rule.update(s.expand(*g.shape[:2], -1), g, lr, t)[..., :P] - base


def sign_flips(traj: Trajectory, t: int = 0) -> torch.Tensor:
    """Bool [m, P]: the coordinates where the batch gradient of step t changes sign when member i
    is removed (zero-weight: g − g_i/b), i.e. where Adam's first step, ≈ −η sign(g), flips.
    The plain batch gradient: meant for rules without coupled weight decay (SGD, Adam with λ = 0, AdamW)."""
    _, G, _ = _batch_grads(traj, as_int(t, "t", 0))
    S = G.sum(0)
    return torch.sign(S - G) != torch.sign(S)[None]


def first_order_by_step(problem: Problem, traj: Trajectory) -> dict:
    """Every single occurrence removed, on the mean test loss: {"exact", "estimate" (unrolled),
    "steps": Tensor[n_occ]; "rel_error": Tensor[T], the median over each batch of
    |estimate − exact| / |exact|; "size": Tensor[T], the median |exact| of each batch}."""
    pts, sts = traj.schedule.occurrence_pairs()
    measure = mean_test_loss(problem)
    one = problem.test[[0]]                                 # the measure reads the whole test set
    ex = exact_loo(traj, one, pts, sts, measure=measure, progress=False)[:, 0]
    est = unrolled_influence(traj, one, measure=measure).per_occurrence[:, 0]
    steps = torch.as_tensor(sts)
    rel = (est - ex).abs() / ex.abs()
    by = lambda v: torch.stack([v[steps == t].median() for t in range(traj.T)])  # noqa: E731
    return dict(exact=ex, estimate=est, steps=steps, rel_error=by(rel), size=by(ex.abs()))


def removal_kicks(traj: Trajectory) -> Influence:
    """‖θ'_{t+1} − θ_{t+1}‖ of every occurrence: the exact first step of each removal (zero-weight,
    `training.linearize.removal_deltas`, θ part), as a one-column `Influence` (rows in
    ``schedule.occurrence_pairs()`` order); ``.by_step("mean", per_lr=True, lrs=traj.lrs,
    test="mean")`` is the mean kick of each step per unit of η_t."""
    rows = []
    rule, b, P = traj.optimizer, traj.batch_size, traj.flat.P
    with torch.no_grad():
        for t, s in traj.iter_states():
            _, X, y = traj.batch(t)
            G = traj.objective.per_sample_grads(rule.theta(s), X, y)
            rows.append(removal_deltas(rule, s, G, float(traj.lrs[t]), t, b)[:, :P].norm(dim=1))
    pts, sts = traj.schedule.occurrence_pairs()
    return Influence(torch.cat(rows)[:, None], pts, sts, traj.schedule.n, method="removal_kick")


@_threads
def phase_run(problem: Problem, optimizer: str = "adamw", peak: Optional[float] = None, warmup: float = 0.1,
              exact_steps: int = 12, per_step: int = 6, seed: int = 0) -> dict:
    """Lesson 06's per-step curve for another rule: train with `dt.lr.warmup_cosine` (peak, warm-up
    over the first `warmup` of the steps), then c_t = mean over batch t of |unrolled influence on the
    mean test loss| / η_t. Returns {"traj", "curve" Tensor[T], "levels" (`phase_levels`),
    "exact_steps", "exact_curve", "estimate_at_samples" (the same view of exact replays and of the
    estimate at `per_step` sampled members of `exact_steps` evenly spaced steps), "kicks" Tensor[T]
    (mean ‖θ'_{t+1} − θ_{t+1}‖ / η_t, `removal_kicks`)}."""
    peak = DEFAULT_LR[optimizer] if peak is None else peak
    order = order_for(problem, "shuffle", problem.seed)
    T = len(order)
    traj = train_with(problem, optimizer, make_schedule("warmup_cosine", peak, T, warmup))
    measure, one = mean_test_loss(problem), problem.test[[0]]
    view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
    est = unrolled_influence(traj, one, measure=measure)
    curve = est.by_step(**view)
    steps = np.unique(np.linspace(0, T - 1, min(exact_steps, T)).round().astype(int))
    pts, sts = sample_occurrences(order, steps.tolist(), per_step, seed=seed)
    ex = exact_influence(traj, one, pts, sts, measure=measure, progress=False)
    at = Influence(est.at(pts, sts), pts, sts, est.n_train)
    kicks = removal_kicks(traj).by_step("mean", per_lr=True, lrs=traj.lrs, test="mean")
    return dict(traj=traj, curve=curve, levels=phase_levels(curve, min(10, T)), exact_steps=steps,
                exact_curve=ex.by_step(**view)[steps], estimate_at_samples=at.by_step(**view)[steps], kicks=kicks)


# ---- the widget's model ----------------------------------------------------------------------------
class OptimizerModel:
    """Settings: ``optimizer`` (one of `OPTIMIZERS`), ``lr`` (None = `DEFAULT_LR` of the optimizer),
    ``beta1`` (Adam's β₁, or the momentum μ of "momentum"), ``beta2`` (Adam's β₂). ``update()``
    trains `problem` (default `optimizer_problem`) with them and compares every estimate with exact
    replay (`compare_methods`); results are cached by all four settings (and `hessian`).
    ``summary()``, ``figure()``."""

    def __init__(self, problem: Optional[Problem] = None, optimizer: str = "sgd", lr: Optional[float] = None,
                 beta1: float = 0.9, beta2: float = 0.999, hessian: str = "ggn"):
        if hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
        self.problem = problem or optimizer_problem()
        self.optimizer, self.lr, self.beta1, self.beta2, self.hessian = optimizer, lr, beta1, beta2, hessian
        self._cache: dict = {}
        self._now: Optional[tuple] = None      # the settings of the last update, and of the one before
        self._before: Optional[tuple] = None
        self.settings()

    def settings(self) -> tuple:
        """(optimizer, lr, beta1, beta2), checked: they may be set directly, as the widget does."""
        opt = _check_optimizer(self.optimizer)
        lr = _lr(DEFAULT_LR[opt] if self.lr is None else self.lr)
        return opt, round(lr, 12), round(_beta(self.beta1, "beta1"), 12), round(_beta(self.beta2, "beta2"), 12)

    @_threads
    def update(self) -> dict:
        """{"traj", "test_loss", "exact", "estimates", "spearman"} (`compare_methods`) for the current
        settings (cached)."""
        key = self.settings()
        if key not in self._cache:
            opt, lr, b1, b2 = key
            traj = train_with(self.problem, opt, lr, b1, b2)
            self._cache[key] = dict(traj=traj, test_loss=float(traj.test_losses(self.problem.test).mean()),
                                    **compare_methods(traj, self.problem.test, self.hessian))
        if key != self._now:
            self._before, self._now = self._now, key
        return self._cache[key]

    def describe(self, key: Optional[tuple] = None) -> str:
        opt, lr, b1, b2 = key or self.settings()
        extra = {"sgd": "", "momentum": f", μ {b1:g}"}.get(opt, f", β₁ {b1:g}, β₂ {b2:g}")
        return f"{opt}, lr {lr:g}{extra}"

    def summary(self) -> str:
        r = self.update()
        rho = " · ".join(f"{m} {v:.2f}" for m, v in r["spearman"].items())
        return (f"{self.describe()} ({r['traj'].T} steps, test loss {r['test_loss']:.3f}). "
                f"Spearman with exact LOO: {rho}")

    def figure(self):
        """Left: each method's Spearman with exact LOO (bars; the previous setting as grey ticks).
        Right: the rank of every training point by exact LOO (mean test loss) against its rank by the
        optimizer-aware embedding and by the SGD proxy."""
        r = self.update()
        prev = self._cache.get(self._before) if self._before is not None else None
        with plots.style():
            fig, ax = plots.new_figure(2, figsize=(9, 3.4), width_ratios=[1.3, 1])
            fig.subplots_adjust(left=0.14, top=0.84)
            a = ax[0, 0]
            y = np.arange(len(METHODS))[::-1]
            vals = [r["spearman"].get(m, np.nan) for m in METHODS]
            a.barh(y, np.nan_to_num(vals, nan=0.0), color=[plots.COLORS[k] for k in range(len(METHODS))], height=0.6)
            for yy, v, m in zip(y, vals, METHODS):
                a.text(0.02 if not v > 0.15 else v - 0.02, yy, "n/a (not Adam)" if np.isnan(v) else f"{v:.2f}",
                       va="center", ha="left" if not v > 0.15 else "right", fontsize=7,
                       color="0.2" if not v > 0.15 else "white")
            title = self.describe()
            if prev is not None:
                pv = [prev["spearman"].get(m, np.nan) for m in METHODS]
                a.scatter(pv, y, marker="|", s=300, color="0.3", zorder=3)
                title += f"\n(grey ticks: {self.describe(self._before)})"
            a.set(yticks=y, yticklabels=METHODS, xlim=(min(0.0, np.nanmin(vals + [0.0]) - 0.05), 1.0),
                  xlabel="Spearman with exact LOO (mean over test points)")
            a.set_title(title, loc="left")
            b = ax[0, 1]
            rank = lambda v: np.argsort(np.argsort(v.mean(1).numpy()))  # noqa: E731
            ex = rank(r["exact"])
            for k, m in ((1, "DVE recorded"), (3, "DVE SGD proxy")):
                b.scatter(ex, rank(r["estimates"][m]), s=14, alpha=0.75, color=plots.COLORS[k], label=m,
                          marker=plots.MARKERS[k], linewidths=0)
            n = len(ex)
            b.plot([0, n - 1], [0, n - 1], color="0.5", lw=0.8, ls="--")
            b.set(xlabel="rank by exact LOO (mean test loss)", ylabel="rank by the estimate",
                  title="every training point, ranked")
            b.legend(loc="upper left", fontsize=7)
        return fig


# ---- figures ---------------------------------------------------------------------------------------
def cross_figure(run: dict, labels: Sequence[str]):
    """The exact TSLOO of every training point (every occurrence removed; the mean over test points,
    i.e. on the mean test loss) under the first label's rule (x) against each other label's (y), one
    panel each, titled with `cross_spearman`; `run` is one seed of `optimizer_runs`."""
    base = run[labels[0]]["exact"].mean(1).numpy()
    with plots.style():
        fig, ax = plots.new_figure(len(labels) - 1, figsize=(9, 3.2))
        for k, other in enumerate(labels[1:]):
            a, v = ax[0, k], run[other]["exact"].mean(1).numpy()
            a.scatter(base, v, s=14, alpha=0.8, color=plots.COLORS[k + 1], marker=plots.MARKERS[k + 1], linewidths=0)
            a.axhline(0, color="0.7", lw=0.5)
            a.axvline(0, color="0.7", lw=0.5)
            a.set(xlabel=f"exact TSLOO under {labels[0]}", ylabel=f"exact TSLOO under {other}",
                  title=f"{labels[0]} vs {other}: Spearman {cross_spearman(run, labels[0], other):.2f} (this seed)")
    return fig


def first_step_figure(response_adam: torch.Tensor, response_sgd: torch.Tensor, lr_adam: float, lr_sgd: float,
                      by_step: dict):
    """Left: ‖θ'_1 − θ_1‖₁ / 2η (η of the run's first step) as each member of the first batch is removed
    gradually (the fraction f of its weight; `step_response` [m, F, P]): Adam in colour, SGD in grey.
    Under Adam each jump is one coordinate whose step flips from −η to +η (or back); the Adam curves are
    shifted apart by a few hundredths so that equal ones stay visible. Right: the median
    relative error of the unrolled estimate per step ({label: `first_order_by_step` result})."""
    with plots.style():
        fig, ax = plots.new_figure(2, figsize=(9, 3.3))
        a = ax[0, 0]
        curves = ((response_sgd, lr_sgd, "0.45", "SGD"), (response_adam, lr_adam, plots.COLORS[3], "Adam"))
        for resp, lr, colour, name in curves:
            f = np.linspace(0, 1, resp.shape[1])
            for i, row in enumerate((resp.abs().sum(-1) / (2 * lr)).numpy()):
                a.plot(f, row + 0.04 * (i - resp.shape[0] / 2) * (name == "Adam"), color=colour, lw=1.1, alpha=0.8,
                       label=name if i == 0 else None)
        a.set(xlabel="fraction f of one point's weight removed at step 0", ylabel="‖θ′₁ − θ₁‖₁ / 2η",
              title="the first step as one point of the batch is removed")
        a.legend(loc="upper left")
        b = ax[0, 1]
        for k, (name, r) in enumerate(by_step.items()):
            b.plot(np.arange(len(r["rel_error"])), r["rel_error"].numpy(), "o-", ms=3, lw=1,
                   color=["0.45", plots.COLORS[3]][k % 2], label=name)
        b.set(yscale="log", xlabel="step t of the removal", ylabel="median |unrolled − exact| / |exact|",
              title="first order against exact replay, per step")
        b.legend(loc="upper right")
    return fig


def phase_figure(runs: dict):
    """Left: η_t / its peak for each run. Right: c_t of the unrolled estimate (thin: every step; thick:
    moving average over ~T/20 steps), exact replays of the sampled points at the sampled steps
    (diamonds) and the unrolled estimate of the same points (hollow circles), log y;
    runs = {label: `phase_run` result}."""
    with plots.style():
        fig, ax = plots.new_figure(2, figsize=(9, 3.8), width_ratios=[1, 2.2])
        fig.subplots_adjust(bottom=0.28)
        for j, (label, r) in enumerate(runs.items()):
            T, colour = r["traj"].T, plots.COLORS[[3, 0, 2][j % 3]]
            ax[0, 0].plot(np.arange(T), r["traj"].lrs.numpy() / r["traj"].lrs.max().item(), color=colour, label=label)
            c = r["curve"].double().numpy()
            k = max(1, T // 20)
            smooth = np.convolve(c, np.ones(k) / k, mode="valid")
            a = ax[0, 1]
            a.plot(np.arange(T), c, color=colour, lw=0.5, alpha=0.45)
            a.plot(np.arange(len(smooth)) + (k - 1) / 2, smooth, color=colour, lw=2,
                   label=f"{label}: unrolled (thick: {k}-step average)")
            a.scatter(r["exact_steps"], r["exact_curve"].numpy(), marker="D", s=26, color=colour, edgecolor="k",
                      zorder=3, label=f"{label}: exact replay (sampled points)")
            a.scatter(r["exact_steps"], r["estimate_at_samples"].numpy(), marker="o", s=46, facecolor="none",
                      edgecolor=colour, lw=1, zorder=3, label=f"{label}: unrolled at the same points")
        ax[0, 0].set(xlabel="step t", ylabel="η_t / peak", title="warm-up + cosine (every run)", ylim=(0, 1.05))
        ax[0, 1].set(yscale="log", xlabel="step t (when the batch was used)", ylabel="mean |influence| / η_t",
                     title="per-step influence on the mean test loss")
        handles, names = ax[0, 1].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 0.0), fontsize=6.5, ncol=3, frameon=False)
    return fig
