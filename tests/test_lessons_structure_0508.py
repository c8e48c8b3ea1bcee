"""Issue 17's structure for lessons 05-08, read from the stored notebooks: the first interactive widget
(the cell tagged "widget") comes within the first third of the cells; every "## N." section heading
states its minutes; the lesson opens with a recap of lesson 00's notation box; its key equations are
numbered "(NN.k)" with \\tag in the markdown maths, and each number is referred to again in the text."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
PATHS = [next(LESSONS.glob(f"{nn}_*.ipynb")) for nn in ("05", "06", "07", "08")]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_first_widget_in_the_first_third(path):
    cells = nbformat.read(path, as_version=4).cells
    widgets = [i for i, c in enumerate(cells) if "widget" in c.metadata.get("tags", [])]
    assert widgets, f"{path.name}: no cell tagged 'widget'"
    assert widgets[0] < len(cells) / 3, f"{path.name}: first widget at cell {widgets[0]} of {len(cells)}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_sections_notation_and_numbered_equations(path):
    nn = path.name[:2].lstrip("0")
    md = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    text = "\n".join(md)
    sections = re.findall(r"^## (\d+)\. .*$", text, flags=re.M)
    assert len(sections) >= 3 and sections == [str(k) for k in range(1, len(sections) + 1)], sections
    assert all(re.search(r"\(≈ \d+ min", line) for line in re.findall(r"^## \d+\. .*$", text, flags=re.M))
    assert "**Notation** (lesson 00's box" in md[0]
    for sym in (r"\delta_{i,t}", "K_t", "M_t", "c_t", r"\eta_t", "helped"):
        assert sym in md[0], f"{path.name}: the notation recap lacks {sym}"
    tags = re.findall(rf"\\tag{{({nn}\.\d+)}}", text)
    assert tags and tags == [f"{nn}.{k}" for k in range(1, len(tags) + 1)], tags
    for tag in tags:       # each equation is referred to by its number outside its own \tag
        assert text.count(f"({tag}") + text.count(f" {tag})") >= 1, f"{path.name}: ({tag}) is never referred to"
