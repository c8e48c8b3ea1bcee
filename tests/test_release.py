"""The instructor's release (`lessons/release.py`): built once, then checked.

- Every assignment's and every graded lesson's solution notebook gets full marks from its otter-grader
  autograder and the untouched student notebook gets zero — without crashing the grader, on one CPU
  (``taskset`` where available), within a grader's 10-minute timeout (lessons in fast mode, as in CI).
- No student notebook holds a solution: no line of a master's solution regions, no hidden test, no
  line of a lesson's solutions file, no stored output, no pointer to solutions.
- ``lessons/master.py`` strips solutions exactly as otter's own function does, on every source.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("otter") is None,
                                reason="otter-grader is not installed (pip install -e '.[test]')")


def _release_module():
    spec = importlib.util.spec_from_file_location("release", ROOT / "lessons" / "release.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def built(tmp_path_factory, monkeypatch_module):
    rel = _release_module()
    out = tmp_path_factory.mktemp("release") / "out"
    if shutil.which("taskset"):   # the grader's one CPU
        real = rel.subprocess.run
        monkeypatch_module.setattr(rel.subprocess, "run", lambda cmd, **kw: real(
            ["taskset", "-c", "0", *cmd] if cmd[:4] == [*rel.OTTER, "run"] else cmd, **kw))
    return rel, out, rel.release(out, do_grade=True)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_solutions_get_full_marks_and_students_zero(built):
    rel, _, report = built
    names = {a["name"] for a in report["assignments"]}
    assert names == {p.stem for p in (ROOT / "lessons" / "assignments" / "src").glob("a[0-9]_*.py")} and len(names) >= 2
    lessons = {p.stem for p in rel.lesson_notebooks()}
    assert {a["name"] for a in report["lessons"]} == lessons and lessons, "every lesson is released graded"
    for a in report["assignments"] + report["lessons"]:
        sol, stu = a["graded"]["solution"], a["graded"]["student"]
        total = sum(q["points"] for q in a["questions"])
        assert sol["max"] == stu["max"] == total > 0, a
        assert sol["score"] == total, f"{a['name']}: the solution lost points: {sol['per_question']}"
        assert stu["score"] == 0, f"{a['name']}: the untouched student version scored: {stu['per_question']}"
        assert set(sol["per_question"]) == {q["name"] for q in a["questions"]}


def test_stripping_agrees_with_otter():
    from otter.assign.solutions import replace_solutions
    rel = _release_module()
    sources = [rel.lesson_source(p) for p in rel.lesson_notebooks()] + rel.assignment_sources()
    marked = 0
    for src in sources:
        for cell in rel.master.read(src).cells:
            if cell.cell_type == "code":
                lines = cell.source.split("\n")
                assert rel.master.replace_solutions(lines) == replace_solutions(lines, "python"), (src.name, cell.source)
                marked += "SOLUTION" in cell.source
    assert marked >= 6, "too few solution cells to compare: the test would prove nothing"


def _solution_lines(src: Path) -> list[str]:
    """Code lines inside the source's # BEGIN SOLUTION ... # END SOLUTION regions (and # SOLUTION lines),
    except function signatures (the exercise text names the function to write)."""
    lines, inside = [], False
    for cell in jupytext.read(src).cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            s = line.strip()
            if s.startswith("# BEGIN SOLUTION"):
                inside = True
            elif s == "# END SOLUTION":
                inside = False
            elif (inside or s.endswith("# SOLUTION")) and len(s) > 8 and not s.startswith("def "):
                lines.append(s.removesuffix("# SOLUTION").strip())   # a signature is part of the exercise text
    return lines


def _hidden_tests(src: Path) -> list[str]:
    return [re.search(r"def (\w+)", c.source).group(1) for c in jupytext.read(src).cells
            if c.cell_type == "code" and c.source.lstrip().startswith("# HIDDEN")]


def test_no_student_notebook_holds_a_solution(built):
    rel, out, report = built
    for a in report["assignments"] + report["lessons"]:
        src = (ROOT / "lessons" / "assignments" / "src" if a["kind"] == "assignments" else ROOT / "lessons" / "src") \
            / f"{a['name']}.py"
        text = Path(a["student"]).read_text()
        solution, hidden = _solution_lines(src), _hidden_tests(src)
        assert solution and hidden, f"{src.name} has no solution region or no hidden test"
        leaked = [s for s in solution if json.dumps(s)[1:-1] in text]
        assert not leaked, f"{a['name']}: solution lines in the student notebook: {leaked}"
        assert not [h for h in hidden if h in text], f"{a['name']}: a hidden test is in the student notebook"
        assert all(h in Path(a["solution"]).read_text() for h in hidden)   # the instructor's copy has them
    lessons = sorted((out / "student" / "lessons").glob("*.ipynb"))
    assert [p.name for p in lessons] == [p.name for p in rel.lesson_notebooks()]
    assert not (out / "student" / "solutions").exists() and not (out / "student" / "lessons" / "solutions").exists()
    for nb_path in lessons:
        nb = nbformat.read(nb_path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{nb_path.name} keeps outputs"
        assert "Worked solutions" not in nb_path.read_text()
        assert f"src/{nb_path.stem}.py" not in nb_path.read_text(), f"{nb_path.name} points to its source (solutions)"
        assert any("widget" in c.metadata.get("tags", []) for c in nb.cells) == any(
            "widget" in c.metadata.get("tags", [])
            for c in nbformat.read(ROOT / "lessons" / nb_path.name, as_version=4).cells), "widget cells must stay"


def test_instructor_readme_lists_points_and_minutes(built):
    _, out, report = built
    text = (out / "instructor" / "README.md").read_text()
    for a in report["assignments"]:
        for q in a["questions"]:
            assert f"`{q['name']}` {q['points']:g}" in text
    assert text.count("| 0") >= 10 and "otter run" in text


def test_release_never_deletes_a_folder_it_did_not_build(tmp_path):
    rel = _release_module()
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit, match="not a release built by lessons/release.py"):
        rel.release(keep)
    assert (keep / "thesis.tex").read_text() == "years of work"


def test_release_refuses_a_source_that_is_not_a_master(tmp_path, monkeypatch):
    rel = _release_module()
    plain = tmp_path / "a9_plain.py"
    plain.write_text("# %%\nanswer = 42\n")
    monkeypatch.setattr(rel, "assignment_sources", lambda: [plain])
    with pytest.raises(SystemExit, match="not Otter Assign masters.*a9_plain.py"):
        rel.release(tmp_path / "out")
