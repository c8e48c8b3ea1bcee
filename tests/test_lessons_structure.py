"""Issue 17's structure of every lesson (predict -> explore -> explain), on the stored notebooks:

- the first interactive widget (the cell tagged ``widget``) comes within the first third of the cells;
- the lesson's sections state their minutes "(≈ N min": every numbered section "## N. ...", and at
  least three sections in all;
- the displayed key equations are tagged (NN.k) with the lesson's own number, k = 1, 2, ... in order;
- lesson 00 holds the notation box; every other lesson links to it and recaps it ("Notation").
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
PATHS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
lesson = pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])


def _markdown(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")


def test_there_are_lessons():
    assert len(PATHS) >= 10


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
    text = _markdown(path)
    headings = re.findall(r"^## (.*)$", text, re.M)
    timed = [h for h in headings if re.search(r"\(≈ \d+ min", h)]
    assert len(timed) >= 3, f"{path.name}: at least three sections '## ... (≈ N min)', found {timed}"
    numbered = [h for h in headings if re.match(r"\d+\.", h)]
    assert [int(h.split(".")[0]) for h in numbered] == list(range(1, len(numbered) + 1)), f"{path.name}: {numbered}"
    missing = [h for h in numbered if h not in timed]
    assert not missing, f"{path.name}: numbered sections without '(≈ N min)': {missing}"


@lesson
def test_equations_numbered_by_lesson(path):
    number = int(path.name[:2])
    tags = re.findall(r"\\tag\{(\d+)\.(\d+)\}", _markdown(path))
    assert tags, f"{path.name}: no numbered equation (\\tag{{{number}.1}})"
    assert all(int(a) == number for a, _ in tags), f"{path.name}: equation tags of another lesson: {tags}"
    assert [int(k) for _, k in tags] == list(range(1, len(tags) + 1)), f"{path.name}: tags out of order: {tags}"


@lesson
def test_notation_box_is_linked(path):
    text = _markdown(path)
    if path.name.startswith("00"):
        assert "The notation of every lesson" in text
    else:
        assert "00_start_here.ipynb" in text and "notation" in text.lower(), (
            f"{path.name}: link to lesson 00's notation box and recap its symbols")
