"""Shared pieces of the lesson generators in this folder (not a lesson, not collected by pytest).

Each generator lists its cells with `md` and `code` and ends with ``write(CELLS, OUT, "lNN")``;
then ``python lessons/execute.py NN`` runs the notebook and stores its outputs.
"""
from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell (common indentation and surrounding blank lines removed)."""
    return new_markdown_cell(dedent(text).strip("\n"))


def code(text: str, *tags: str, check: bool = False) -> nbformat.NotebookNode:
    """A code cell; ``check=True`` adds the `nbval-check-output` tag (output compared by nbval)."""
    cell = new_code_cell(dedent(text).strip("\n"))
    tags = list(tags) + (["nbval-check-output"] if check else [])
    if tags:
        cell.metadata["tags"] = tags
    return cell


def collector() -> tuple[list, object, object]:
    """(CELLS, md, code) for generators that append cells as they go instead of listing them."""
    cells: list = []

    def add_md(text: str) -> None:
        cells.append(md(text))

    def add_code(text: str, *tags: str, check: bool = False) -> None:
        cells.append(code(text, *tags, check=check))

    return cells, add_md, add_code


def write(cells: list, out: Path, id_prefix: str) -> None:
    """Write the notebook (outputs cleared) with stable cell ids, so regenerating gives small diffs."""
    for k, cell in enumerate(cells):
        cell.id = f"{id_prefix}-{k:02d}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nbformat.validate(nb)
    nbformat.write(nb, out)
    print(f"wrote {out.name} ({len(cells)} cells, outputs cleared): now run python lessons/execute.py {id_prefix[1:]}")
