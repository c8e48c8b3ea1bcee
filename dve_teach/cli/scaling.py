"""The benchmark's scaling sections (`python -m dve_teach bench`, sections f–h), on the bench's problem:

(f) projections side by side: for d in (P/32, P/16, P/8, P/4) and each projection — random
    ``gaussian``, ``orthogonal``, ``kronecker`` (LoGra-style) and the data-fitted ``pca`` and
    ``kronecker_pca`` (`dve_teach.influence.pca`, fitted on max(200, d) training points at θ_0), and
    ``pca`` with the sampled-target Fisher (``hessian="sampled_fisher"``) — the embedding's fidelity
    (Spearman against exact LOO, mean over test points, as in section d), the share of the
    unprojected Spearman it keeps, fit seconds, × plain training, peak memory and
    occurrences stored per second. Target of the issue: ≥ 95% of the unprojected Spearman at
    d ≤ P/8 with a fit ≤ 3× training.
(g) influence checkpointing (paper §4.4): the unprojected Fisher fit sequentially vs in K segments
    (in this process, or in 2 worker processes started by "spawn" or "fork"): seconds, speed-up and
    the largest difference from the sequential embeddings (relative to their largest entry). Peak
    memory is that of this process, plus one line with the largest whole-process peak of any worker
    (getrusage of finished children: torch itself included, and for "fork" the pages shared with
    this process). Also each segment
    timed alone and the composition: the critical path on K free cores.
(h) float32: the same run trained and embedded in float32 — fidelity against the float64 exact
    LOO, and the largest score difference from float64 (relative).

One timed run each after an untimed warm-up on a short prefix; timings on shared cores are noisy, so
read the ratios of one run side by side.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["run_scaling", "format_scaling", "PROJECTIONS", "ROWS"]

PROJECTIONS = ("gaussian", "orthogonal", "kronecker", "pca", "kronecker_pca")
#: Rows of section (f): each projection with the Fisher, and pca with the sampled-target Fisher.
ROWS = PROJECTIONS + ("pca+sampled_fisher",)


def _spearman(est: torch.Tensor, truth: torch.Tensor) -> float:
    from ..influence.metrics import fidelity
    return float(fidelity(est.detach().double().cpu(), truth.detach().double().cpu())["spearman"])


def run_scaling(traj, test, points, truth: torch.Tensor, train_seconds: float, dev: torch.device,
                log: Callable[[str], None] = lambda s: None) -> dict:
    """Sections (f)–(h) of the module doc as a JSON-ready dict. truth: exact LOO of `points`
    (every occurrence removed), Tensor[len(points), n_test]."""
    from ..influence.embedding import DataValueEmbedding
    from .bench import PeakMemory
    from .demo import timed

    idx = torch.as_tensor([int(p) for p in points], dtype=torch.int64)
    short = traj.prefix(min(2, traj.T))
    n_occ, P = sum(len(b) for b in traj.schedule.batches), traj.flat.P

    def measure(kw: dict, run=traj, data=test) -> dict:
        DataValueEmbedding(**kw).fit(run.prefix(min(2, run.T)))   # warm-up
        with PeakMemory(dev) as pm:
            dve, sec = timed(lambda: DataValueEmbedding(**kw).fit(run), dev)
        est = dve.influence(data).total().detach().double().cpu()[idx]
        return {"d": dve.embedding_dim_, "spearman": _spearman(est, truth), "seconds": sec,
                "ratio_to_train": sec / train_seconds, "peak_mib": pm.mib, "points_per_second": n_occ / sec,
                "_dve": dve}

    # (f) projections
    log("scaling: unprojected reference ...")
    ref = measure({})
    base = ref.pop("_dve")
    dims = [max(len(traj.flat.layers), P // k) for k in (32, 16, 8, 4)]
    rows = [{"method": "none", **ref, "share_of_unprojected": 1.0}]
    for d in dims:
        for kind in ROWS:
            log(f"scaling: {kind} d={d} ...")
            kw = dict(proj_dim=d, projection=kind.split("+")[0], pca_samples=min(max(200, d), len(traj.data)))
            if kind.endswith("+sampled_fisher"):
                kw["hessian"] = "sampled_fisher"
            try:
                r = measure(kw)
                r.pop("_dve")
                r["share_of_unprojected"] = r["spearman"] / ref["spearman"]
                rows.append({"method": kind, "proj_dim": d, **r})
            except Exception as e:   # reported, not hidden
                rows.append({"method": kind, "proj_dim": d, "error": f"{type(e).__name__}: {e}"})
    out = {"projections": {"rows": rows, "parameters": P, "occurrences": n_occ,
                           "target": ">= 95% of the unprojected Spearman at d <= P/8, fit <= 3x train"}}

    # (g) checkpointing
    seq_E = base.embeddings_
    DataValueEmbedding(segments=2).fit(short)
    with PeakMemory(dev) as pm:
        _, t_seq = timed(lambda: DataValueEmbedding().fit(traj), dev)
    ck = [{"segments": 1, "workers": 1, "start_method": None, "seconds": t_seq, "speedup": 1.0,
           "max_rel_difference": 0.0, "peak_mib": pm.mib}]
    starts = ["spawn", "fork"] if dev.type == "cpu" else ["spawn"]
    for K, W, sm in [(2, 1, None), (4, 1, None)] + [(K, 2, s) for K in (2, 4) for s in starts]:
        log(f"checkpointing: segments={K}, workers={W} {sm or ''} ...")
        kw = dict(segments=K, workers=W, **({"start_method": sm} if sm else {}))
        try:
            with PeakMemory(dev) as pm:
                dve, sec = timed(lambda: DataValueEmbedding(**kw).fit(traj), dev)
            diff = float((dve.embeddings_ - seq_E).abs().max() / seq_E.abs().max())
            ck.append({"segments": K, "workers": W, "start_method": sm, "seconds": sec, "speedup": t_seq / sec,
                       "max_rel_difference": diff, "peak_mib": pm.mib})
        except Exception as e:
            ck.append({"segments": K, "workers": W, "start_method": sm, "error": f"{type(e).__name__}: {e}"})
    out["checkpointing"] = ck
    out["checkpointing_worker_max_rss_mib"] = _children_max_rss_mib()
    out["checkpointing_critical_path"] = [_critical_path(traj, K, dev) for K in (2, 4)]

    # (h) float32
    log("float32: train and embed the same run in float32 ...")
    from ..training.loop import train
    run32 = train(traj.model_at(0), traj.data, traj.schedule, traj.lrs.tolist(), loss=traj.loss,
                  optimizer=traj.optimizer, device=traj.device, dtype=torch.float32)
    test32 = test.to(dtype=torch.float32)
    r32 = measure({}, run=run32, data=test32)
    s32 = r32.pop("_dve").influence(test32).total().double()
    s64 = base.influence(test).total()
    out["float32"] = {"spearman_float32": r32["spearman"], "spearman_float64": ref["spearman"],
                      "seconds_float32": r32["seconds"], "seconds_float64": ref["seconds"],
                      "max_rel_score_difference": float((s32 - s64).abs().max() / s64.abs().max())}
    return out


def _children_max_rss_mib():
    """Largest peak RSS of any finished child process so far (whole process, torch included;
    a forked child also counts the pages it shares with this one), or 'n/a'."""
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # KiB on Linux
    except (ImportError, OSError):
        return "n/a"


def _critical_path(traj, K: int, dev: torch.device) -> dict:
    """Seconds of the unprojected Fisher recursion run sequentially, of each of its K segments run
    alone, and of composing them, timed one after another: with K free cores the segmented fit takes
    about longest segment + composition (the workers' start-up and transfers aside)."""
    from ..influence.checkpointing import compose_segments, segment_bounds
    from ..influence.projection import make_projection
    from ..influence.recursion import run_recursion
    from .demo import timed

    proj = make_projection(traj.flat)
    slices = [slice(0, proj.dim)]
    cuts = segment_bounds(traj.T, K)
    _, t_seq = timed(lambda: run_recursion(traj, proj, slices), dev)   # the sequential run, timed alongside
    parts, secs = [], []
    for a, c in zip(cuts[:-1], cuts[1:]):
        res, sec = timed(lambda: run_recursion(traj, proj, slices, start=a, stop=c, propagate_first=True), dev)
        parts.append(res)
        secs.append(sec)
    _, t_comp = timed(lambda: compose_segments([E for E, _ in parts], [Ps for _, Ps in parts], slices), dev)
    return {"segments": K, "sequential_seconds": t_seq, "segment_seconds": secs, "compose_seconds": t_comp,
            "critical_path_seconds": max(secs) + t_comp, "ideal_speedup": t_seq / (max(secs) + t_comp)}


def _num(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and v == v else str(v if v is not None else "n/a")


def format_scaling(s: dict) -> list[str]:
    """Lines of sections (f)–(h) for `format_bench`."""
    p = s["projections"]
    out = ["", f"(f) projections (Fisher unless named), P = {p['parameters']}, {p['occurrences']} occurrences; "
           f"target {p['target']}",
           f"    {'method':<19}{'d':>6}{'spearman':>10}{'of unproj.':>12}{'seconds':>9}{'x train':>9}"
           f"{'peak MiB':>10}{'points/s':>10}"]
    for r in p["rows"]:
        d = r.get("d", r.get("proj_dim"))
        if r.get("error"):
            out.append(f"    {r['method']:<19}{d:>6}  failed: {r['error']}")
            continue
        out.append(f"    {r['method']:<19}{d:>6}{r['spearman']:>10.3f}{r['share_of_unprojected']:>11.0%} "
                   f"{r['seconds']:>9.3f}{r['ratio_to_train']:>9.2f}{_num(r['peak_mib'], '>10.1f')}"
                   f"{r['points_per_second']:>10.0f}")
    out += ["", "(g) influence checkpointing (§4.4), unprojected Fisher: sequential vs segments",
            f"    {'segments':>8}{'workers':>8}  {'start':<7}{'seconds':>9}{'speed-up':>10}{'max rel diff':>14}"
            f"{'peak MiB':>10}"]
    for r in s["checkpointing"]:
        head = f"    {r['segments']:>8}{r['workers']:>8}  {str(r['start_method'] or '-'):<7}"
        if r.get("error"):
            out.append(head + f"  failed: {r['error']}")
            continue
        out.append(head + f"{r['seconds']:>9.3f}{r['speedup']:>9.2f}x{r['max_rel_difference']:>14.1e}"
                   f"{_num(r['peak_mib'], '>10.1f')}")
    out.append(f"    largest whole-process peak RSS of a worker: {_num(s.get('checkpointing_worker_max_rss_mib'), '.0f')} MiB"
               " (torch included; a forked worker also counts pages shared with the parent)")
    for c in s.get("checkpointing_critical_path", []):
        out.append(f"    K={c['segments']}: sequential {c['sequential_seconds']:.3f} s; segments alone "
                   f"{', '.join(f'{x:.3f}' for x in c['segment_seconds'])} s, compose {c['compose_seconds']:.3f} s "
                   f"-> on K free cores about {c['critical_path_seconds']:.3f} s ({c['ideal_speedup']:.2f}x, "
                   "before start-up and transfers)")
    f = s["float32"]
    out += ["", "(h) float32 vs float64 (same run, unprojected Fisher embedding)",
            f"    spearman vs exact LOO: float32 {f['spearman_float32']:.4f}, float64 {f['spearman_float64']:.4f}; "
            f"fit {f['seconds_float32']:.3f} s vs {f['seconds_float64']:.3f} s; "
            f"max |score difference| / max |score| = {f['max_rel_score_difference']:.1e}"]
    return out
