"""`python -m dve_teach bench`: the core-library benchmark, in one process on one problem.

Problem: digits, MLP 64-32-10 tanh, lr 0.05, b 32, 3 epochs, 1000 train / 200 test (fast mode:
`dve_teach.cli.demo.make_problem` shrinks it). Sections, each reported as numbers and ratios:

(a) ``exact_loo`` for 64 removals (every occurrence) replayed together with ``vmap``
    (``chunk_size=64``) vs the same replays one at a time (``chunk_size=1``); target >= 10x.
(b) ``DataValueEmbedding.fit`` vs plain ``dt.train`` on the same schedule, for Fisher
    unprojected, GGN, sampled-target Fisher, Fisher layer-wise, Gaussian and Kronecker
    ``proj_dim=512``; target <= 3x unprojected.
(c) Peak memory of each workload above the memory in use before it: on Linux CPU the process
    peak RSS (VmHWM, reset through /proc/self/clear_refs), on CUDA ``max_memory_allocated``.
(d) Fidelity of every estimator against exact LOO on 60 points (the first 60 of the 64 above).
(e) The lesson-05 widget's Retrain (`widgets.ReorderModel`) on its default problem.
(f)–(h) Scaling (`dve_teach.cli.scaling`): projections (random and data-fitted) at several d —
    fidelity, seconds, × train, peak memory, points per second; influence checkpointing sequential
    vs segmented (time, equality); float32 vs float64.
(i) Update rules (`dve_teach.cli.optimizers`): the same digits set-up trained with SGD, momentum,
    Adam and AdamW, per seed (``--seeds``): exact LOO of 60 points against the first-order unrolled
    sweep and the embeddings (recorded rule, SGD proxy, frozen preconditioner) — Spearman of the mean
    test loss and per test point, seconds, and fit / exact-LOO seconds relative to the SGD run.

(j) Reorder prediction (`dve_teach.cli.order_bench`): `dt.OrderPredictor` against retraining for
    random single-point moves, batch swaps and whole-order shuffles on moons and the digits MLP, per
    seed; seconds of the one-off fit and milliseconds per prediction.

(k) Foundation model in miniature (`dve_teach.cli.foundation_bench`): a char transformer pretrained on
    plays and fine-tuned on sonnets (one two-stage run); exact TSLOO of pretraining sequences against
    the first-order sweep, the SGD proxy and the projected optimizer-aware embedding; vmapped vs
    one-at-a-time exact LOO.

``--section core`` runs (a)–(h) only, ``--section optimizers`` (i) only, ``--section reorder`` (j) only,
``--section foundation`` (k) only.

Timings are medians of up to three repeats (fewer when one run takes long) after an untimed
warm-up on a small case (the first torch.func call of each kind is slow). Section (d) times one
run of each estimator. Nothing here is asserted; tests only check the report's fields.
"""
from __future__ import annotations

import ctypes
import gc
import os
import statistics
import sys
from typing import Callable, Optional, Sequence

import torch

from ..data.config import fast_mode, sized
from .demo import choose_points, evaluate, make_problem, resolve_device, timed
from .progress import machine_load, verdict

__all__ = ["run_bench", "format_bench", "PeakMemory", "SECTIONS"]

#: Groups of sections that `run_bench` can run: "core" = (a)-(h), "optimizers" = (i), "reorder" = (j),
#: "foundation" = (k).
SECTIONS = ("core", "optimizers", "reorder", "foundation")
SECTION_TITLES = {"core": "(a)-(h) exact LOO, fit, memory, fidelity, widget, scaling",
                  "optimizers": "(i) update rules", "reorder": "(j) reorder prediction",
                  "foundation": "(k) foundation model in miniature"}


class PeakMemory:
    """Peak memory of one workload in MiB above what was in use when it started ('n/a' where the
    platform gives no peak). Use as ``with PeakMemory(device) as pm: ...; pm.mib``."""

    def __init__(self, device: torch.device):
        self.device, self.mib = device, "n/a"

    @staticmethod
    def _status_kib(field: str) -> Optional[int]:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        try:  # give freed heap pages back, so reused pages count as new peak
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self._base = self._status_kib("VmRSS")
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2 ** 20
        elif self._base is not None:
            peak = self._status_kib("VmHWM")
            self.mib = (peak - self._base) / 1024 if peak is not None else "n/a"


def _median_time(fn: Callable[[], object], device: torch.device, repeats: int,
                 budget_s: float = 20.0) -> tuple[float, object, object]:
    """Median seconds over up to `repeats` timed runs (stops early once `budget_s` is used), the
    first run also measured for peak memory. Returns (median, last output, peak MiB)."""
    times = []
    with PeakMemory(device) as pm:
        out, sec = timed(fn, device)
    times.append(sec)
    while len(times) < repeats and sum(times) < budget_s:
        out, sec = timed(fn, device)
        times.append(sec)
    return statistics.median(times), out, pm.mib


def run_bench(device: str = "cpu", log: Callable[[str], None] = lambda s: None, *,
              sections: Sequence[str] = SECTIONS, seeds: Sequence[int] = (0,)) -> dict:
    """Run the `sections` ("core" = (a)-(h), "optimizers" = (i) for each of `seeds`) and return the
    report as a JSON-ready dict (see the module doc)."""
    bad = [s for s in sections if s not in SECTIONS]
    if bad or not sections:
        raise ValueError(f"sections must be names from {list(SECTIONS)}, got {list(sections)}")
    dev = resolve_device(device)
    report: dict = {"device": str(dev), "cuda_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpu_count": os.cpu_count(), "fast": fast_mode(), "load_average_start": _load(),
                    "sections": list(sections)}
    chosen = [s for s in SECTIONS if s in sections]
    for k, name in enumerate(chosen, 1):
        log(f"section {k}/{len(chosen)}: {SECTION_TITLES[name]}")
        if name == "core":
            _run_core(report, dev, log)
        elif name == "optimizers":
            from .optimizers import run_optimizers
            report["optimizers"] = run_optimizers(seeds, dev, log)
        elif name == "reorder":
            from .order_bench import run_order_section
            report["reorder"] = run_order_section(seeds, log=log)
        elif name == "foundation":
            from .foundation_bench import run_foundation_section
            report["foundation"] = run_foundation_section(seeds, log=log)
    report["load_average_end"] = _load()
    return report


def _run_core(report: dict, dev: torch.device, log: Callable[[str], None]) -> None:
    """Sections (a)-(h), written into `report`."""
    from ..influence.embedding import DataValueEmbedding
    from ..influence.loo import exact_loo

    n_remove = sized(64, 8)
    n_fid = sized(60, 6)
    proj_dim = sized(512, 64)
    repeats = sized(3, 1)
    prob = make_problem("digits", epochs=sized(3, 1), seed=0, device=str(dev), sizes=sized((64, 32, 10), (64, 8, 10)))
    traj, test = prob.traj, prob.split.test
    sizes = [m.in_features for m in traj.model if hasattr(m, "in_features")] + [traj.model[-1].out_features]
    report["problem"] = {"dataset": "digits", "n_train": len(prob.split.train), "n_test": len(test),
                         "steps": traj.T, "batch_size": prob.batch_size, "lr": prob.lr,
                         "epochs": prob.epochs, "parameters": traj.flat.P, "sizes": sizes}
    memory: dict = {}

    # (b, baseline) plain training
    log("timing dt.train ...")
    prob.train_again()  # warm-up
    t_train, _, memory["train"] = _median_time(prob.train_again, dev, max(repeats, 3))

    # (a) vmapped vs one-at-a-time exact LOO
    points = choose_points(traj, n_remove, seed=0)
    log(f"exact LOO: {n_remove} removals vmapped (chunk_size={n_remove}) ...")
    exact_loo(traj, test, points[:2], chunk_size=2, progress=False)  # warm-up
    t_vmap, truth, memory["exact_loo_vmapped"] = _median_time(
        lambda: exact_loo(traj, test, points, chunk_size=n_remove, progress=False), dev, repeats)
    log(f"exact LOO: {n_remove} removals one at a time (chunk_size=1) ...")
    with PeakMemory(dev) as pm:
        one, t_one = timed(lambda: exact_loo(traj, test, points, chunk_size=1, progress=False), dev)
    memory["exact_loo_one_at_a_time"] = pm.mib
    report["exact_loo"] = {"removals": n_remove, "vmapped_seconds": t_vmap, "one_at_a_time_seconds": t_one,
                           "speedup": t_one / t_vmap, "target": ">= 10x",
                           "max_abs_difference": float((one - truth).abs().max())}

    # (b) DataValueEmbedding.fit vs train
    configs = {"fisher": dict(hessian="fisher"), "ggn": dict(hessian="ggn"),
               "sampled_fisher": dict(hessian="sampled_fisher"),
               "fisher_layerwise": dict(hessian="fisher", layerwise=True),
               f"fisher_gaussian_{proj_dim}": dict(hessian="fisher", proj_dim=proj_dim, projection="gaussian"),
               f"fisher_kronecker_{proj_dim}": dict(hessian="fisher", proj_dim=proj_dim, projection="kronecker")}
    fits = {}
    short = traj.prefix(min(2, traj.T))
    for name, kw in configs.items():
        log(f"DataValueEmbedding({kw}).fit ...")
        try:
            DataValueEmbedding(**kw).fit(short)  # warm-up on a 2-step prefix of the run
            sec, _, memory[f"dve_{name}"] = _median_time(lambda: DataValueEmbedding(**kw).fit(traj), dev, repeats)
            fits[name] = {"seconds": sec, "ratio_to_train": sec / t_train}
        except Exception as e:
            fits[name] = {"seconds": None, "ratio_to_train": None, "error": f"{type(e).__name__}: {e}"}
            memory[f"dve_{name}"] = "n/a"
    report["fit"] = {"train_seconds": t_train, "configs": fits, "target": "<= 3x (fisher, unprojected)"}
    report["memory_mib"] = memory
    report["memory_method"] = ("torch.cuda.max_memory_allocated" if dev.type == "cuda"
                               else "peak RSS (VmHWM after clear_refs) minus RSS before")

    # (d) fidelity on the first n_fid of the removed points
    log(f"fidelity of every estimator on {n_fid} points ...")
    rows, _ = evaluate(traj, test, points[:n_fid], truth=truth[:n_fid], warmup=short)
    report["fidelity"] = {r["method"]: {k: v for k, v in r.items() if k != "method"} for r in rows}
    report["fidelity_points"] = n_fid

    # (f)-(h) scaling: projections at several d, checkpointing, float32
    from .scaling import run_scaling
    report["scaling"] = run_scaling(traj, test, points[:n_fid], truth[:n_fid], t_train, dev, log)

    # (e) the lesson-05 widget's Retrain on its default problem (issue: "about a second")
    log("lesson 05 ReorderModel Retrain ...")
    report["widget_retrain"] = _widget_retrain(dev, repeats=sized(3, 1))


def _load() -> object:
    """The 1-minute load average (other processes on the cores distort every timing), or 'n/a'."""
    load = machine_load()
    return "n/a" if load is None else load


def _verdict(r: dict, met: bool, timing: bool = True) -> str:
    """`progress.verdict` with the load average the report measured at its end."""
    load = r.get("load_average_end")
    return verdict(met, timing, load if isinstance(load, (int, float)) else None, r.get("cpu_count"))


def _widget_retrain(dev: torch.device, repeats: int) -> dict:
    """Median wall time of `widgets.ReorderModel.retrain()` after a new shuffled order (nothing
    cached), on the widget's default problem; 'n/a' without the lesson packages."""
    try:
        from ..teach.reorder import ReorderModel
        from ..teach.explorers import order_for
    except ImportError as e:
        return {"seconds": "n/a", "note": f"needs the lesson packages ({e})"}
    try:
        model = ReorderModel()  # trains and retrains once: the warm-up
        times = []
        for seed in range(1, repeats + 1):
            model.set_order(order_for(model.problem, "shuffle", seed=seed))
            times.append(timed(model.retrain, dev)[1])
        return {"seconds": statistics.median(times), "repeats": len(times), "n_train": model.n,
                "steps": len(model.result.schedule), "target": "about 1 s on 2 CPU cores"}
    except Exception as e:
        return {"seconds": None, "error": f"{type(e).__name__}: {e}"}


def _num(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and v == v else str(v if v is not None else "n/a")


def format_bench(r: dict) -> str:
    """The human-readable report of `run_bench` (the sections it ran)."""
    dev = r["device"] + (f" ({r['cuda_name']})" if r.get("cuda_name") else "")
    out = [f"dve_teach bench on {dev}, torch {r['torch']}, {r['threads']} threads, {r['cpu_count']} CPUs, "
           f"load average {r.get('load_average_start')} -> {r.get('load_average_end')}"
           f"{' [FAST MODE]' if r['fast'] else ''}",
           "Timing targets are judged on this machine as it is now: a load average near or above the CPU count "
           "means other work competes, and a target 'not met on this machine' may be met on free cores."]
    if "problem" in r:
        out += _format_core(r)
    if "optimizers" in r:
        from .optimizers import format_optimizers
        out += format_optimizers(r["optimizers"])
    if "reorder" in r:
        from .order_bench import format_order_section
        out.append(format_order_section(r["reorder"]))
    if "foundation" in r:
        from .foundation_bench import format_foundation_section
        load = r.get("load_average_end")
        out.append(format_foundation_section(r["foundation"], load if isinstance(load, (int, float)) else None))
    return "\n".join(out)


def _format_core(r: dict) -> list[str]:
    """Lines of sections (a)-(h)."""
    p = r["problem"]
    out = [f"problem: digits MLP {'-'.join(map(str, p['sizes']))} tanh, {p['parameters']} parameters, {p['n_train']} train / {p['n_test']} test, "
           f"{p['steps']} steps (b={p['batch_size']}, lr={p['lr']}, {p['epochs']} epochs)", ""]
    a = r["exact_loo"]
    out += [f"(a) exact LOO, {a['removals']} removals (every occurrence)",
            f"    vmapped (chunk_size={a['removals']}): {a['vmapped_seconds']:.3f} s   "
            f"one at a time: {a['one_at_a_time_seconds']:.3f} s   "
            f"speed-up {a['speedup']:.1f}x (target {a['target']}: {_verdict(r, a['speedup'] >= 10)})   "
            f"max |difference| {a['max_abs_difference']:.1e}", ""]
    f = r["fit"]
    fisher = f["configs"].get("fisher", {}).get("ratio_to_train")
    met = _verdict(r, fisher <= 3) if isinstance(fisher, (int, float)) else "not measured"
    out += [f"(b) DataValueEmbedding.fit vs dt.train ({f['train_seconds']:.3f} s); target {f['target']}: {met}"]
    for name, c in f["configs"].items():
        if c.get("error"):
            out.append(f"    {name:<24} failed: {c['error']}")
        else:
            out.append(f"    {name:<24} {c['seconds']:>8.3f} s   {c['ratio_to_train']:>6.1f}x train")
    out += ["", f"(c) peak memory above baseline, MiB ({r['memory_method']})"]
    for name, m in r["memory_mib"].items():
        out.append(f"    {name:<32} {_num(m, '>8.1f')}")
    out += ["", f"(d) fidelity vs exact LOO on {r['fidelity_points']} points (mean over test points)",
            f"    {'method':<22}{'spearman':>10}{'pearson':>10}{'sign agr.':>11}{'seconds':>10}"]
    for name, row in r["fidelity"].items():
        if row.get("error"):
            out.append(f"    {name:<22}  failed: {row['error']}")
        else:
            out.append(f"    {name:<22}{_num(row['spearman'], '>10.3f')}{_num(row['pearson'], '>10.3f')}"
                       f"{_num(row['sign_agreement'], '>11.3f')}{_num(row['seconds'], '>10.2f')}")
    w = r.get("widget_retrain", {})
    out += ["", f"(e) lesson 05 ReorderModel.retrain() after a new order: {_num(w.get('seconds'), '.2f')} s"
            + (f" (median of {w['repeats']}, {w['n_train']} points, {w['steps']} steps; target {w['target']}: "
               f"{_verdict(r, w['seconds'] <= 1.5)})"
               if "repeats" in w else f" ({w.get('error') or w.get('note')})")]
    if "scaling" in r:
        from .scaling import format_scaling
        out += format_scaling(r["scaling"])
    return out


def _stderr_log(msg: str) -> None:
    """A plain progress callback (one line per step on stderr); the CLI uses `progress.Log`."""
    print(msg, file=sys.stderr, flush=True)
