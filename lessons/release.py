#!/usr/bin/env python3
"""An instructor's release: student notebooks without solutions, and otter-grader autograders.

Usage (from the repository root)::

    python lessons/release.py OUT            # build OUT/ (see below)
    python lessons/release.py OUT --grade    # ... then autograde the solution and the untouched student
                                             # version of every assignment with `otter run`, print scores

Writes
- ``OUT/student/lessons/NN_*.ipynb``: every lesson as students get it, widget cells kept as they are.
  Every lesson's source is a graded master (``lessons/master.py``: the solutions inline, public and
  hidden tests) and goes through ``otter assign`` like an assignment: solutions replaced by ``...``,
  outputs cleared, public tests only (``grader.check`` cells), its autograder in
  ``OUT/autograder/lessons/``; the paragraph that points to the solutions in the lesson's source is
  replaced by a note that the instructor releases them. A source that is not a master is refused.
- ``OUT/student/assignments/aN_*.ipynb``: the graded assignments as students get them — every
  ``# BEGIN SOLUTION`` region replaced by ``...``, the public tests only (in the notebook's metadata,
  read by ``grader.check``), no hidden test.
- ``OUT/autograder/aN_*-autograder.zip``: otter-grader's autograder (local ``otter run`` or Gradescope);
  ``OUT/autograder/lessons/NN_*-autograder.zip`` for the lessons.
- ``OUT/instructor/``: the solution notebooks (with every test) and ``README.md`` — how to release and
  grade, each lesson's minutes and each assignment's graded questions and points.

The assignments' sources are ``lessons/assignments/src/aN_*.py``: jupytext py:percent files in Otter
Assign's notebook format (raw cells ``# BEGIN QUESTION`` / ``SOLUTION`` / ``TESTS``; test cells are
functions that assert, a first line ``# HIDDEN`` marks a hidden test). Why otter-grader and not
nbgrader: ``lessons/README.md``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import master  # noqa: E402  (lessons/master.py: the Otter Assign master format)

LESSONS = Path(__file__).resolve().parent
ASSIGNMENTS = LESSONS / "assignments" / "src"
#: otter-grader's command line, through this Python (a console script may not be on PATH, e.g. pyenv
#: before a rehash)
OTTER = [sys.executable, "-m", "otter"]
#: the file that marks a folder as built by this script (only such a folder is emptied and rebuilt)
MARKER = ".dve-teach-release"
#: the paragraph that points learners to the solutions in the lesson's source ("Worked solutions: ...")
SOLUTIONS_LINE = re.compile(r"^Worked solutions:.*?(?=\n\s*\n|\Z)", re.M | re.S)
RELEASED_NOTE = "Solutions: your instructor releases them after the deadline."


def lesson_notebooks() -> list[Path]:
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def lesson_source(notebook: Path) -> Path:
    return LESSONS / "src" / f"{notebook.stem}.py"


def assignment_sources() -> list[Path]:
    return sorted(ASSIGNMENTS.glob("a[0-9]_*.py"))


def questions(src: Path) -> list[dict]:
    """The graded questions of a master source: [{"name", "points"}] in order."""
    return master.questions(master.read(src))


def assign(src: Path, out: Path, work: Path, kind: str = "assignments") -> dict:
    """Otter Assign on one master source (an assignment, or a lesson when `kind` is "lessons"): the
    student notebook, the autograder zip and the solution notebook, copied under `out`. Returns their
    paths and the questions."""
    nb_master = work / src.stem / f"{src.stem}.ipynb"
    nb_master.parent.mkdir(parents=True)
    nb = master.read(src)
    if kind == "lessons":
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = SOLUTIONS_LINE.sub(RELEASED_NOTE, cell.source)
    nbformat.write(nb, nb_master)
    dist = work / src.stem / "dist"
    run = subprocess.run([*OTTER, "assign", nb_master.name, str(dist)], cwd=nb_master.parent, capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise SystemExit(f"otter assign failed on {src.name}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    (zipped,) = (dist / "autograder").glob("*.zip")
    grader_dir = out / "autograder" / ("lessons" if kind == "lessons" else "")
    paths = {"student": out / "student" / kind / nb_master.name,
             "autograder": grader_dir / f"{src.stem}-autograder.zip",
             "solution": out / "instructor" / "solutions" / nb_master.name}
    for key, source in (("student", dist / "student" / nb_master.name), ("autograder", zipped),
                        ("solution", dist / "autograder" / nb_master.name)):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, paths[key])
    return {"name": src.stem, "kind": kind, "questions": questions(src), **{k: str(v) for k, v in paths.items()}}


def grade(notebook: str, autograder: str, work: Path) -> dict:
    """`otter run` one submission: {"score", "max", "seconds", "per_question"}."""
    out = Path(tempfile.mkdtemp(dir=work))
    start = time.perf_counter()
    run = subprocess.run([*OTTER, "run", "--no-logo", "-a", autograder, "-o", str(out), notebook],
                         capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    if run.returncode != 0 or not (out / "results.json").exists():
        raise SystemExit(f"otter run failed on {notebook}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    tests = [t for t in json.loads((out / "results.json").read_text())["tests"] if "max_score" in t]
    return {"score": sum(float(t.get("score") or 0) for t in tests), "max": sum(float(t["max_score"]) for t in tests),
            "seconds": seconds, "per_question": {t["name"]: float(t.get("score") or 0) for t in tests}}


def lesson_minutes() -> dict[str, str]:
    """Minutes per lesson, read from the lessons index (lessons/README.md)."""
    rows = re.findall(r"^\| (\d\d) \| \[([^\]]+)\]\([^)]*\) \| (\d+) \|", (LESSONS / "README.md").read_text(), re.M)
    return {f"{nn} {title}": minutes for nn, title, minutes in rows}


def instructor_readme(released: list[dict]) -> str:
    lines = ["# dve-teach — instructor's release", "",
             "Built by `python lessons/release.py`. Code: MIT (`LICENSE`); lesson text and figures: CC BY 4.0",
             "(`lessons/LICENSE.md`).", "",
             "## What is here", "",
             "- `student/lessons/`: the lessons without outputs and without solutions. Their exercises give",
             "  automatic feedback (right, or a hint that names the mistake) and are graded questions: otter's",
             "  `grader.check(...)` cells, an autograder per lesson in `autograder/lessons/`.",
             "- `student/assignments/`: the graded assignments as students get them (`...` where an answer goes;",
             "  public tests only, run by the `grader.check(...)` cells).",
             "- `autograder/`: one otter-grader autograder zip per assignment (public and hidden tests), and",
             "  `autograder/lessons/` one per lesson.",
             "- `instructor/solutions/`: the solution notebooks of the lessons and assignments, with every test.", "",
             "## Releasing and grading (otter-grader)", "",
             "1. Hand out `student/` (a JupyterHub shared folder, nbgitpuller link, or an LMS upload). Students need",
             "   `pip install dve-teach otter-grader` (or this repository's Binder / `environment.yml`).",
             "2. Collect each student's executed notebook.",
             "3. Grade locally, no Docker: `otter run -a autograder/a1_find_mislabelled-autograder.zip -o results/ "
             "submission.ipynb` (writes `results/results.json`); or for a folder of submissions with Docker, "
             "`otter grade -a <zip> -p submissions/`.",
             "   On Gradescope: upload the autograder zip as a programming assignment; add dve-teach to the",
             "   zip's `requirements.txt` first (`pip install` from this repository or PyPI).",
             "4. Hidden tests recompute each result from the student's own objects, so they hold for any seed",
             "   and any model a student chooses; each assignment runs in under a minute on one CPU.", "",
             "## Graded questions", ""]
    for a in released:
        total = sum(q["points"] for q in a["questions"])
        if a.get("kind") == "lessons":
            a = {**a, "name": f"lesson {a['name']}"}
        lines += [f"**{a['name']}** ({total:g} points): " +
                  ", ".join(f"`{q['name']}` {q['points']:g}" for q in a["questions"]), ""]
    lines += ["## Lessons and their minutes", "", "| lesson | minutes |", "|---|---|"]
    lines += [f"| {name} | {m} |" for name, m in lesson_minutes().items()]
    return "\n".join(lines) + "\n"


def release(out: Path, do_grade: bool = False) -> dict:
    """Build the release under `out` (emptied first if an earlier release; any other non-empty folder is
    refused, never deleted); with `do_grade`, autograde both versions."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file()):
            raise SystemExit(f"{out} exists and is not a release built by lessons/release.py: give a new or "
                             "empty folder (nothing was deleted)")
        shutil.rmtree(out)
    (out / "student" / "lessons").mkdir(parents=True)
    (out / MARKER).write_text("built by lessons/release.py; the next release may empty this folder\n")
    report: dict = {"assignments": [], "lessons": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs = [(lesson_source(nb), "lessons") for nb in lesson_notebooks()] + \
               [(src, "assignments") for src in assignment_sources()]
        plain = [src.name for src, _ in jobs if not master.is_master(master.read(src))]
        if plain:
            raise SystemExit(f"not Otter Assign masters (no raw '# ASSIGNMENT CONFIG' cell first): {plain}; "
                             "see lessons/master.py for the format")
        for src, kind in jobs:
            start = time.perf_counter()
            a = assign(src, out, work, kind)
            a["build_seconds"] = time.perf_counter() - start
            if do_grade:
                a["graded"] = {"solution": grade(a["solution"], a["autograder"], work),
                               "student": grade(a["student"], a["autograder"], work)}
            report[kind].append(a)
    (out / "instructor" / "README.md").write_text(instructor_readme(report["lessons"] + report["assignments"]))
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="the release folder: new, empty, or an earlier release (emptied first)")
    p.add_argument("--grade", action="store_true", help="autograde the solution and the student version")
    args = p.parse_args(argv)
    report = release(args.out, args.grade)
    for a in report["lessons"] + report["assignments"]:
        line = f"{a['name']}: built in {a['build_seconds']:.1f} s"
        for version, g in a.get("graded", {}).items():
            line += f"; {version} {g['score']:g}/{g['max']:g} in {g['seconds']:.1f} s"
        print(line)
    print(f"release written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
