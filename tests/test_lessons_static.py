"""Static checks of every committed lesson notebook lessons/NN_*.ipynb (no kernel needed).

Per lesson: kernelspec python3; no stored ipywidgets state; every code cell executed, execution
counts 1..n (a clean top-to-bottom run by lessons/execute.py); no error outputs; images small;
imports dve_teach in the first code cell, which also seeds; no long helper functions defined in the
lesson; sections in order (goals -> "What you learned" -> exercises); at least one cell tagged
nbval-check-output with a stored output; its source is a graded master and the lesson points to it;
the last cell links to the next lesson (the last lesson back to the index); listed in
lessons/README.md with a Binder link that opens JupyterLab at that notebook; in step with its
jupytext source lessons/src/NN_*.py (the learner's build of it: same cells, same tags).
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
PATHS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
INDEX = LESSONS / "README.md"
BINDER = "https://mybinder.org/v2/gh/dve-teach/dve-teach/HEAD?urlpath=lab/tree/lessons/{name}"
MAX_IMAGE_KIB = 250
MAX_NOTEBOOK_KIB = 2048
MAX_HELPER_LINES = 12  # "a lesson defines no long helpers": longer functions belong in dve_teach


def _master():
    """lessons/master.py (the Otter Assign master format of the lessons' sources), imported by path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lessons_master", LESSONS / "master.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _python(source: str) -> str:
    """Cell source with IPython magics turned into plain Python (so `ast` can parse it)."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


lesson = pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])


def test_there_are_lessons():
    assert PATHS, "no lessons/NN_*.ipynb found"


def test_every_lesson_has_a_jupytext_source_and_back():
    sources = sorted(p.stem for p in (LESSONS / "src").glob("*.py"))
    assert sources == [p.stem for p in PATHS], (
        f"lessons/src holds {sources}, the notebooks are {[p.stem for p in PATHS]}: each lesson is a "
        "pair NN_name.ipynb + src/NN_name.py (python lessons/execute.py NN builds the notebook)")


@lesson
def test_notebook_is_in_step_with_its_source(path):
    pytest.importorskip("jupytext")
    src = _master().learner_notebook(_master().read(LESSONS / "src" / f"{path.stem}.py"))
    want = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in src.cells]
    have = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in _read(path).cells]
    diff = [k for k, (a, b) in enumerate(zip(want, have)) if a != b]
    assert len(want) == len(have) and not diff, (
        f"{path.name} is out of step with src/{path.stem}.py ({len(have)} vs {len(want)} cells, "
        f"first differing cell {diff[:1]}): run python lessons/execute.py {path.stem}")


def test_numbers_are_consecutive_from_00():
    numbers = [int(p.name[:2]) for p in PATHS]
    assert numbers == list(range(len(PATHS))), f"lesson numbers {numbers} should run 00, 01, ... without gaps"


@lesson
def test_kernelspec_is_python3(path):
    nb = _read(path)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{path.name}: kernelspec must be python3 (re-run: python lessons/execute.py {path.stem})")


@lesson
def test_no_stored_widget_state(path):
    nb = _read(path)
    assert "widgets" not in nb.metadata, (
        f"{path.name}: notebook metadata holds ipywidgets state; python lessons/execute.py strips it")


@lesson
def test_executed_top_to_bottom_without_errors(path):
    nb = _read(path)
    counts = [c.execution_count for c in _code(nb)]
    assert counts, f"{path.name} has no code cells"
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..n: run python lessons/execute.py {path.stem}")
    errors = [(c.execution_count, o.get("ename")) for c in _code(nb) for o in c.outputs
              if o.output_type == "error"]
    assert not errors, f"{path.name}: stored error outputs (cell, exception): {errors}"


@lesson
def test_images_and_file_are_small(path):
    nb = _read(path)
    for cell in _code(nb):
        for out in cell.outputs:
            for mime in ("image/png", "image/jpeg"):
                data = out.get("data", {}).get(mime)
                if data:
                    kib = len(base64.b64decode(data)) / 1024
                    assert kib <= MAX_IMAGE_KIB, (
                        f"{path.name} cell {cell.execution_count}: a {kib:.0f} KiB image; lower figsize/dpi")
    kib = path.stat().st_size / 1024
    assert kib <= MAX_NOTEBOOK_KIB, f"{path.name} is {kib:.0f} KiB"


@lesson
def test_first_code_cell_imports_dve_teach_and_seeds(path):
    first = _code(_read(path))[0].source
    assert re.search(r"^\s*import dve_teach as dt\b", first, re.M), (
        f"{path.name}: the first code cell must `import dve_teach as dt`")
    assert re.search(r"seed", first), f"{path.name}: the first code cell must seed everything"


@lesson
def test_no_long_helpers_defined_in_the_lesson(path):
    import ast
    long = []
    for cell in _code(_read(path)):
        for node in ast.walk(ast.parse(_python(cell.source))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_HELPER_LINES:
                    long.append(f"{node.name} ({n} lines)")
    assert not long, f"{path.name} defines long helpers {long}: move them into dve_teach with a test"


@lesson
def test_sections_in_order(path):
    text = _markdown(_read(path)).lower()
    headings = [h.strip() for h in re.findall(r"^#+\s*(.+)$", text, re.M)]

    def first(pattern):
        hits = [i for i, h in enumerate(headings) if re.search(pattern, h)]
        assert hits, f"{path.name}: no heading matching {pattern!r} among {headings}"
        return hits[0]

    goals, learned, exercises = first(r"goal"), first(r"what you learned"), first(r"^exercises\b")
    assert goals < learned < exercises, (
        f"{path.name}: sections should run goals -> What you learned -> exercises")


@lesson
def test_exercises_inside_the_lesson(path):
    """At least two exercise cells with an automatic check before "What you learned": a TODO scaffold
    with ex.check_...(answer, ...) in it or in the code cell right after it."""
    cells = _read(path).cells
    end = next(k for k, c in enumerate(cells) if c.cell_type == "markdown"
               and re.search(r"^#+\s*what you learned", c.source, re.I | re.M))
    code = [c for c in cells[:end] if c.cell_type == "code"]
    scaffolds = [c for k, c in enumerate(code) if re.search(r"\bex\.check_\w+\(", c.source)
                 and ("TODO" in c.source or (k > 0 and "TODO" in code[k - 1].source))]
    assert len(scaffolds) >= 2, (f"{path.name}: needs at least two exercise cells inside the lesson (a TODO "
                                 f"scaffold followed by ex.check_...(answer, ...)), found {len(scaffolds)}")


@lesson
def test_has_a_checked_output_cell(path):
    checked = [c for c in _code(_read(path)) if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked, (f"{path.name}: tag at least one cell `nbval-check-output` that prints a rounded, "
                     "mode-independent summary")
    for c in checked:
        assert c.outputs, f"{path.name} cell {c.execution_count}: a checked cell needs a stored output"


@lesson
def test_solutions_exist_and_are_referenced(path):
    """Every lesson's source is a graded master (lessons/master.py); its notebook points to the source
    (the solutions are inline there) and carries no solution, and every question of the master has a
    solution, a public test and a hidden test."""
    text = "\n".join(c.source for c in _read(path).cells)
    source = _master().read(LESSONS / "src" / f"{path.stem}.py")
    assert _master().is_master(source), (f"src/{path.stem}.py is not a graded master: start it with a raw "
                                         "'# ASSIGNMENT CONFIG' cell (lessons/master.py)")
    assert f"src/{path.stem}.py" in text, f"{path.name} should point learners to its source src/{path.stem}.py"
    code = "\n".join(c.source for c in _read(path).cells if c.cell_type == "code")
    assert "# SOLUTION" not in code and "BEGIN SOLUTION" not in code, f"{path.name} carries a solution marker"
    questions = _master().questions(source)
    assert len(questions) >= 2, f"src/{path.stem}.py: at least two graded questions, found {questions}"
    parts, current = {}, None
    for cell in source.cells:
        head = cell.source.strip()
        if cell.cell_type == "raw" and re.match(r"#\s*BEGIN\s+QUESTION", head):
            current = re.search(r"^name:\s*(\S+)", head, re.M).group(1)
            parts[current] = {"solution": False, "public": 0, "hidden": 0}
        elif cell.cell_type == "raw" and re.match(r"#\s*END\s+QUESTION", head):
            current = None
        elif current and cell.cell_type == "code":
            if "# SOLUTION" in cell.source:
                parts[current]["solution"] = True
            elif re.match(r"def test_", head):
                parts[current]["public"] += 1
            elif head.startswith("# HIDDEN") and "def test_" in head:
                parts[current]["hidden"] += 1
    incomplete = {q: v for q, v in parts.items() if not (v["solution"] and v["public"] and v["hidden"])}
    assert not incomplete, f"src/{path.stem}.py: questions without a solution, a public or a hidden test: {incomplete}"


@lesson
def test_last_cell_links_to_the_next_lesson(path):
    last = _read(path).cells[-1]
    assert last.cell_type == "markdown", f"{path.name}: the last cell should be markdown with a link onward"
    i = PATHS.index(path)
    target = PATHS[i + 1].name if i + 1 < len(PATHS) else "README.md"
    assert f"]({target})" in last.source, f"{path.name}: the last cell should link to ({target})"


@lesson
def test_listed_in_index_with_binder_link(path):
    index = INDEX.read_text()
    assert f"]({path.name})" in index, f"lessons/README.md does not link {path.name}"
    assert BINDER.format(name=path.name) in index, (
        f"lessons/README.md needs the Binder link {BINDER.format(name=path.name)}")


def test_index_links_only_existing_lessons():
    index = INDEX.read_text()
    linked = set(re.findall(r"\]\((\d\d_[a-z0-9_]+\.ipynb)\)", index))
    binder = set(re.findall(r"urlpath=lab/tree/lessons/(\d\d_[a-z0-9_]+\.ipynb)", index))
    names = {p.name for p in PATHS}
    assert linked == names, f"index links {sorted(linked - names)} missing; lessons not linked {sorted(names - linked)}"
    assert binder == names, f"Binder links {sorted(binder - names)} missing; lessons without one {sorted(names - binder)}"
    owners = set(re.findall(r"mybinder\.org/v2/gh/([^/]+/[^/]+)/", index))
    assert owners == {"dve-teach/dve-teach"}, f"use one repository in every Binder link, got {owners}"
