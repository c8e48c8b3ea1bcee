"""The benchmark's reorder section: how well `dt.OrderPredictor` predicts an edited training order,
against exact retraining, and what one prediction costs.

For each dataset (moons, the digits MLP) and seed: train the demo problem (plain SGD), fit the
predictor once on the mean test loss, then draw random edits of the recorded order —

- single-point moves: a point taken out of one of its batches and added to another step's batch;
- batch swaps: the batches of two steps exchanged;
- whole-order shuffles: every batch replaced by a fresh shuffle's (first order is expected to
  degrade as more of the order changes: reported, not targeted);

and compare predicted with retrained changes of the mean test loss (Spearman, sign agreement, and
the median |predicted − exact| / |exact|). Timings: the one-off fit, and the median milliseconds
of one move's prediction.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ..data.config import sized

__all__ = ["run_order_section", "format_order_section"]


def _moves(traj, rng, k: int) -> list:
    sched, out = traj.schedule, []
    while len(out) < k:
        i = int(rng.integers(sched.n))
        occ = sched.occurrences(i)
        if not occ:
            continue
        t1, t2 = int(rng.choice(occ)), int(rng.integers(len(sched)))
        if i in sched.batches[t2] or len(sched.batches[t1]) < 2:
            continue
        out.append(sched.move(i, t1, t2))
    return out


def _swaps(traj, rng, k: int) -> list:
    out = []
    while len(out) < k:
        a, b = (int(v) for v in rng.choice(len(traj.schedule), 2, replace=False))
        out.append(traj.schedule.swap(a, b))
    return out


def _shuffles(traj, rng, k: int) -> list:
    from ..training.schedule import Schedule
    s = traj.schedule
    epochs = max(1, round(len(s.order) / s.n))
    return [Schedule.shuffled(s.n, s.batch_size, epochs=epochs, seed=int(rng.integers(1 << 30)))
            for _ in range(k)]


def _compare(pred: list, exact: list) -> dict:
    from scipy.stats import spearmanr
    p, e = np.asarray(pred), np.asarray(exact)
    rel = np.abs(p - e) / np.maximum(np.abs(e), 1e-300)
    return {"n": len(p), "spearman": float(spearmanr(p, e)[0]) if len(p) > 2 else float("nan"),
            "sign_agreement": float(np.mean(np.sign(p) == np.sign(e))),
            "median_relative_error": float(np.median(rel))}


def run_order_section(seeds: Sequence[int] = (0,), datasets: Sequence[str] = ("moons", "digits"),
                      log: Callable[[str], None] = lambda s: None) -> dict:
    """Per dataset and seed: predicted vs exact changes of the mean test loss for random moves,
    swaps and shuffles, the fit seconds and one move's prediction in milliseconds (module doc)."""
    from ..influence.order_effects import OrderPredictor, exact_order_change
    from .demo import make_problem

    n_moves, n_swaps, n_shuffles = sized(50, 8), sized(20, 5), sized(5, 2)
    out: dict = {"moves": n_moves, "swaps": n_swaps, "shuffles": n_shuffles, "runs": []}
    for name in datasets:
        for seed in seeds:
            log(f"reorder prediction: {name}, seed {seed} ...")
            prob = make_problem(name, seed=seed)
            traj, test = prob.traj, prob.split.test
            t0 = time.perf_counter()
            predictor = OrderPredictor(traj, test, mean=True).fit()
            fit = time.perf_counter() - t0
            rng = np.random.default_rng(seed)
            row = {"dataset": name, "seed": seed, "steps": traj.T, "fit_seconds": fit}
            for kind, edits in (("moves", _moves(traj, rng, n_moves)), ("swaps", _swaps(traj, rng, n_swaps)),
                                ("shuffles", _shuffles(traj, rng, n_shuffles))):
                pred, exact, ms = [], [], []
                for k, sched in enumerate(edits):
                    t0 = time.perf_counter()
                    pred.append(float(predictor.predict(sched)[0]))
                    ms.append(1e3 * (time.perf_counter() - t0))
                    exact.append(float(exact_order_change(traj, test, sched).mean()))
                    if (k + 1) % 10 == 0:
                        log(f"  {name} seed {seed}: {kind} {k + 1}/{len(edits)} replayed")
                row[kind] = _compare(pred, exact)
                row[kind]["median_prediction_ms"] = float(np.median(ms))
            out["runs"].append(row)
    return out


def format_order_section(r: dict) -> str:
    """The section as a table: dataset, seed, edit kind → Spearman, sign agreement, median relative
    error, ms per prediction; targets for moves (Spearman >= 0.97, sign >= 90%, <= 10 ms)."""
    lines = [f"(j) reorder prediction (OrderPredictor vs retraining; mean test loss; {r['moves']} moves, "
             f"{r['swaps']} batch swaps, {r['shuffles']} shuffles per run)",
             f"  {'dataset':8} {'seed':>4} {'edit':9} {'spearman':>9} {'sign':>6} {'med.rel.err':>12} {'ms/pred':>8}"]
    for row in r["runs"]:
        for kind in ("moves", "swaps", "shuffles"):
            c = row[kind]
            lines.append(f"  {row['dataset']:8} {row['seed']:>4} {kind:9} {c['spearman']:9.3f} "
                         f"{c['sign_agreement']:6.2f} {c['median_relative_error']:12.3g} {c['median_prediction_ms']:8.2f}")
        lines.append(f"  {row['dataset']:8} {row['seed']:>4} one-off fit {row['fit_seconds']:.2f} s over {row['steps']} steps")
    moves = [row["moves"] for row in r["runs"]]
    if moves:
        met = all(c["spearman"] >= 0.97 and c["sign_agreement"] >= 0.9 for c in moves)
        fast = all(c["median_prediction_ms"] <= 10 for c in moves)
        lines.append(f"  moves: Spearman >= 0.97 and sign >= 90% in every run: {'met' if met else 'NOT met'}; "
                     f"one prediction <= 10 ms: {'met' if fast else 'not met on this machine'}")
    return "\n".join(lines)
