"""Issue 17's structure of the restructured lessons (predict -> explore -> explain), on the stored
notebooks: the first interactive widget (the cell tagged ``widget``) comes within the first third of
the cells; every numbered section heading states its minutes "(≈ N min)"; the displayed equations are
tagged (NN.k) with the lesson's own number, k = 1, 2, ... in order; each lesson after 00 points to
lesson 00's notation box. The lessons restructured so far are listed in RESTRUCTURED."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
RESTRUCTURED = ["00", "01", "02", "03", "04"]
PATHS = [p for p in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")) if p.name[:2] in RESTRUCTURED]
lesson = pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])


def test_every_restructured_lesson_exists():
    assert sorted(p.name[:2] for p in PATHS) == RESTRUCTURED


@lesson
def test_first_widget_in_the_first_third(path):
    cells = nbformat.read(path, as_version=4).cells
    tagged = [k for k, c in enumerate(cells) if "widget" in c.metadata.get("tags", [])]
    assert tagged, f"{path.name}: tag the cell that shows the lesson's widget `widget`"
    assert tagged[0] < len(cells) / 3, (
        f"{path.name}: the first widget is cell {tagged[0]} of {len(cells)}; move it into the first third "
        "(ask the question, then show the widget that answers it)")


@lesson
def test_sections_state_their_minutes(path):
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    numbered = re.findall(r"^## (\d+\..*)$", text, re.M)
    missing = [h for h in numbered if not re.search(r"\(≈ \d+ min\)", h)]
    assert not missing, f"{path.name}: sections without '(≈ N min)': {missing}"
    assert re.search(r"≈ \d+ min", text), f"{path.name}: no per-section minutes"


@lesson
def test_equations_numbered_by_lesson(path):
    number = int(path.name[:2])
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    tags = re.findall(r"\\tag\{(\d+)\.(\d+)\}", text)
    assert tags, f"{path.name}: no numbered equation (\\tag{{{number}.1}})"
    assert all(int(a) == number for a, _ in tags), f"{path.name}: equation tags of another lesson: {tags}"
    assert [int(k) for _, k in tags] == list(range(1, len(tags) + 1)), f"{path.name}: tags out of order: {tags}"


@lesson
def test_notation_box_is_linked(path):
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    if path.name.startswith("00"):
        assert "The notation of every lesson" in text
    else:
        assert "00_start_here.ipynb" in text and "notation" in text.lower(), (
            f"{path.name}: point to lesson 00's notation box")
