#!/usr/bin/env python3
"""Sweep the lessons' checked claims over many seeds: the pass rate of every `nbval-check-output` line.

Usage (from the repository root)::

    python lessons/sweep.py --seeds 3-22                  # every lesson, fast mode, seeds 3..22
    python lessons/sweep.py 00 02 --seeds 3-22 -j 2        # two lessons, two notebooks at a time
    python lessons/sweep.py --full --seeds 3-7             # full mode (slow)
    python lessons/sweep.py --seeds 3-22 --no-write        # print the table, leave lessons/SWEEP.md alone
    python lessons/sweep.py 03 --seeds 3-22 --from-kept /tmp/kept   # re-tabulate runs saved with --keep

Each (lesson, seed) runs the lesson built from its jupytext source (``lessons/src/NN_name.py``, as
``execute.py`` builds it) top to bottom in a fresh ``python3`` kernel, working directory
``lessons/``, with ``DVE_TEACH_SEED=s``, ``DVE_TEACH_FAST=1`` (``0`` with ``--full``), one torch /
OpenMP thread, and ``PYTHONPATH`` starting with this checkout. Nothing is written to the stored
notebooks (``--keep DIR`` saves the executed copies there). The outputs of every cell tagged
``nbval-check-output`` are compared with the stored notebook's outputs for the same cell the way
nbval does under ``--nbval-lax`` (streams coalesced, images and metadata skipped, the sanitizer
``lessons/nbval_sanitize.cfg`` applied to both sides). A cell whose source differs from the stored
cell's is reported as stale: re-execute the lesson (``python lessons/execute.py NN``) first. (A check
cell is matched by its id, or else by its unique identical source: a run saved with --keep stays usable
after cells elsewhere in the lesson were added or removed, which renumbers the ids.)

The table has one row per printed line of each check cell (the line as stored, after the
sanitizer), plus a row for anything else nbval compares (stderr, rich outputs, extra lines): its
pass rate over the seeds and the seeds where it failed. A run that raised counts as a failure of
every check after the failing cell. The table is printed and, unless ``--no-write``, merged into
``lessons/SWEEP.md``: that file keeps one section per (mode, lesson); a new sweep of a lesson
replaces that lesson's section for its mode and leaves the others.

``-j`` runs that many notebooks at a time (default 1: each lesson already uses one core, and the
machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

LESSONS = Path(__file__).resolve().parent
ROOT = LESSONS.parent
SANITIZE_CFG = LESSONS / "nbval_sanitize.cfg"
SWEEP_MD = LESSONS / "SWEEP.md"
CHECK_TAG = "nbval-check-output"


# ----------------------------------------------------------------------------- comparison (as nbval)

def sanitize_patterns() -> list[tuple[str, str]]:
    text = SANITIZE_CFG.read_text()
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)


PATTERNS = sanitize_patterns()


def sanitize(s):
    if not isinstance(s, str):
        return s
    for regex, replace in PATTERNS:
        s = re.sub(regex, replace, s)
    return s


def _text(v) -> str:
    return "".join(v) if isinstance(v, list) else v


SKIP = {"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
        "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"}


def flatten(outputs: list[dict]) -> dict[str, list[str]]:
    """nbval's view of a cell's outputs: streams coalesced per name, then {key: [sanitized values]}."""
    streams: dict[str, str] = {}
    items: list[tuple[str, str]] = []
    for out in outputs:
        if out.get("output_type") == "stream":
            name = out.get("name", "stdout")
            if name not in streams:
                items.append((name, None))
                streams[name] = ""
            streams[name] += _text(out.get("text", ""))
        else:
            for key, val in out.items():
                if key in SKIP:
                    continue
                if key == "data":
                    for mime, v in val.items():
                        if mime not in SKIP:
                            items.append((mime, _text(v)))
                else:
                    items.append((key, json.dumps(val, sort_keys=True) if not isinstance(val, str) else val))
    flat: dict[str, list[str]] = defaultdict(list)
    for key, val in items:
        if val is None:  # a stream: process \b and \r as nbval does
            val = streams[key]
            old = None
            while old != val:  # a real backspace (nbval's own pattern is a no-op here)
                old, val = val, re.sub("[^\n]\x08", "", val)
            val = re.sub(r"^.*\r(?=[^\n])", "", val, flags=re.MULTILINE)
        flat[key].append(sanitize(val))
    return dict(flat)


def compare(run_outputs: list[dict], stored_outputs: list[dict]) -> list[tuple[str, bool]]:
    """Per-check results: one entry per stored stdout line, plus one for everything else.

    The cell passes under nbval iff every entry passes."""
    run, ref = flatten(run_outputs), flatten(stored_outputs)
    ref_lines = "".join(ref.get("stdout", [])).splitlines()
    run_lines = "".join(run.get("stdout", [])).splitlines()
    results = []
    for k, line in enumerate(ref_lines):
        results.append((line, k < len(run_lines) and run_lines[k] == line))
    rest_ref = {k: v for k, v in ref.items() if k != "stdout"}
    rest_run = {k: v for k, v in run.items() if k != "stdout"}
    same_rest = rest_ref == rest_run and len(run_lines) == len(ref_lines)
    label = "(anything else nbval compares: stderr, rich output, the number of lines)"
    results.append((label, same_rest))
    return results


# ----------------------------------------------------------------------------- one run

def run_one(lesson: str, seed: int, full: bool, timeout: int, keep: str | None) -> dict:
    """Execute one lesson for one seed in a subprocess; return {'cells': {id: outputs}, 'error': ...}."""
    with tempfile.TemporaryDirectory(prefix="dve-sweep-") as tmp:
        out_json = Path(tmp) / "result.json"
        env = {**os.environ,
               "DVE_TEACH_SEED": str(seed), "DVE_TEACH_FAST": "0" if full else "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
               "MPLBACKEND": "agg"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_one", lesson, "--_out", str(out_json),
               "--timeout", str(timeout)]
        if keep:
            cmd += ["--keep", keep, "--_seed", str(seed)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if out_json.exists():
            res = json.loads(out_json.read_text())
        else:
            res = {"cells": {}, "error": f"runner failed (rc {proc.returncode}): {proc.stderr[-2000:]}"}
        res["seconds"] = seconds
        return res


def _one(lesson: str, out: str, timeout: int, keep: str | None, seed: int | None) -> None:
    """Runs inside the subprocess: build, execute, dump the check cells' outputs as JSON."""
    sys.path.insert(0, str(LESSONS))
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    import execute as ex

    path = ex.lesson_paths([lesson])[0]
    nb = ex.from_source(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(LESSONS)}})
    error = None
    try:
        client.execute()
    except CellExecutionError as err:
        error = str(err)[-1500:]
    except Exception as err:  # noqa: BLE001 - timeouts, dead kernels: report, don't crash the sweep
        error = f"{type(err).__name__}: {str(err)[-1500:]}"
    cells = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", []):
            cells[cell.id] = {"source": cell.source, "outputs": [dict(o) for o in cell.get("outputs", [])],
                              "ran": cell.get("execution_count") is not None}
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / f"{path.stem}.seed{seed}.ipynb")
    Path(out).write_text(json.dumps({"lesson": path.stem, "cells": cells, "error": error}, default=str))


# ----------------------------------------------------------------------------- the sweep

def stored_checks(path: Path) -> list[dict]:
    import nbformat
    nb = nbformat.read(path, as_version=4)
    return [{"id": c.id, "source": c.source, "outputs": c.get("outputs", [])}
            for c in nb.cells if c.cell_type == "code" and CHECK_TAG in c.metadata.get("tags", [])]


def parse_seeds(spec: str) -> list[int]:
    seeds = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            seeds += list(range(int(a), int(b) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def short(s: str, n: int = 110) -> str:
    s = s.replace("|", "\\|").strip()
    return s if len(s) <= n else s[: n - 1] + "…"


def from_kept(lesson: str, seed: int, kept: str) -> dict:
    """A run's result read back from a notebook that an earlier sweep saved with --keep."""
    import nbformat
    path = Path(kept) / f"{lesson}.seed{seed}.ipynb"
    if not path.exists():
        return {"cells": {}, "error": f"no saved run {path}", "seconds": float("nan")}
    nb = nbformat.read(path, as_version=4)
    cells = {c.id: {"source": c.source, "outputs": [dict(o) for o in c.get("outputs", [])],
                    "ran": c.get("execution_count") is not None}
             for c in nb.cells if c.cell_type == "code" and CHECK_TAG in c.metadata.get("tags", [])}
    ran_all = all(c.get("execution_count") is not None for c in nb.cells if c.cell_type == "code")
    return {"cells": cells, "error": None if ran_all else "the saved run stopped early", "seconds": float("nan")}


def _match(cells: dict, stored: dict) -> dict | None:
    """The run's check cell for a stored check cell: the one with the same id, or else the only one with
    the same source (a saved run of an earlier build of the lesson, whose cells were numbered differently
    because cells elsewhere were added or removed; a check cell's source is what it claims)."""
    got = cells.get(stored["id"])
    if got is not None and got["source"] == stored["source"]:
        return got
    same = [c for c in cells.values() if c["source"] == stored["source"]]
    return same[0] if len(same) == 1 else got


def sweep(lessons: list[Path], seeds: list[int], full: bool, jobs: int, timeout: int, keep: str | None,
          kept: str | None = None):
    tasks = [(p, s) for p in lessons for s in seeds]
    results: dict[tuple[str, int], dict] = {}

    def work(task):
        p, s = task
        return task, (from_kept(p.stem, s, kept) if kept else run_one(p.stem, s, full, timeout, keep))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for (p, s), res in pool.map(work, tasks):
            results[(p.stem, s)] = res
            status = "ERROR" if res.get("error") else ("read" if kept else "ran")
            print(f"  {p.stem} seed {s}: {status} in {res['seconds']:.0f} s", flush=True)

    tables = {}
    for p in lessons:
        stored = stored_checks(p)
        rows = []   # (cell id, line, passed seeds, failed seeds)
        stale = []
        errors = {s: results[(p.stem, s)]["error"] for s in seeds if results[(p.stem, s)].get("error")}
        for cell in stored:
            per_line: dict[int, tuple[str, list, list]] = {}
            for s in seeds:
                got = _match(results[(p.stem, s)]["cells"], cell)
                if got is None or got["source"] != cell["source"]:
                    if got is not None and cell["id"] not in stale:
                        stale.append(cell["id"])
                    checks = [(line, False) for line, _ in compare([], cell["outputs"])]
                elif not got["ran"]:
                    checks = [(line, False) for line, _ in compare([], cell["outputs"])]
                else:
                    checks = compare(got["outputs"], cell["outputs"])
                for k, (line, ok) in enumerate(checks):
                    entry = per_line.setdefault(k, (line, [], []))
                    (entry[1] if ok else entry[2]).append(s)
            for k, (line, ok_seeds, bad_seeds) in sorted(per_line.items()):
                rows.append((cell["id"], line, ok_seeds, bad_seeds))
        secs = [results[(p.stem, s)]["seconds"] for s in seeds]
        tables[p.stem] = {"rows": rows, "stale": stale, "errors": errors,
                          "median_s": sorted(secs)[len(secs) // 2], "from_kept": kept}
    return tables


def render(stem: str, table: dict, seeds: list[int], mode: str) -> str:
    lines = [f"### {stem} · {mode} mode · seeds {fmt_seeds(seeds)}", ""]
    if table.get("from_kept"):
        lines.append(f"Tabulated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC from the runs an "
                     f"earlier sweep saved with --keep (`--from-kept`), against the stored notebook.")
    else:
        lines.append(f"Swept {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC; median "
                     f"{table['median_s']:.0f} s per run (kernel start included).")
    if table["stale"]:
        lines.append(f"**Stale:** cells {', '.join(table['stale'])} differ from the stored notebook: "
                     "re-execute the lesson.")
    for s, err in table["errors"].items():
        first = err.strip().splitlines()[-1] if err.strip() else err
        lines.append(f"**Seed {s} raised:** `{short(first, 160)}`")
    lines += ["", "| cell | check line (stored output) | pass rate | failing seeds |", "|---|---|---|---|"]
    for cid, line, ok, bad in table["rows"]:
        if line.startswith("(anything else") and not bad:
            continue
        n = len(ok) + len(bad)
        rate = f"{len(ok)}/{n}" + (" ✓" if not bad else "")
        lines.append(f"| {cid} | {short(line)} | {rate} | {', '.join(map(str, bad)) or '—'} |")
    return "\n".join(lines) + "\n"


def fmt_seeds(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]} ({len(seeds)} seeds)"
    return ", ".join(map(str, seeds)) + f" ({len(seeds)} seeds)"


HEADER = """# Sweep of the lessons' checked claims over seeds

Written by `python lessons/sweep.py` (see its docstring). Each lesson is run in a fresh kernel for
every seed listed (`DVE_TEACH_SEED`), in fast mode (`DVE_TEACH_FAST=1`, as in CI) or full mode, and
the printed output of every `nbval-check-output` cell is compared line by line with the stored
notebook (full mode, seed 0) as nbval compares it. A line is a checked claim; its pass rate must be
100% (CI itself runs seeds 0–2 in fast mode). One section per (mode, lesson), the newest sweep of
that lesson in that mode; rows that pass everywhere are marked ✓.
"""


def write_md(new_sections: dict[tuple[str, str], str]) -> None:
    sections: dict[tuple[str, str], str] = {}
    if SWEEP_MD.exists():
        text = SWEEP_MD.read_text()
        for block in re.split(r"(?m)^(?=### )", text):
            m = re.match(r"### (\S+) · (\w+) mode", block)
            if m:
                block = re.split(r"(?m)^## ", block)[0]          # not the next mode's heading and summary
                sections[(m.group(2), m.group(1))] = block.rstrip() + "\n"
    sections.update(new_sections)
    out = [HEADER]
    for mode in ("fast", "full"):
        keys = sorted(k for k in sections if k[0] == mode)
        if not keys:
            continue
        out.append(f"## {mode} mode\n")
        summary = ["| lesson | seeds | check lines | lines at 100% |", "|---|---|---|---|"]
        for k in keys:
            rows = [r for r in sections[k].splitlines() if re.match(r"\| l\d\d-\d\d ", r)]
            full_rows = [r for r in rows if "✓" in r]
            seeds = re.search(r"seeds (.*)$", sections[k].splitlines()[0]).group(1)
            summary.append(f"| {k[1]} | {seeds} | {len(rows)} | {len(full_rows)} |")
        out.append("\n".join(summary) + "\n")
        out += [sections[k] for k in keys]
    SWEEP_MD.write_text("\n".join(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="lessons (default: all), e.g. 00 05_reorder_and_watch")
    parser.add_argument("--seeds", default="3-22", help="seeds, e.g. 3-22 or 1,4,9 (default 3-22)")
    parser.add_argument("--full", action="store_true", help="full mode (DVE_TEACH_FAST=0); default fast")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="notebooks run at a time (default 1)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default 900)")
    parser.add_argument("--keep", help="save the executed notebooks in this folder")
    parser.add_argument("--no-write", action="store_true", help="do not update lessons/SWEEP.md")
    parser.add_argument("--from-kept", metavar="DIR", help="tabulate the notebooks an earlier --keep saved in DIR "
                        "instead of running (the lesson's check cells must not have changed since)")
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        _one(args._one, args._out, args.timeout, args.keep, args._seed)
        return 0
    sys.path.insert(0, str(LESSONS))
    import execute as ex
    paths = ex.lesson_paths(args.names)
    seeds = parse_seeds(args.seeds)
    mode = "full" if args.full else "fast"
    print(f"sweep: {len(paths)} lesson(s) × {len(seeds)} seeds, {mode} mode, {args.jobs} job(s)", flush=True)
    tables = sweep(paths, seeds, args.full, args.jobs, args.timeout, args.keep, args.from_kept)
    sections = {}
    bad_total = 0
    for stem, table in tables.items():
        sec = render(stem, table, seeds, mode)
        sections[(mode, stem)] = sec
        bad = [r for r in table["rows"] if r[3]]
        bad_total += len(bad)
        print()
        print(sec)
    if not args.no_write:
        write_md(sections)
        print(f"written: {SWEEP_MD.relative_to(ROOT)}")
    print(f"check lines under 100%: {bad_total}")
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
