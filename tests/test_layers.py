"""The package is five layers, one folder each, and imports flow one way only:

    data  ←  training  ←  influence  ←  teach  ←  cli

Every module's imports are read with `ast` (top-level and inside functions alike) and resolved to a
module of the package; an import from a higher layer fails, naming both files. The top-level
``dve_teach/__init__.py`` (the public facade) eagerly loads only data, training and influence, so
importing it from a layer counts as importing the influence layer.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dve_teach"
LAYERS = ["data", "training", "influence", "teach", "cli"]
RANK = {name: k for k, name in enumerate(LAYERS)}
FACADE_RANK = RANK["influence"]


def _module_name(path: Path) -> str:
    parts = ["dve_teach", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every dve_teach import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "dve_teach"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "dve_teach":
                continue
            # `from pkg import name`: a submodule when the file exists, else a name in pkg
            for alias in node.names:
                sub = PACKAGE.parent.joinpath(*(target + "." + alias.name).split("."))
                is_module = sub.with_suffix(".py").exists() or (sub / "__init__.py").exists()
                out.append((node.lineno, f"{target}.{alias.name}" if is_module else target))
    return out


def _rank(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if len(parts) == 1:
        return FACADE_RANK, "the dve_teach facade"
    if parts[1] in RANK:
        return RANK[parts[1]], f"layer {parts[1]!r}"
    return FACADE_RANK, f"top-level module {module}"


def _layer_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] in RANK)


def _file_of(module: str) -> str:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return str((path / "__init__.py") if path.is_dir() else path.with_suffix(".py"))


def test_every_module_lives_in_a_layer():
    loose = sorted(p.name for p in PACKAGE.glob("*.py")
                   if p.name not in {"__init__.py", "__main__.py"})
    assert not loose, (f"modules outside the layer folders: {loose}; move each into one of "
                       f"{LAYERS} (see the layout table in README.md)")
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS)


@pytest.mark.parametrize("path", _layer_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    own = RANK[path.relative_to(PACKAGE).parts[0]]
    bad = []
    for line, module in _imports(path):
        rank, what = _rank(module)
        if rank > own:
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} "
                       f"({_file_of(module).split('/dve_teach/')[-1]}, {what}): a layer above "
                       f"{LAYERS[own]!r}; move the shared piece down a layer or the importer up")
    assert not bad, "\n".join(bad)


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """The test above can fail: a data module importing the influence layer is reported."""
    fake = tmp_path / "dve_teach"
    (fake / "data").mkdir(parents=True)
    (fake / "influence").mkdir()
    for init in (fake / "__init__.py", fake / "data" / "__init__.py", fake / "influence" / "__init__.py"):
        init.write_text("")
    (fake / "influence" / "loo.py").write_text("")
    bad = fake / "data" / "models.py"
    bad.write_text("def f():\n    from ..influence.loo import exact_loo\n    from .. import exact_loo\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    found = [(line, m) for line, m in _imports(bad)]
    assert found == [(2, "dve_teach.influence.loo"), (3, "dve_teach")]
    with pytest.raises(AssertionError, match=r"data/models.py:2 imports dve_teach.influence.loo"):
        test_imports_flow_one_way(bad)
