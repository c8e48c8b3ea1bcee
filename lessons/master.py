"""A lesson's source as an Otter Assign master notebook, and the learner's notebook built from it.

A lesson source ``lessons/src/NN_name.py`` (jupytext py:percent) that starts with a raw
``# ASSIGNMENT CONFIG`` cell is a *master*: its graded exercises are Otter Assign questions with the
solution inline and public and hidden tests beside it. (A source without that cell is an ordinary
lesson and is used as it is.) The format, in the order of the cells of one graded exercise::

    # %% [raw]                              # BEGIN QUESTION / name: l09_momentum_carry / points: 1
    # %% [markdown]                         the exercise text
    # %% [raw]                              # BEGIN SOLUTION
    # %%                                    the answer cell: a TODO comment, then
                                            # BEGIN SOLUTION NO PROMPT ... # END SOLUTION (working)
                                            carry = <the answer>  # SOLUTION   (the learner sees `carry = ...`)
    # %% [raw]                              # END SOLUTION
    # %%                                    the feedback cell: ex.check_...(carry, ...) -- kept for learners
    # %% [raw]                              # BEGIN TESTS
    # %%                                    public tests: functions that assert ex.check_...(...) is right,
                                            its message (the hint, never the answer) as the failure text
    # %%                                    hidden tests: a first line "# HIDDEN", stricter checks
    # %% [raw]                              # END TESTS
    # %% [raw]                              # END QUESTION

Ungraded (open) exercises keep their worked answer in a code cell between ``# BEGIN SOLUTION NO
PROMPT`` and ``# END SOLUTION`` lines (the config sets ``strip_solutions_from_all_cells``).

`learner_notebook` builds what a learner opens on Binder (``lessons/NN_name.ipynb`` before
execution): the raw cells and the test cells dropped, every solution replaced as Otter Assign replaces
it (`replace_solutions`; ``tests/test_release.py`` checks that it agrees with otter's own function on
every source), code cells left empty by that dropped. ``lessons/release.py`` hands the master itself to
``otter assign`` for the graded release.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat

CONFIG = re.compile(r"#\s*ASSIGNMENT\s+CONFIG", re.I)
BEGIN_TESTS = re.compile(r"#\s*BEGIN\s+TESTS", re.I)
END_TESTS = re.compile(r"#\s*END\s+TESTS", re.I)
BEGIN_QUESTION = re.compile(r"#\s*BEGIN\s+QUESTION", re.I)

# Otter Assign's solution syntax for Python (otter/assign/solutions.py): a line ending in "# SOLUTION"
# becomes "name = ..." (an assignment) or "..."; a "# BEGIN SOLUTION" block becomes "..." and a
# "# BEGIN SOLUTION NO PROMPT" block disappears; lines ending in "# SOLUTION NO PROMPT", "# BEGIN
# PROMPT", "# END PROMPT" or "# SEED" are dropped.
_ASSIGNMENT = re.compile(r"(\s*(?:[\w.]+(?=[^\w.])(?:\[['\"]?.*['\"]?\])*(?:,\s*)?)+\s*=).* ?# ?SOLUTION")
_LINE = re.compile(r"(\s*).* ?# ?SOLUTION")
_BEGIN = re.compile(r"(\s*)# BEGIN SOLUTION( NO PROMPT)?")
_SKIP = ("# SOLUTION NO PROMPT", "# BEGIN PROMPT", "# END PROMPT", "# SEED")


def replace_solutions(lines: list[str]) -> list[str]:
    """The student's lines of one code cell: every solution replaced as Otter Assign does."""
    out, inside = [], False
    for line in lines:
        end = line.rstrip()
        if any(end.endswith(s) for s in _SKIP):
            continue
        if end.endswith("# END SOLUTION"):
            if not inside:
                raise ValueError(f"END SOLUTION without BEGIN SOLUTION in {lines}")
            inside = False
            continue
        if inside:
            continue
        begin = _BEGIN.match(line)
        if begin:
            inside = True
            if begin.group(2):
                continue
            line = begin.group(1) + "..."
        m = _ASSIGNMENT.match(line)
        if m:
            line = m.group(1) + " ..."
        else:
            m = _LINE.match(line)
            if m:
                line = m.group(1) + "..."
        out.append(line)
    if inside:
        raise ValueError(f"BEGIN SOLUTION without END SOLUTION in {lines}")
    return out


def read(src: Path) -> nbformat.NotebookNode:
    """A lesson source (jupytext py:percent) as a notebook, raw cells included; each cell's metadata
    keeps its tags only (jupytext's own keys, such as ``lines_to_next_cell``, are layout, not content)."""
    nb = jupytext.read(src, fmt="py:percent")
    for cell in nb.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
    return nb


def is_master(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook starts (first cell) with a raw ``# ASSIGNMENT CONFIG`` cell."""
    return bool(nb.cells) and nb.cells[0].cell_type == "raw" and bool(CONFIG.match(nb.cells[0].source.strip()))


def questions(nb: nbformat.NotebookNode) -> list[dict]:
    """The graded questions, in order: [{"name": str, "points": float}] (points default to 1, as in otter)."""
    out = []
    for cell in nb.cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and BEGIN_QUESTION.match(text):
            fields = dict(re.findall(r"^(\w+):\s*(.+)$", text, re.M))
            out.append({"name": fields["name"].strip(), "points": float(fields.get("points", 1))})
    return out


def _without_tests(cells: list) -> list:
    """The cells outside every BEGIN TESTS .. END TESTS region, those raw markers dropped too."""
    kept, inside = [], False
    for cell in cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and BEGIN_TESTS.match(text):
            inside = True
        elif cell.cell_type == "raw" and END_TESTS.match(text):
            inside = False
        elif not inside:
            kept.append(cell)
    return kept


def learner_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook a learner opens: no raw cells, no tests, no solutions (a copy; `nb` is untouched).
    A notebook that is not a master comes back as a copy with its cells unchanged."""
    out = nbformat.from_dict(nb)
    if not is_master(nb):
        return out
    cells = []
    for cell in _without_tests(out.cells):
        if cell.cell_type == "raw":
            continue
        if cell.cell_type == "code":
            cell.source = "\n".join(replace_solutions(cell.source.split("\n"))).strip("\n")
            if not cell.source.strip():
                continue
        cells.append(cell)
    out.cells = cells
    return out


def solution_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The master as one runnable notebook: the raw cells dropped, solutions and every test kept."""
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if c.cell_type != "raw"]
    return out
