"""The demo's computation: train a small model, compute exact trajectory-specific LOO for a seeded
draw of training points (every occurrence removed), run every estimator, and compare them.

`run_demo` returns a `DemoResult` — the fidelity table as data (one row per method: Spearman,
Pearson, sign agreement, seconds) plus the raw estimates for plots. `python -m dve_teach demo`
prints it; the lessons and the benchmark reuse `make_problem`, `choose_points` and `evaluate`.

`--optimizer` trains with SGD with momentum, Adam or AdamW instead of plain SGD (`OPTIMIZERS`); the
table then holds the estimators that make sense for that run (`methods_for`).

Fidelity is measured per test point (correlation across the chosen training points) and averaged
over test points, as in the paper's §5.1 protocol (all-epoch removal: an estimator's per-occurrence
scores are summed over each point's occurrences, ``Influence.total()``).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..data.checks import as_device, as_number
from ..data.config import sized
from ..data.container import Data, Split

__all__ = ["Problem", "DemoResult", "METHODS", "OPTIMIZER_METHODS", "OPTIMIZERS", "RECIPES", "methods_for",
           "make_rule", "make_problem", "choose_points", "estimators", "evaluate", "run_demo", "timed",
           "plot_demo", "resolve_device"]

#: Every estimator the demo compares on a plain-SGD run, in table order.
METHODS = ("sgd_influence", "dve_fisher", "dve_ggn", "dve_sampled_fisher", "dve_fisher_layerwise", "tracin",
           "grad_dot", "influence_function")

#: The estimators on a run with an optimizer state (momentum, Adam, AdamW), in table order:
#: "unrolled" is the exact first-order reverse sweep through the whole state (`unrolled_influence`);
#: dve_* use the recorded rule (``optimizer="recorded"``), *_sgd_proxy the paper's plain-SGD recursion
#: with the run's η_t, *_frozen (Adam and AdamW only) hold Adam's v at its recorded values.
OPTIMIZER_METHODS = ("unrolled", "dve_fisher", "dve_ggn", "dve_sampled_fisher", "dve_fisher_layerwise",
                     "dve_fisher_sgd_proxy", "dve_ggn_sgd_proxy", "dve_fisher_frozen", "dve_ggn_frozen",
                     "tracin", "grad_dot", "influence_function")

#: The demo's update rules (`--optimizer`): name -> (label, `dt.optim` class, its keyword arguments).
OPTIMIZERS = {
    "sgd": ("SGD", "SGD", {}),
    "momentum": ("SGD momentum 0.9", "SGD", {"momentum": 0.9}),
    "adam": ("Adam", "Adam", {}),
    "adamw": ("AdamW", "AdamW", {}),
}

#: The training recipe of each demo problem (the core-library issue fixes the digits one). ``lr`` is
#: the plain-SGD rate; ``lrs`` the rate of each rule in `OPTIMIZERS` (moons scaled like digits).
RECIPES = {
    "digits": dict(sizes=(64, 32, 10), lr=0.05, batch_size=32,
                   lrs={"sgd": 0.05, "momentum": 0.01, "adam": 0.003, "adamw": 0.003}),
    "moons": dict(sizes=(2, 16, 2), lr=0.2, batch_size=16,
                  lrs={"sgd": 0.2, "momentum": 0.04, "adam": 0.012, "adamw": 0.012}),
}


def make_rule(optimizer: str = "sgd"):
    """The `dt.optim` rule of a name in `OPTIMIZERS` ("sgd", "momentum", "adam", "adamw")."""
    from ..training import optim
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: choose one of {list(OPTIMIZERS)}")
    _, cls, kw = OPTIMIZERS[optimizer]
    return getattr(optim, cls)(**kw)


def methods_for(rule) -> tuple[str, ...]:
    """The estimator names that make sense for a run of `rule` (a `dt.optim` rule, e.g.
    ``traj.optimizer``): `METHODS` for plain SGD, else `OPTIMIZER_METHODS` (without the frozen
    preconditioner rows unless the rule is Adam or AdamW)."""
    if rule is None or rule.plain_sgd:
        return METHODS
    if rule.name in ("adam", "adamw"):
        return OPTIMIZER_METHODS
    return tuple(m for m in OPTIMIZER_METHODS if not m.endswith("_frozen"))


@dataclass
class Problem:
    """A trained demo problem: the recorded run `traj` and its data `split` (on `traj.device`)."""

    name: str
    traj: "object"  # dt.Trajectory (annotated loosely to keep this module import-light)
    split: Split
    lr: float
    batch_size: int
    epochs: int
    seed: int
    train_seconds: float
    optimizer: str = "sgd"

    def train_again(self):
        """Re-run the same training from θ_0 (for timing); returns the new Trajectory."""
        from ..training.loop import train
        t = self.traj
        return train(t.model_at(0), t.data, t.schedule, self.lr, optimizer=t.optimizer, device=t.device)


def resolve_device(device: Optional[str]) -> torch.device:
    """'cpu', 'cuda' (or None = cpu) as a torch.device (`data.checks.as_device`), the error naming
    the command line's option when CUDA is absent."""
    try:
        return as_device(device or "cpu")
    except RuntimeError:
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device "
                           f"(torch {torch.__version__}); use --device cpu") from None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device = torch.device("cpu")) -> tuple[object, float]:
    """(fn(), wall-clock seconds), synchronising CUDA around the call."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def make_problem(dataset: str = "digits", *, epochs: int = 3, seed: int = 0, device: str = "cpu",
                 n_train: Optional[int] = None, n_test: Optional[int] = None,
                 sizes: Optional[Sequence[int]] = None, optimizer: str = "sgd",
                 lr: Optional[float] = None) -> Problem:
    """Train the demo model and record its trajectory.

    digits: MLP 64-32-10 tanh, lr 0.05, b 32, 1000 train / 200 test (fast mode: 300 / 50).
    moons:  MLP 2-16-2 tanh, lr 0.2, b 16, 200 train / 100 test (fast mode: 80 / 30).
    Shuffled order from `seed` (also the data split and the initial weights). `sizes` replaces
    the MLP's layer widths (input and output widths must match the data). `optimizer`: a name in
    `OPTIMIZERS` — "sgd" (plain SGD), "momentum" (``dt.optim.SGD(momentum=0.9)``), "adam" or
    "adamw" (torch's defaults) — trained with the recipe's rate for it (digits: 0.05, 0.01, 0.003,
    0.003; moons: 0.2, 0.04, 0.012, 0.012) unless `lr` is given.
    """
    from ..data import datasets, models
    from ..training.schedule import Schedule
    from ..training.loop import train

    if dataset not in RECIPES:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {sorted(RECIPES)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    rule = make_rule(optimizer)
    dev = resolve_device(device)
    recipe = RECIPES[dataset]
    lr = recipe["lrs"][optimizer] if lr is None else as_number(lr, "lr")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number (or None for the recipe's), got {lr!r}")
    if dataset == "digits":
        split = datasets.digits(n_train=n_train or sized(1000, 300), n_test=n_test or sized(200, 50), seed=seed)
    else:
        split = datasets.moons(n_train=n_train or sized(200, 80), n_test=n_test or sized(100, 30), seed=seed)
    model = models.mlp(tuple(sizes) if sizes else recipe["sizes"], "tanh", seed=seed)
    schedule = Schedule.shuffled(len(split.train), recipe["batch_size"], epochs=epochs, seed=seed)
    traj, seconds = timed(lambda: train(model, split.train, schedule, lr, optimizer=rule, device=dev), dev)
    split = Split(split.train.to(dev), split.test.to(dev), split.name)
    return Problem(dataset, traj, split, float(lr), recipe["batch_size"], epochs, seed, seconds, optimizer)


def choose_points(traj, k: int, seed: int = 0) -> list[int]:
    """A seeded draw of `k` distinct training points that occur in the run, sorted."""
    pts, _ = traj.schedule.occurrence_pairs()
    seen = np.unique(np.asarray(pts, dtype=np.int64))
    if k < 2:
        raise ValueError(f"choose at least 2 points to compute a correlation (got {k})")
    if k > len(seen):
        raise ValueError(f"{k} points were asked for but only {len(seen)} training points occur in "
                         f"the run: use --points {len(seen)} or fewer")
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(seen, size=k, replace=False))


def estimators(proj_dim: Optional[int] = None) -> dict[str, Callable]:
    """name -> f(traj, test) -> Tensor[n_train, n_test] (all-occurrence first-order scores), for every
    name in `METHODS` and `OPTIMIZER_METHODS`.

    Each estimator is imported when it runs, so `python -m dve_teach check` (and the other
    methods) work even if one module is missing."""
    def sgd_influence(traj, test):
        from ..influence.unroll import sgd_influence
        return sgd_influence(traj, test).total()

    def unrolled(traj, test):
        from ..influence.unroll import unrolled_influence
        return unrolled_influence(traj, test).total()

    def dve(**kw):
        def fit_and_score(traj, test):
            from ..influence.embedding import DataValueEmbedding
            return DataValueEmbedding(proj_dim=proj_dim, **kw).fit(traj).influence(test).total()
        return fit_and_score

    def baseline(name: str, total: bool = True, **kw):
        def score(traj, test):
            from ..influence import baselines
            out = getattr(baselines, name)(traj, test, **kw)
            return out.total() if total else out
        return score

    return {
        "sgd_influence": sgd_influence,
        "dve_fisher": dve(hessian="fisher"),
        "dve_ggn": dve(hessian="ggn"),
        "dve_sampled_fisher": dve(hessian="sampled_fisher"),
        "dve_fisher_layerwise": dve(hessian="fisher", layerwise=True),
        "unrolled": unrolled,
        "dve_fisher_sgd_proxy": dve(hessian="fisher", optimizer="sgd_proxy"),
        "dve_ggn_sgd_proxy": dve(hessian="ggn", optimizer="sgd_proxy"),
        "dve_fisher_frozen": dve(hessian="fisher", optimizer="frozen_preconditioner"),
        "dve_ggn_frozen": dve(hessian="ggn", optimizer="frozen_preconditioner"),
        "tracin": baseline("tracin"),
        "grad_dot": baseline("grad_dot"),
        # the lessons' damping rule (2|λ_min| when H has a negative eigenvalue): a fixed small damping
        # on an indefinite H gives a meaningless number, and the demo has no option to raise it
        "influence_function": baseline("influence_function", total=False, damping="auto"),
    }


@dataclass
class DemoResult:
    """The demo's table as data.

    rows: one dict per method, in `methods_for(run's rule)` order, with keys method, spearman, pearson,
    sign_agreement, seconds (and error, when an estimator failed); info: the set-up
    (dataset, sizes, lr, ...); truth: exact LOO, array [n_points, n_test]; estimates: method ->
    array [n_points, n_test] (same rows as truth).
    """

    info: dict
    exact_loo_seconds: float
    rows: list[dict]
    truth: np.ndarray = field(repr=False)
    estimates: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when every estimator ran."""
        return all("error" not in r for r in self.rows)

    def to_dict(self) -> dict:
        """JSON-ready: NaN becomes None (strict JSON has no NaN)."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v
        methods = {r["method"]: {k: clean(v) for k, v in r.items() if k != "method"} for r in self.rows}
        return {**self.info, "exact_loo": {"seconds": self.exact_loo_seconds},
                "exact_loo_seconds": self.exact_loo_seconds, "methods": methods}

    def format_table(self) -> str:
        """The fixed-width table the CLI prints."""
        i = self.info
        rule = OPTIMIZERS.get(i.get("optimizer", "sgd"), ("SGD",))[0]
        head = (f"{i['dataset']}: {i['n_train']} train / {i['n_test']} test, {i['steps']} {rule} steps "
                f"(b={i['batch_size']}, lr={i['lr']}, {i['epochs']} epochs, device {i['device']}); "
                f"final test loss {i['test_loss']:.4f}, accuracy {i['test_accuracy']:.3f}\n"
                f"exact LOO (every occurrence removed) for {i['n_points']} points; "
                f"fidelity = mean over test points\n")
        lines = [f"{'method':<22}{'spearman':>10}{'pearson':>10}{'sign agr.':>11}{'seconds':>10}",
                 "-" * 63,
                 f"{'exact LOO (truth)':<22}{'':>10}{'':>10}{'':>11}{self.exact_loo_seconds:>10.2f}"]
        fmt = lambda v: f"{v:>10.3f}" if isinstance(v, float) and math.isfinite(v) else f"{'nan':>10}"  # noqa: E731
        for r in self.rows:
            if "error" in r:
                lines.append(f"{r['method']:<22}  failed: {r['error']}")
                continue
            lines.append(f"{r['method']:<22}{fmt(r['spearman'])}{fmt(r['pearson'])}"
                         f"{r['sign_agreement']:>11.3f}{r['seconds']:>10.2f}")
        return head + "\n".join(lines)


def evaluate(traj, test: Data, points: Sequence[int], *, truth: Optional[torch.Tensor] = None,
             methods: Optional[Sequence[str]] = None, exact_loo_seconds: float = float("nan"),
             proj_dim: Optional[int] = None, warmup=None, progress=None) -> tuple[list[dict], dict]:
    """Fidelity and seconds of each estimator against exact LOO on `points` (all occurrences).

    truth: exact LOO, Tensor[len(points), n_test], computed here when None.
    methods: names from `estimators` (None: `methods_for(traj.optimizer)`).
    Returns (rows, estimates) — see `DemoResult`. An estimator that raises gets an ``error`` row
    instead of numbers, so one broken method does not hide the others.
    warmup: a (short) trajectory on which each estimator runs once untimed first, e.g.
    ``traj.prefix(2)`` (the first torch.func call of each kind is slow); None: no warm-up.
    progress: a `dve_teach.cli.progress.Steps` whose ``step(name)`` wraps each estimator (None: silent).
    """
    dev = traj.device
    points = [int(p) for p in points]
    if truth is None:
        from ..influence.loo import exact_loo
        truth, exact_loo_seconds = timed(lambda: exact_loo(traj, test, points), dev)
    truth_np = truth.detach().double().cpu()
    fns = estimators(proj_dim)
    if methods is None:
        methods = methods_for(traj.optimizer)
    unknown = [m for m in methods if m not in fns]
    if unknown:
        raise ValueError(f"unknown methods {unknown}: choose from {list(fns)}")
    rows, estimates = [], {}
    idx = torch.as_tensor(points, dtype=torch.int64)
    for name in methods:
        with (progress.step(name) if progress is not None else contextlib.nullcontext()):
            rows.append(_evaluate_one(name, fns[name], traj, test, idx, truth_np, warmup, estimates))
    return rows, {"truth": truth_np.numpy(), "exact_loo_seconds": exact_loo_seconds, **estimates}


def _evaluate_one(name: str, fn: Callable, traj, test: Data, idx: torch.Tensor, truth_np: torch.Tensor,
                  warmup, estimates: dict) -> dict:
    """One estimator's row of `evaluate` (its estimate goes into `estimates`); an ``error`` row if it raises."""
    from ..influence.metrics import fidelity
    dev = traj.device
    try:
        if warmup is not None:
            fn(warmup, test)
        est, sec = timed(lambda: fn(traj, test), dev)
        est = est.detach().double().cpu()[idx]
        fid = {k: float(v) for k, v in fidelity(est, truth_np).items()}
        estimates[name] = est.numpy()
        return {"method": name, **fid, "seconds": sec}
    except Exception as e:  # reported in the table; the CLI exits non-zero
        return {"method": name, "spearman": float("nan"), "pearson": float("nan"),
                "sign_agreement": float("nan"), "seconds": float("nan"), "error": f"{type(e).__name__}: {e}"}


def run_demo(dataset: str = "digits", points: Optional[int] = None, device: str = "cpu",
             epochs: int = 3, seed: int = 0, optimizer: str = "sgd", progress: bool = False) -> DemoResult:
    """Train with `optimizer` (a name in `OPTIMIZERS`), exact LOO for `points` seeded training points
    (default 60; fast mode 12), every estimator of `methods_for` the run, one table. See the module
    docstring. `progress`: a bar on stderr naming each step as it runs (`progress.Steps`)."""
    from ..influence.loo import exact_loo
    from ..training.optim import SGD
    from .progress import Steps

    k = points if points is not None else sized(60, 12)
    methods = methods_for(make_rule(optimizer) if optimizer != "sgd" else SGD())
    with Steps(["train", "exact LOO", *methods], "demo", enabled=progress) as bar:
        with bar.step("train"):
            prob = make_problem(dataset, epochs=epochs, seed=seed, device=device, optimizer=optimizer)
        traj, test = prob.traj, prob.split.test
        pts = choose_points(traj, k, seed)
        with bar.step(f"exact LOO ({k} points)"):
            truth, loo_sec = timed(lambda: exact_loo(traj, test, pts, progress=False), traj.device)
        rows, est = evaluate(traj, test, pts, truth=truth, exact_loo_seconds=loo_sec, methods=methods,
                             progress=bar)
    with torch.no_grad():
        out = traj.predict(test.X)
        acc = float((out.argmax(1) == test.y).double().mean())
    info = {"dataset": dataset, "n_train": len(prob.split.train), "n_test": len(test), "n_points": k,
            "points": pts, "epochs": epochs, "steps": traj.T, "batch_size": prob.batch_size,
            "lr": prob.lr, "optimizer": optimizer, "seed": seed, "device": str(traj.device), "parameters": traj.flat.P,
            "train_seconds": prob.train_seconds, "test_loss": float(traj.test_losses(test).mean()),
            "test_accuracy": acc}
    truth_np = est.pop("truth")
    est.pop("exact_loo_seconds")
    return DemoResult(info, loo_sec, rows, truth_np, est)


def plot_demo(result: DemoResult, path: str, max_dots: int = 4000) -> str:
    """Save a seaborn scatter grid (one panel per method) of estimate vs exact LOO to `path`.

    Each dot is one (training point, test point) pair; at most `max_dots` per panel (a seeded
    subsample). Uses matplotlib's Agg backend (no display needed)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import seaborn as sns
    except ImportError as e:
        raise ImportError(f"--plot needs matplotlib and seaborn ({e}); install them with "
                          "pip install -e \".[lessons]\"") from e
    names = [r["method"] for r in result.rows if r["method"] in result.estimates]
    if not names:
        raise ValueError("no estimator produced scores; nothing to plot")
    truth = result.truth.ravel()
    rng = np.random.default_rng(0)
    sel = rng.choice(truth.size, size=min(max_dots, truth.size), replace=False)
    ncol = min(4, len(names))
    nrow = math.ceil(len(names) / ncol)
    sns.set_theme(style="whitegrid", palette="colorblind", font_scale=0.8)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.1 * ncol, 2.9 * nrow), squeeze=False)
    color = sns.color_palette("colorblind")[0]
    rows = {r["method"]: r for r in result.rows}
    for ax, name in zip(axes.ravel(), names):
        est = result.estimates[name].ravel()
        sns.scatterplot(x=truth[sel], y=est[sel], ax=ax, s=6, alpha=0.4, linewidth=0, color=color)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.axline((0.0, 0.0), slope=1.0, color="0.3", lw=0.8, ls="--")  # estimate = exact
        ax.set_title(f"{name}\nspearman {rows[name]['spearman']:.3f}", fontsize=9)
        ax.set_xlabel("exact LOO")
        ax.set_ylabel("estimate")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"{result.info['dataset']}: estimate vs exact trajectory-specific LOO "
                 f"({result.info['n_points']} points x {result.info['n_test']} test points)", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)
    return str(path)
