"""The benchmark's update-rule section (`python -m dve_teach bench`, section i): how well each estimator
tracks exact LOO on runs of plain SGD, SGD with momentum, Adam and AdamW, and what it costs.

Problem: the bench's digits set-up (MLP 64-32-10 tanh, 1000 train / 200 test, b = 32, 3 epochs; fast
mode: `make_problem`'s smaller sizes, 1 epoch, a 64-8-10 MLP), trained once per rule from the same
θ_0 and order: sgd (lr 0.05), momentum 0.9 (lr 0.01), adam (lr 0.003), adamw (lr 0.003) — the demo's
recipes (`dve_teach.cli.demo.RECIPES`). For each seed and rule:

- exact LOO (every occurrence removed) of a seeded draw of 60 points (`choose_points`; fast mode 6),
  batched (``vmap``, one chunk), median of up to 3 timed runs;
- per estimator: Spearman against exact LOO of the *mean* test loss (correlation across the points of
  each point's mean over the test points) and Spearman averaged per test point (the demo's protocol,
  `metrics.fidelity`), and seconds (fit + scores; one timed run after an untimed warm-up on a 2-step
  prefix). Estimators: ``unrolled`` (`unrolled_influence`, exact first order through the whole
  optimizer state), the embedding with the recorded rule and Fisher / GGN / sampled-target Fisher, and
  on runs with a state the paper's plain-SGD proxy (Fisher, GGN) and, for Adam/AdamW, the frozen
  preconditioner (Fisher, GGN). On plain SGD the recorded rule *is* the SGD recursion;
- ratios from the same process: the unprojected Fisher embedding's fit on each rule's run ÷ its fit on
  the SGD run, and batched exact LOO seconds ÷ the SGD run's.

Timings on shared cores are noisy: read the ratios of one run side by side. Nothing is asserted here.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from ..data.config import sized

__all__ = ["RULES", "section_methods", "run_optimizers", "format_optimizers", "TARGETS"]

#: The rules of the section, in table order (names of `dve_teach.cli.demo.OPTIMIZERS`).
RULES = ("sgd", "momentum", "adam", "adamw")

#: What the issue asks of each number (read by `format_optimizers`; nothing is asserted).
TARGETS = {
    "unrolled_mean_loss": {"momentum": 0.99, "adam": 0.95, "adamw": 0.95},
    "embedding_per_test_adam": 0.75,
    "embedding_over_proxy_adam": 2.0,
    "fit_ratio_adam": 3.0,
    "exact_loo_ratio_adam": 1.0,
}


def section_methods(rule: str) -> dict:
    """method name -> None (``unrolled``) or the `DataValueEmbedding` keyword arguments, for a rule
    name of `RULES`. Names as in the demo's table."""
    out: dict = {"unrolled": None, "dve_fisher": dict(hessian="fisher"), "dve_ggn": dict(hessian="ggn"),
                 "dve_sampled_fisher": dict(hessian="sampled_fisher")}
    if rule != "sgd":
        out["dve_fisher_sgd_proxy"] = dict(hessian="fisher", optimizer="sgd_proxy")
        out["dve_ggn_sgd_proxy"] = dict(hessian="ggn", optimizer="sgd_proxy")
    if rule in ("adam", "adamw"):
        out["dve_fisher_frozen"] = dict(hessian="fisher", optimizer="frozen_preconditioner")
        out["dve_ggn_frozen"] = dict(hessian="ggn", optimizer="frozen_preconditioner")
    return out


def _spearmans(est: torch.Tensor, truth: torch.Tensor) -> dict:
    """Spearman of the mean over test points, and the mean of the per-test-point Spearmans."""
    from ..influence.metrics import fidelity
    est, truth = est.detach().double().cpu(), truth.detach().double().cpu()
    clean = lambda v: float(v) if math.isfinite(v) else None  # noqa: E731  (strict JSON has no NaN)
    return {"spearman_mean_loss": clean(fidelity(est.mean(1), truth.mean(1))["spearman"]),
            "spearman_per_test": clean(fidelity(est, truth)["spearman"])}


def _run_method(traj, test, idx: torch.Tensor, truth: torch.Tensor, kw: Optional[dict], short,
                dev: torch.device) -> dict:
    """One estimator: warm-up on `short`, then fit (embeddings) and scores timed; its Spearmans."""
    from ..influence.embedding import DataValueEmbedding
    from ..influence.unroll import unrolled_influence
    from .demo import timed

    if kw is None:
        unrolled_influence(short, test)   # warm-up
        est, sec = timed(lambda: unrolled_influence(traj, test).total(), dev)
        row = {"seconds": sec}
    else:
        DataValueEmbedding(**kw).fit(short).influence(test)   # warm-up
        dve, fit = timed(lambda: DataValueEmbedding(**kw).fit(traj), dev)
        est, score = timed(lambda: dve.influence(test).total(), dev)
        row = {"seconds": fit + score, "fit_seconds": fit}
    return {**_spearmans(est[idx], truth), **row}


def run_optimizers(seeds: Sequence[int] = (0,), device="cpu", log: Callable[[str], None] = lambda s: None, *,
                   rules: Sequence[str] = RULES, points: Optional[int] = None, epochs: Optional[int] = None,
                   n_train: Optional[int] = None, n_test: Optional[int] = None,
                   sizes: Optional[Sequence[int]] = None) -> dict:
    """Section (i) of the bench (module doc) as a JSON-ready dict.

    seeds: one run of every rule per seed (data split, θ_0, order and points). rules: names from
    `RULES`; the ratios need "sgd" among them. points/epochs/n_train/n_test/sizes: the problem
    (default: the bench's digits set-up, smaller in fast mode).
    Returns {"problem", "rules": name -> {label, lr, rule}, "seeds", "runs": [{"seed", "rules": name ->
    {test_loss_start, test_loss, steps, exact_loo_seconds, methods: name -> {spearman_mean_loss,
    spearman_per_test, seconds[, fit_seconds][, error]}} (None where undefined or failed), "ratios": name -> {fit_fisher, exact_loo}}],
    "targets"}.
    """
    from ..data.checks import as_int
    from ..influence.loo import exact_loo
    from .bench import _median_time
    from .demo import OPTIMIZERS, choose_points, make_problem, resolve_device

    seeds = [as_int(s, "seeds", 0) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed, e.g. --seeds 0 or --seeds 0,1,2")
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise ValueError(f"rules must be names from {list(RULES)}, got {list(rules)}")
    dev = resolve_device(device)
    k = points if points is not None else sized(60, 6)
    epochs = epochs if epochs is not None else sized(3, 1)
    sizes = tuple(sizes) if sizes is not None else sized((64, 32, 10), (64, 8, 10))
    repeats = sized(3, 1)
    out: dict = {"seeds": seeds, "rules": {}, "runs": [], "targets": TARGETS}
    for si, seed in enumerate(seeds):
        run: dict = {"seed": seed, "rules": {}, "ratios": {}}
        for rule in rules:
            log(f"update rules: seed {seed} ({si + 1}/{len(seeds)}), {rule}: training ...")
            prob = make_problem("digits", epochs=epochs, seed=seed, device=str(dev), n_train=n_train,
                                n_test=n_test, sizes=sizes, optimizer=rule)
            traj, test = prob.traj, prob.split.test
            if "problem" not in out:
                out["problem"] = {"dataset": "digits", "n_train": len(prob.split.train), "n_test": len(test),
                                  "sizes": list(sizes), "parameters": traj.flat.P, "batch_size": prob.batch_size,
                                  "epochs": epochs, "steps": traj.T, "points": k}
            out["rules"].setdefault(rule, {"label": OPTIMIZERS[rule][0], "lr": prob.lr,
                                           "rule": repr(traj.optimizer)})
            with torch.no_grad():
                loss0 = float(traj.objective.losses(traj.params(0), test.X, test.y).mean())
            pts = choose_points(traj, k, seed)
            idx = torch.as_tensor(pts, dtype=torch.int64)
            exact_loo(traj, test, pts[:2], chunk_size=2, progress=False)   # warm-up
            t_loo, truth, _ = _median_time(lambda: exact_loo(traj, test, pts, chunk_size=max(k, 1), progress=False),
                                           dev, repeats)
            r = {"test_loss_start": loss0, "test_loss": float(traj.test_losses(test).mean()), "steps": traj.T,
                 "exact_loo_seconds": t_loo, "methods": {}}
            short = traj.prefix(min(2, traj.T))
            for name, kw in section_methods(rule).items():
                log(f"update rules: seed {seed}, {rule}: {name} ...")
                try:
                    r["methods"][name] = _run_method(traj, test, idx, truth, kw, short, dev)
                except Exception as e:   # reported, not hidden
                    r["methods"][name] = {"spearman_mean_loss": None, "spearman_per_test": None,
                                          "seconds": None, "error": f"{type(e).__name__}: {e}"}
            run["rules"][rule] = r
        base = run["rules"].get("sgd")
        for rule, r in run["rules"].items():
            if base is None or rule == "sgd":
                continue
            fit, fit0 = r["methods"]["dve_fisher"].get("fit_seconds"), base["methods"]["dve_fisher"].get("fit_seconds")
            run["ratios"][rule] = {"fit_fisher": fit / fit0 if fit and fit0 else None,
                                   "exact_loo": r["exact_loo_seconds"] / base["exact_loo_seconds"]}
        out["runs"].append(run)
    return out


def _num(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and v == v else "n/a"


def format_optimizers(s: dict) -> list[str]:
    """Lines of section (i) for `format_bench`: one table rule × method with, for every seed,
    Spearman (mean test loss), Spearman (per test point, averaged) and seconds; then the ratios and
    the issue's targets read off the table (min over seeds)."""
    p, seeds, runs = s["problem"], s["seeds"], s["runs"]
    out = ["", f"(i) update rules: digits MLP {'-'.join(map(str, p['sizes']))} tanh, {p['parameters']} parameters, "
           f"{p['n_train']} train / {p['n_test']} test, b={p['batch_size']}, {p['epochs']} epochs ({p['steps']} steps); "
           f"exact LOO of {p['points']} points (every occurrence)",
           "    mean: Spearman vs exact LOO of the mean test loss; per test: Spearman per test point, averaged; "
           "s: seconds (fit + scores)"]
    head = f"    {'rule':<10}{'method':<22}" + "".join(f"{'seed ' + str(sd) + ': mean':>17}{'per test':>9}{'s':>8}"
                                                    for sd in seeds)
    out += [head, "    " + "-" * (len(head) - 4)]
    for rule, info in s["rules"].items():
        losses = "; ".join(f"seed {run['seed']}: {run['rules'][rule]['test_loss_start']:.3f} -> "
                           f"{run['rules'][rule]['test_loss']:.3f}" for run in runs)
        out.append(f"    {rule:<10}{info['label']}, lr {info['lr']:g}; test loss {losses}")
        line = f"    {'':<10}{'exact LOO (truth)':<22}"
        for run in runs:
            line += f"{'':>17}{'':>9}{run['rules'][rule]['exact_loo_seconds']:>8.2f}"
        out.append(line)
        for name in runs[0]["rules"][rule]["methods"]:
            line = f"    {'':<10}{name:<22}"
            for run in runs:
                m = run["rules"][rule]["methods"][name]
                line += (f"{'failed':>17}{'':>9}{'':>8}" if m.get("error") else
                         f"{_num(m['spearman_mean_loss'], '>17.3f')}{_num(m['spearman_per_test'], '>9.3f')}"
                         f"{_num(m['seconds'], '>8.2f')}")
            out.append(line)
    errors = [(run["seed"], rule, name, m["error"]) for run in runs for rule, r in run["rules"].items()
              for name, m in r["methods"].items() if m.get("error")]
    out += [f"    failed: seed {sd}, {rule}, {name}: {err}" for sd, rule, name, err in errors]
    if any(run["ratios"] for run in runs):
        out.append("    ratios to the SGD run of the same seed (same process): unprojected Fisher embedding fit; "
                   "batched exact LOO")
        for rule in runs[0]["ratios"]:
            out.append(f"    {rule:<10}fit " + ", ".join(_num(run["ratios"][rule]["fit_fisher"], ".1f") + "x" for run in runs)
                       + "   exact LOO " + ", ".join(_num(run["ratios"][rule]["exact_loo"], ".2f") + "x" for run in runs))
    out += _target_lines(s)
    return out


def _target_lines(s: dict) -> list[str]:
    """The issue's targets against the table (worst seed), where the rules involved were run."""
    t, runs = s["targets"], s["runs"]

    def col(rule, name, key):
        vals = [run["rules"][rule]["methods"].get(name, {}).get(key) for run in runs if rule in run["rules"]]
        return [v for v in vals if isinstance(v, float) and math.isfinite(v)]

    out = ["    targets (worst seed):"]
    for rule, goal in t["unrolled_mean_loss"].items():
        v = col(rule, "unrolled", "spearman_mean_loss")
        if v:
            out.append(f"      unrolled vs exact LOO, mean test loss, {rule}: {min(v):.3f} (target >= {goal}) "
                       f"{'met' if min(v) >= goal else 'NOT met'}")
    if "adam" in s["rules"]:
        def best(run, names):   # the largest finite per-test Spearman among `names` (NaN: none)
            v = [run["rules"]["adam"]["methods"].get(n, {}).get("spearman_per_test") for n in names]
            v = [x for x in v if isinstance(x, float) and math.isfinite(x)]
            return max(v) if v else math.nan
        best_rec = [best(run, ("dve_fisher", "dve_ggn", "dve_sampled_fisher")) for run in runs]
        proxy = [best(run, ("dve_fisher_sgd_proxy", "dve_ggn_sgd_proxy")) for run in runs]
        if all(b == b for b in best_rec):
            out.append(f"      adam, best recorded embedding per test point: {min(best_rec):.3f} "
                       f"(target >= {t['embedding_per_test_adam']}) "
                       f"{'met' if min(best_rec) >= t['embedding_per_test_adam'] else 'NOT met'}")
        if all(b == b and q == q for b, q in zip(best_rec, proxy)):
            ratios = [b / q if q > 0 else math.inf for b, q in zip(best_rec, proxy)]
            out.append(f"      adam, best recorded ÷ best SGD proxy (per test point): {min(ratios):.3f}x "
                       f"(target >= {t['embedding_over_proxy_adam']:g}x) "
                       f"{'met' if min(ratios) >= t['embedding_over_proxy_adam'] else 'NOT met'}")
        fit = [run["ratios"].get("adam", {}).get("fit_fisher") for run in runs]
        if fit and all(isinstance(v, float) for v in fit):
            out.append(f"      adam ÷ sgd embedding fit (Fisher): {max(fit):.1f}x (target <= {t['fit_ratio_adam']:g}x) "
                       f"{'met' if max(fit) <= t['fit_ratio_adam'] else 'NOT met'}")
        loo = [run["ratios"].get("adam", {}).get("exact_loo") for run in runs]
        if loo and all(isinstance(v, float) for v in loo):
            out.append(f"      adam ÷ sgd batched exact LOO: {max(loo):.2f}x (target: as fast as SGD, about 1x)")
    return out
