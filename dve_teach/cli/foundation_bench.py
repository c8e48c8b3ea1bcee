"""The benchmark's foundation section (issue 13): a foundation model in miniature — a causal
character transformer pretrained on Shakespeare's plays and fine-tuned on his Sonnets with a fresh
optimizer, one multi-stage run (`dt.train_stages`) — and how well each estimator sees a pretraining
sequence's influence on the fine-tuned model.

Set-up (full mode; fast mode in brackets): `dt.models.char_transformer` with 2 layers [1], d = 48
[16], 4 heads [2], context 32 [16]; stage 1: 384 [256] plays sequences, 2 epochs, batch 16, AdamW
(λ = 0.01) under warm-up + cosine (peak 3e-3 [2e-2], 10% warm-up); stage 2: a fresh AdamW on 96 [32]
sonnet sequences, 2 epochs, constant 1e-3. Query m = the mean loss over 32 [8] held-out sonnet
sequences. Reported per seed:

- training seconds; held-out plays loss vs the unigram baseline (`dt.datasets.unigram_loss`);
  held-out sonnet loss after pretraining (θ at the boundary) and after fine-tuning (θ_T);
- exact TSLOO of 24 [8] pretraining sequences, every occurrence (`dt.exact_loo`, vmapped over the
  points), against: the exact first-order sweep through AdamW's state (`dt.unrolled_influence`), the
  SGD recursion used as a proxy (the paper's practice; `DataValueEmbedding(optimizer="sgd_proxy")`)
  and the optimizer-aware embedding (`optimizer="recorded"`), both projected to d = 256 [32]
  (Gaussian) — Spearman of each, with its seconds;
- the first-order sweep's Spearman for the same query at the end of pretraining (θ at the boundary,
  `Trajectory.prefix`): what crossing the boundary (a fresh AdamW, near-sign first steps) costs it;
- exact LOO of those points one replay at a time (chunk_size=1) vs vmapped (chunk_size=all): the
  speed ratio.

Targets (issue 13): pretraining beats the unigram baseline; fine-tuning lowers the sonnet loss
further; Spearman(first order, exact) >= 0.9; vmapped LOO >= 4x faster; training <= 30 s.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch

from ..data.config import sized
from ..teach.foundation import MeanLoss, foundation_run

__all__ = ["run_foundation_section", "format_foundation_section", "foundation_run", "MeanLoss"]
# foundation_run and MeanLoss live in dve_teach.teach.foundation (lesson 10 uses them); re-exported here


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(np.asarray(a, dtype=float), np.asarray(b, dtype=float))[0])


def run_foundation_section(seeds: Sequence[int] = (0,), log: Callable[[str], None] = lambda s: None) -> dict:
    """Per seed: the numbers of the module docstring, as a dict (``runs``: one per seed)."""
    import dve_teach as dt
    n_points, d = sized(24, 8), sized(256, 32)
    out: dict = {"points": n_points, "proj_dim": d, "runs": []}
    for seed in seeds:
        log(f"foundation: seed {seed}, training two stages ...")
        traj, plays, sonnets, train_s = foundation_run(seed)
        boundary = traj.stages[1].steps.start
        obj = traj.objective
        with torch.no_grad():
            plays_loss = float(obj.losses(traj.params(boundary), plays.test.X, plays.test.y).mean())
            son_pre = float(obj.losses(traj.params(boundary), sonnets.test.X, sonnets.test.y).mean())
            son_fine = float(obj.losses(traj.final, sonnets.test.X, sonnets.test.y).mean())
        row = {"seed": seed, "P": traj.flat.P, "steps": traj.T, "boundary": boundary, "train_seconds": train_s,
               "plays_loss": plays_loss, "unigram_loss": dt.datasets.unigram_loss(plays.train, plays.test),
               "sonnet_loss_pretrained": son_pre, "sonnet_loss_finetuned": son_fine}
        points = np.random.default_rng(seed).choice(len(plays.train), n_points, replace=False).tolist()
        test, m = sonnets.test[:1], MeanLoss(sonnets.test)
        log(f"foundation: seed {seed}, exact LOO of {n_points} pretraining sequences (vmapped) ...")
        t0 = time.perf_counter()
        exact = dt.exact_loo(traj, test, points, chunk_size=n_points, measure=m)[:, 0]
        row["loo_vmapped_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        one = dt.exact_loo(traj, test, points, chunk_size=1, measure=m)[:, 0]
        row["loo_one_at_a_time_seconds"] = time.perf_counter() - t0
        row["loo_paths_agree"] = float((one - exact).abs().max())
        log(f"foundation: seed {seed}, first-order sweep and embeddings ...")
        estimates = {}
        t0 = time.perf_counter()
        estimates["unrolled"] = dt.unrolled_influence(traj, test, measure=m).total()[points, 0]
        row["unrolled_seconds"] = time.perf_counter() - t0
        for mode in ("sgd_proxy", "recorded"):
            t0 = time.perf_counter()
            dve = dt.DataValueEmbedding(proj_dim=d, projection="gaussian", optimizer=mode, seed=seed).fit(traj)
            estimates[mode] = dve.influence(test, measure=m).total()[points, 0]
            row[f"{mode}_seconds"] = time.perf_counter() - t0
        for name, est in estimates.items():
            row[f"spearman_{name}"] = _spearman(est, exact)
        log(f"foundation: seed {seed}, the same query at the end of pretraining (θ at the boundary) ...")
        pre = traj.prefix(boundary)
        row["spearman_unrolled_pretraining_only"] = _spearman(
            dt.unrolled_influence(pre, test, measure=m).total()[points, 0],
            dt.exact_loo(pre, test, points, chunk_size=n_points, measure=m)[:, 0])
        out["runs"].append(row)
    return out


def format_foundation_section(r: dict, load=None) -> str:
    """The section as lines: per seed the losses, the Spearman of each estimator against exact TSLOO
    and the timings, then whether the targets were met."""
    lines = [f"(k) foundation model in miniature (char transformer, plays -> sonnets; {r['points']} pretraining "
             f"sequences, exact TSLOO every occurrence; embeddings projected to d = {r['proj_dim']})"]
    for row in r["runs"]:
        lines += [
            f"  seed {row['seed']}: P = {row['P']}, {row['steps']} steps (boundary at {row['boundary']}), trained in "
            f"{row['train_seconds']:.1f} s",
            f"    held-out plays loss {row['plays_loss']:.3f} vs unigram {row['unigram_loss']:.3f}; sonnet loss "
            f"{row['sonnet_loss_pretrained']:.3f} after pretraining, {row['sonnet_loss_finetuned']:.3f} after fine-tuning",
            f"    Spearman vs exact: first order through AdamW {row['spearman_unrolled']:.3f} "
            f"({row['unrolled_seconds']:.1f} s), SGD proxy {row['spearman_sgd_proxy']:.3f} "
            f"({row['sgd_proxy_seconds']:.1f} s), optimizer-aware embedding {row['spearman_recorded']:.3f} "
            f"({row['recorded_seconds']:.1f} s); first order with the query at the end of pretraining "
            f"(no boundary crossed) {row['spearman_unrolled_pretraining_only']:.3f}",
            f"    exact LOO: vmapped {row['loo_vmapped_seconds']:.1f} s, one at a time "
            f"{row['loo_one_at_a_time_seconds']:.1f} s (x{row['loo_one_at_a_time_seconds'] / row['loo_vmapped_seconds']:.1f});"
            f" the two agree to {row['loo_paths_agree']:.1e}"]
    runs = r["runs"]
    if runs:
        from .progress import verdict
        checks = {"pretraining beats unigram": (all(x["plays_loss"] < x["unigram_loss"] for x in runs), False),
                  "fine-tuning lowers the sonnet loss": (all(x["sonnet_loss_finetuned"] < x["sonnet_loss_pretrained"]
                                                             for x in runs), False),
                  "first order Spearman >= 0.9": (all(x["spearman_unrolled"] >= 0.9 for x in runs), False),
                  "vmapped LOO >= 4x faster": (all(x["loo_one_at_a_time_seconds"] >= 4 * x["loo_vmapped_seconds"]
                                                   for x in runs), True),
                  "training <= 30 s": (all(x["train_seconds"] <= 30 for x in runs), True)}
        lines.append("  targets: " + "; ".join(f"{k}: {verdict(met, timing, load)}" for k, (met, timing) in checks.items()))
    return "\n".join(lines)
