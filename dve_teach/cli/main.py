"""Command line: ``python -m dve_teach check|demo|bench`` (also the console script ``dve-teach``).

- ``check``: versions, device, threads, and whether the lesson packages import.
- ``demo``: train a small model, exact LOO for a seeded draw of points, every estimator, one
  fidelity table (``--json`` for machines, ``--plot PATH`` for a scatter grid, ``--optimizer
  sgd|momentum|adam|adamw`` for the update rule). See `dve_teach.cli.demo`.
- ``bench``: the core-library benchmark (ratios, peak memory, fidelity; estimators on momentum and
  Adam runs, ``--seeds``, ``--section``). See `dve_teach.cli.bench`.

``DVE_TEACH_FAST=1`` shrinks every problem so that it runs in seconds.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from typing import Optional, Sequence

__all__ = ["main", "build_parser", "check_report"]

LESSON_PACKAGES = ("ipywidgets", "matplotlib", "seaborn", "jupyterlab")


#: the demo's --epochs ceiling: each epoch adds its steps to every exact replay and estimator
MAX_EPOCHS = 50


def _version(module: str) -> Optional[str]:
    """The module's version string, or None when it does not import."""
    try:
        mod = importlib.import_module(module)
    except Exception:
        return None
    v = getattr(mod, "__version__", None)
    if v is None:
        try:
            from importlib.metadata import version
            v = version(module)
        except Exception:
            v = "unknown"
    return str(v)


def check_report() -> dict:
    """What `check` prints, as data."""
    import numpy
    import torch

    import dve_teach
    from ..data.config import fast_mode

    cuda = torch.cuda.is_available()
    return {
        "dve_teach": dve_teach.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda_available": cuda,
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "device": "cuda" if cuda else "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "fast_mode": fast_mode(),
        "lesson_packages": {m: _version(m) for m in LESSON_PACKAGES},
    }


def _cmd_check(args: argparse.Namespace) -> int:
    r = check_report()
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    dev = f"cuda ({r['cuda_device']})" if r["cuda_available"] else "cpu (no CUDA device visible)"
    print(f"dve_teach {r['dve_teach']}")
    print(f"python    {r['python']} ({r['platform']})")
    print(f"torch     {r['torch']}")
    print(f"numpy     {r['numpy']}")
    print(f"device    {dev}")
    print(f"threads   {r['threads']} torch threads, {r['cpu_count']} CPUs")
    print(f"fast mode {'on' if r['fast_mode'] else 'off'} (DVE_TEACH_FAST)")
    for m, v in r["lesson_packages"].items():
        print(f"{m:<11}{v if v else 'NOT importable'}")
    missing = [m for m, v in r["lesson_packages"].items() if not v]
    if missing:
        print(f"lessons need {', '.join(missing)}: pip install -e \".[lessons]\"")
    else:
        print("widgets   ok: the lessons can run (jupyter lab lessons/)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import plot_demo, run_demo

    res = run_demo(args.dataset, points=args.points, device=args.device, epochs=args.epochs, seed=args.seed,
                   optimizer=args.optimizer, progress=not args.quiet)
    plot_error = None
    if args.plot and args.json:  # the JSON document reports the plot's outcome, so try it first
        plot_error = _try_plot(plot_demo, res, args.plot)
    if args.json:
        d = res.to_dict()
        if args.plot:
            d["plot"] = str(args.plot) if plot_error is None else None
            if plot_error is not None:
                d["plot_error"] = plot_error
        print(json.dumps(d, indent=2))
    else:
        print(res.format_table(), flush=True)  # the results first: a bad --plot path must not lose them
        if args.plot:
            plot_error = _try_plot(plot_demo, res, args.plot)
            if plot_error is None:
                print(f"scatter grid saved to {args.plot}")
    if plot_error is not None:
        print(f"could not save the plot: {plot_error}", file=sys.stderr)
    if not res.ok:
        print("some estimators failed (see the table)", file=sys.stderr)
        return 1
    return 0 if plot_error is None else 2


def _try_plot(plot_demo, res, path: str) -> "str | None":
    """Save the scatter grid; None on success, else the reason with the fix (the table is kept)."""
    try:
        plot_demo(res, path)
    except (OSError, ValueError, ImportError) as e:
        return f"{type(e).__name__}: {e}; give --plot a writable path ending in .png, .pdf or .svg"
    return None


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import SECTIONS, format_bench, run_bench
    from .progress import Log

    sections = SECTIONS if args.section == "all" else (args.section,)
    log = Log(enabled=not args.quiet)
    try:
        r = run_bench(args.device, log=log, sections=sections, seeds=args.seeds)
    finally:
        log.close()
    print(json.dumps(r, indent=2) if args.json else format_bench(r))
    rows = list(r.get("fit", {}).get("configs", {}).values()) + list(r.get("fidelity", {}).values())
    for run in r.get("optimizers", {}).get("runs", []):
        rows += [m for rr in run["rules"].values() for m in rr["methods"].values()]
    return 1 if any(v.get("error") for v in rows) else 0


def _seed_list(text: str) -> list[int]:
    """--seeds: comma-separated non-negative integers, e.g. 0,1,2."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative integers separated by commas, "
                                         f"e.g. --seeds 0,1,2; got {text!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m dve_teach`` (subcommands check, demo, bench, docs)."""
    from .demo import OPTIMIZERS  # light: the demo module imports torch and numpy only

    p = argparse.ArgumentParser(
        prog="dve-teach",
        description="Trajectory-specific leave-one-out influence and data value embeddings "
                    "(Wang et al., ICLR 2025). DVE_TEACH_FAST=1 shrinks every problem.")
    import dve_teach
    p.add_argument("--version", action="version", version=f"dve-teach {dve_teach.__version__}")
    sub = p.add_subparsers(dest="command", metavar="{check,demo,bench,docs}")
    sub.required = True

    c = sub.add_parser("check", help="print versions, device and whether the lesson packages import")
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    c.set_defaults(func=_cmd_check)

    d = sub.add_parser("demo", help="exact LOO vs every estimator on a small problem: one fidelity table")
    d.add_argument("--dataset", choices=["digits", "moons"], default="digits")
    d.add_argument("--points", type=int, default=None,
                   help="training points to remove exactly (default 60; 12 in fast mode)")
    d.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    d.add_argument("--epochs", type=int, default=3)
    d.add_argument("--seed", type=int, default=0, help="data split, initial weights, order and points")
    d.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd",
                   help="update rule: plain SGD (default), SGD with momentum 0.9, Adam or AdamW (torch's "
                        "defaults); each has its own learning rate in the recipe")
    d.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1: these small models run fastest on one thread, and several "
                        "threads on busy cores are many times slower)")
    d.add_argument("--json", action="store_true", help="print the table as JSON")
    d.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    d.add_argument("--plot", metavar="PATH", default=None,
                   help="save a scatter grid of estimate vs exact LOO (PNG, needs seaborn)")
    d.set_defaults(func=_cmd_demo)

    b = sub.add_parser("bench", help="vmapped vs one-at-a-time LOO, fit vs train time, peak memory, fidelity")
    b.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    b.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1, as for demo)")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    b.add_argument("--section", choices=["all", "core", "optimizers", "reorder", "foundation"], default="all",
                   help="core: sections (a)-(h); optimizers: (i), estimators on SGD, momentum, Adam and AdamW "
                        "runs; reorder: (j), predicted vs retrained order edits; foundation: (k), a char "
                        "transformer pretrained and fine-tuned as one run; all (default): every one")
    b.add_argument("--seeds", type=_seed_list, default=[0], metavar="0,1,2",
                   help="seeds of sections (i), (j) and (k), comma-separated (default 0)")
    b.set_defaults(func=_cmd_bench)

    a = sub.add_parser("docs", help="the API reference from the docstrings (pdoc): serve it, or write HTML")
    a.add_argument("--out", metavar="DIR", default=None, help="write static HTML to DIR instead of serving it")
    a.set_defaults(func=_cmd_docs)
    return p


def _cmd_docs(args: argparse.Namespace) -> int:
    from .apidoc import build, serve
    if args.out is None:
        serve()
    else:
        print(f"API reference written to {build(args.out)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m dve_teach`` and ``dve-teach``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "points", None) is not None and args.points < 2:
        print("error: --points must be at least 2 (a correlation needs two points)", file=sys.stderr)
        return 2
    if getattr(args, "epochs", 1) < 1:
        print("error: --epochs must be at least 1", file=sys.stderr)
        return 2
    if getattr(args, "epochs", 1) > MAX_EPOCHS:
        print(f"error: --epochs {args.epochs} would run about {args.epochs // 3} times the default demo (minutes "
              f"each); the demo allows at most {MAX_EPOCHS} epochs", file=sys.stderr)
        return 2
    if args.command in ("demo", "bench"):
        if args.threads is not None and args.threads < 1:
            print("error: --threads must be at least 1", file=sys.stderr)
            return 2
        import torch
        torch.set_num_threads(1 if args.threads is None else args.threads)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
