#!/usr/bin/env python3
"""Sync each lesson from its jupytext source, re-execute it top to bottom in a fresh kernel, store its outputs.

Usage (from the repository root)::

    python lessons/execute.py                 # every lessons/NN_*.ipynb, full mode
    python lessons/execute.py 05 01_order_matters lessons/02_trajectory_specific_loo.ipynb
    python lessons/execute.py --fast 05       # DVE_TEACH_FAST=1: a timing check, nothing written
    python lessons/execute.py --no-write      # full mode, report times only

The source of a lesson is ``lessons/src/NN_name.py`` (jupytext py:percent); the notebook is built from
it, never the other way round (no jupytext pairing: a source may be an Otter Assign master with its
solutions inline, and the notebook is the learner's version, ``lessons/master.py``). Its cells (with
their tags) are read from the .py, a master's solutions, tests and raw cells are stripped
(`master.learner_notebook`), the cells get stable ids (``lNN-00``, ``lNN-01``, ...) so re-runs give small
diffs, and the notebook is executed.
Each notebook runs with nbclient in a new ``python3`` kernel whose working directory is
``lessons/`` (as in JupyterLab and under nbval). The committed notebooks carry the outputs of a
**full-mode** run, so GitHub/nbviewer show the real figures. After a run the notebook gets:
execution counts 1..n (checked), kernelspec ``python3``, no notebook-level ``widgets`` metadata
(ipywidgets state would bloat the file and go stale), no per-cell timing metadata. A notebook
whose run raised is not written, and neither is a --fast run (its outputs must not be committed).
Prints the seconds each lesson took, its slowest cells, and the image sizes.
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import master  # noqa: E402  (lessons/master.py: the Otter Assign master format)

LESSONS = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
MAX_IMAGE_KB = 250  # a warning above this: keep figures small (figsize ~ (8, 3.5), dpi ~ 80)


def lesson_paths(names: list[str]) -> list[Path]:
    """Resolve lesson names ('05', '05_reorder_and_watch', a path) to notebook paths."""
    every = sorted(LESSONS / f"{p.stem}.ipynb" for p in (LESSONS / "src").glob("[0-9][0-9]_*.py"))
    if not names:
        return every
    out = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        hits = [p for p in every if p.stem == stem or p.stem.split("_", 1)[0] == stem]
        if len(hits) != 1:
            known = ", ".join(p.stem for p in every) or "(none)"
            raise SystemExit(f"execute.py: no unique lesson matches {name!r}; lessons: {known}")
        out.append(hits[0])
    return out


def source_of(path: Path) -> Path:
    """The jupytext source ``lessons/src/NN_name.py`` of ``lessons/NN_name.ipynb``."""
    return path.parent / "src" / f"{path.stem}.py"


def from_source(path: Path) -> nbformat.NotebookNode:
    """The notebook built from `path`'s jupytext source: the learner's cells and tags (a master's
    solutions, tests and raw cells stripped), stable ids, no outputs."""
    src = source_of(path)
    if not src.exists():
        raise SystemExit(f"execute.py: {path.name} has no source {src.relative_to(LESSONS.parent)}; "
                         f"create it with: jupytext --set-formats ipynb,src//py:percent {path}")
    nb = master.learner_notebook(master.read(src))
    prefix = "l" + path.stem.split("_", 1)[0]
    for k, cell in enumerate(nb.cells):
        cell.id = f"{prefix}-{k:02d}"
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def clean(nb: nbformat.NotebookNode) -> None:
    """Strip widget state and timing metadata; set the kernelspec; check execution counts."""
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    expected = 1
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if cell.execution_count != expected:
            raise RuntimeError(
                f"cell {cell.get('id', '?')} has execution_count {cell.execution_count}, expected "
                f"{expected}: remove empty code cells so every code cell runs exactly once")
        expected += 1


def image_kb(nb: nbformat.NotebookNode) -> list[float]:
    """Sizes in KiB of the PNG/JPEG outputs stored in `nb`."""
    sizes = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for mime in ("image/png", "image/jpeg"):
                data = out.get("data", {}).get(mime)
                if data:
                    sizes.append(len(base64.b64decode(data)) / 1024)
    return sizes


def slowest_cells(nb: nbformat.NotebookNode, k: int = 3) -> list[tuple[int, float]]:
    """(execution_count, seconds) of the k slowest code cells, from nbclient's timing metadata."""
    from datetime import datetime
    out = []
    for cell in nb.cells:
        t = cell.metadata.get("execution", {})
        start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            secs = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                    - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            out.append((cell.execution_count, secs))
    return sorted(out, key=lambda x: -x[1])[:k]


def execute(path: Path, *, fast: bool, timeout: int, write: bool = True) -> tuple[float, list, nbformat.NotebookNode]:
    """Build `path` from its source, run it in a fresh kernel; write it if `write` and not `fast`.

    Returns (seconds, the slowest cells, the executed and cleaned notebook)."""
    nb = from_source(path)
    env_before = os.environ.get("DVE_TEACH_FAST")
    os.environ["DVE_TEACH_FAST"] = "1" if fast else "0"   # the kernel inherits this process's env
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(LESSONS)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("DVE_TEACH_FAST", None)
        else:
            os.environ["DVE_TEACH_FAST"] = env_before
    seconds = time.perf_counter() - start
    slow = slowest_cells(nb)
    clean(nb)
    nbformat.validate(nb)
    if write and not fast:
        nbformat.write(nb, path)
    return seconds, slow, nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="lessons to run (default: all), e.g. 05 or 05_reorder_and_watch")
    parser.add_argument("--fast", action="store_true", help="run with DVE_TEACH_FAST=1 to check times; writes nothing")
    parser.add_argument("--no-write", action="store_true", help="run and report, but leave the notebooks as they are")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)
    paths = lesson_paths(args.names)
    if not paths:
        print("execute.py: no lessons/src/NN_*.py found", file=sys.stderr)
        return 1
    mode = "fast" if args.fast else "full"
    failed = []
    rows = []
    for path in paths:
        print(f"[{mode}] {path.name} ...", flush=True)
        try:
            seconds, slow, nb = execute(path, fast=args.fast, timeout=args.timeout, write=not args.no_write)
        except (CellExecutionError, RuntimeError) as err:
            print(f"  FAILED (notebook not written):\n{err}", file=sys.stderr)
            failed.append(path.name)
            continue
        sizes = image_kb(nb)
        big = [s for s in sizes if s > MAX_IMAGE_KB]
        kib = len(nbformat.writes(nb)) / 1024
        rows.append((path.name, seconds, len(sizes), max(sizes, default=0.0), kib))
        cells = ", ".join(f"[{n}] {s:.1f} s" for n, s in slow)
        print(f"  {seconds:6.1f} s, {len(sizes)} images (largest {max(sizes, default=0):.0f} KiB), "
              f"notebook {kib:.0f} KiB{' (not written)' if args.fast or args.no_write else ''}; slowest cells: {cells}",
              flush=True)
        if big:
            print(f"  warning: {len(big)} image(s) over {MAX_IMAGE_KB} KiB: lower figsize/dpi", file=sys.stderr)
    print(f"\n{'lesson':40s} {'seconds':>8s} {'images':>7s} {'max KiB':>8s} {'file KiB':>9s}  ({mode} mode)")
    for name, seconds, n_img, largest, kib in rows:
        print(f"{name:40s} {seconds:8.1f} {n_img:7d} {largest:8.0f} {kib:9.0f}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
