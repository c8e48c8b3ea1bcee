"""Static checks of the Binder setup (the Binder build itself cannot run here: no conda-forge).

- binder/environment.yml: conda-forge only, Python 3.11, CPU-only PyTorch, ipywidgets 8,
  JupyterLab 4, no local pip reference (it would disable repo2docker's cached env layer), and the
  same packages as the root environment.yml (conda aliases normalised) and every pyproject runtime
  and lessons dependency.
- binder/postBuild: executable, `set -euo pipefail`, editable install with --no-deps.
(The per-lesson Binder links in lessons/README.md are checked in tests/test_lessons_static.py.)
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
BINDER_ENV = ROOT / "binder" / "environment.yml"
ROOT_ENV = ROOT / "environment.yml"
POSTBUILD = ROOT / "binder" / "postBuild"

# conda-forge name -> PyPI name, for packages whose names differ
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch", "matplotlib-base": "matplotlib",
                 "playwright-python": "playwright"}


def _split(spec: str) -> tuple[str, str]:
    """'pytorch-cpu>=2.2,<3' -> ('pytorch-cpu', '>=2.2,<3'); 'python=3.11' -> ('python', '=3.11')."""
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    assert m, f"unparseable conda spec {spec!r}"
    return m.group(1).lower(), m.group(2).strip()


def _load(path: Path) -> dict:
    assert path.exists(), f"{path.relative_to(ROOT)} is missing"
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and "dependencies" in env, f"{path} has no dependencies list"
    return env


def _conda_specs(env: dict) -> dict[str, str]:
    return dict(_split(d) for d in env["dependencies"] if isinstance(d, str))


def _pip_lines(env: dict) -> list[str]:
    return [line for d in env["dependencies"] if isinstance(d, dict) for line in d.get("pip", [])]


def _names(env: dict) -> set[str]:
    """PyPI-normalised package names of the conda dependencies, without python and pip."""
    return {CONDA_TO_PYPI.get(n, n).replace("_", "-") for n in _conda_specs(env)} - {"python", "pip"}


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"].get("lessons", []))
    return {re.match(r"[A-Za-z0-9_.\-]+", r).group(0).lower().replace("_", "-") for r in reqs}


def _python_pin(specs: dict[str, str]) -> str:
    return specs.get("python", "").lstrip("=").removesuffix(".*")


def test_binder_env_is_conda_forge_python_311():
    env = _load(BINDER_ENV)
    assert env.get("channels") == ["conda-forge"], (
        "binder/environment.yml: use only the conda-forge channel (the pytorch channel is gone, "
        "defaults needs a licence)")
    assert _python_pin(_conda_specs(env)) == "3.11", "binder/environment.yml: pin python=3.11"


def test_binder_env_has_cpu_pytorch_widgets_8_and_lab_4():
    specs = _conda_specs(_load(BINDER_ENV))
    cpu = "pytorch-cpu" in specs or re.search(r"=cpu", specs.get("pytorch", ""))
    assert cpu, "binder/environment.yml: request CPU-only PyTorch (pytorch-cpu, or pytorch=*=cpu*)"
    assert "pytorch" not in specs or "pytorch-cpu" not in specs, "name pytorch once"
    assert re.fullmatch(r">=8(\.\d+)*,<9", specs.get("ipywidgets", "")), "pin ipywidgets>=8,<9"
    assert re.fullmatch(r">=4(\.\d+)*,<5", specs.get("jupyterlab", "")), "pin jupyterlab>=4,<5"


def test_binder_env_has_no_local_pip_reference():
    local = [line for line in _pip_lines(_load(BINDER_ENV))
             if line.startswith(("-e", "-r", ".", "/")) or line in {".", ".."}]
    assert not local, (f"binder/environment.yml pip entries {local} force repo2docker to re-solve the "
                       "env on every commit; binder/postBuild installs the repo instead")


def test_binder_env_names_the_same_packages_as_root_env():
    binder, root = _load(BINDER_ENV), _load(ROOT_ENV)
    assert _python_pin(_conda_specs(root)) == "3.11", "environment.yml: pin python=3.11"
    b, r = _names(binder), _names(root)
    assert b == r, (f"binder/environment.yml and environment.yml differ: only in binder {sorted(b - r)}, "
                    f"only in root {sorted(r - b)}")


def test_binder_env_covers_pyproject_dependencies():
    missing = _pyproject_requirements() - _names(_load(BINDER_ENV))
    assert not missing, f"binder/environment.yml lacks pyproject dependencies {sorted(missing)}"


def test_postbuild_is_executable_and_installs_editable_without_deps():
    assert POSTBUILD.exists(), "binder/postBuild is missing"
    assert os.access(POSTBUILD, os.X_OK), "chmod +x binder/postBuild (git keeps the mode bit)"
    text = POSTBUILD.read_text()
    assert text.startswith("#!"), "binder/postBuild needs a shebang line"
    code = [ln.split("#", 1)[0].strip() for ln in text.splitlines()[1:]]
    assert "set -euo pipefail" in code, "binder/postBuild: start with `set -euo pipefail` (errors are ignored otherwise)"
    install = [ln for ln in code if re.search(r"\bpip install\b", ln)]
    assert any("--no-deps" in ln and re.search(r"(^|\s)-e \.(\s|$)", ln) for ln in install), (
        "binder/postBuild must run `python -m pip install --no-deps -e .`")
