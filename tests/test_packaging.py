"""Packaging stays consistent: environment.yml and pyproject.toml name the same packages with
ranges (not pins), .ci/run installs CPU torch first and runs the README's test command, and the
README states that command. Static checks on the files; nothing is installed."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

#: conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch", "playwright-python": "playwright"}
#: conda-only entries that are not Python dependencies of the package.
CONDA_ONLY = {"python", "pip", "cpuonly"}
#: The test command the README gives after PyTorch is installed (which install depends on the machine:
#: the README says how; CI pins the CPU wheel its machines carry locally).
README_TEST_COMMAND = 'pip install -e ".[lessons,test]" && python -m pytest'


def norm(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pyproject_requirements() -> list[Requirement]:
    proj = pyproject()["project"]
    reqs = list(proj["dependencies"])
    for extra in proj.get("optional-dependencies", {}).values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def conda_dependencies() -> tuple[list[str], list[str], list[str]]:
    """(channels, conda specs, pip specs) of environment.yml, read with a small line parser (the
    file is a flat list; no YAML library needed)."""
    channels, conda, pip, section = [], [], [], None
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if indent == 0:
            section = item.rstrip(":")
            continue
        if not item.startswith("- "):
            continue
        value = item[2:].strip()
        if section == "channels":
            channels.append(value)
        elif section == "dependencies":
            if value == "pip:":
                section = "pip"
            else:
                conda.append(value)
        elif section == "pip":
            if indent <= 2:  # back at the conda list
                section = "dependencies"
                conda.append(value)
            else:
                pip.append(value)
    return channels, conda, pip


def conda_name(spec: str) -> str:
    m = re.match(r"^(?:[\w.-]+::)?([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert m, f"cannot read a package name from environment.yml entry {spec!r}"
    return m.group(1)


def test_environment_and_pyproject_name_the_same_packages():
    _, conda, _ = conda_dependencies()
    env = {norm(CONDA_TO_PYPI.get(conda_name(s), conda_name(s))) for s in conda} - CONDA_ONLY
    py = {norm(r.name) for r in pyproject_requirements()}
    assert env == py, (f"only in environment.yml: {sorted(env - py)}; "
                       f"only in pyproject.toml: {sorted(py - env)}")


def test_environment_is_conda_forge_python311_cpu_torch():
    channels, conda, pip = conda_dependencies()
    assert channels == ["conda-forge"]
    names = {conda_name(s): s for s in conda}
    assert re.fullmatch(r"python\s*=\s*3\.11(\.\*)?", names["python"])
    cpu = "pytorch-cpu" in names or re.search(r"=\s*\*?cpu\*?$", names.get("pytorch", ""))
    assert cpu, "environment.yml must request CPU-only PyTorch (pytorch-cpu, or pytorch=*=cpu*)"
    assert not ("pytorch" in names and "pytorch-cpu" in names), "name pytorch once"
    assert "pip" in names and "-e ." in pip


def test_pyproject_uses_ranges_not_pins():
    for r in pyproject_requirements():
        ops = {s.operator for s in r.specifier}
        assert ops, f"{r} has no version range: give a lower bound such as >=X"
        assert not ops & {"==", "===", "~="}, f"{r} is pinned: use a range (>=X) in pyproject.toml"


def test_pyproject_extras_and_console_script():
    proj = pyproject()["project"]
    extras = {k: {norm(Requirement(r).name) for r in v} for k, v in proj["optional-dependencies"].items()}
    assert {"jupyterlab", "ipywidgets", "seaborn", "matplotlib"} <= extras["lessons"]
    assert {"pytest", "nbval", "hypothesis"} <= extras["test"]
    assert proj["scripts"]["dve-teach"] == "dve_teach.cli:main"


def pytest_args(command: str) -> list[str]:
    """The arguments after ``-m pytest`` in a shell command (``-q`` dropped: output only)."""
    for part in re.split(r"&&|;|\n", command):
        words = shlex.split(part, comments=True)
        for k in range(len(words) - 1):
            if words[k] == "-m" and words[k + 1] == "pytest" and re.fullmatch(r"python3?(\.\d+)?", words[0]):
                return [w for w in words[k + 2:] if w != "-q"]
    raise AssertionError(f"no `python -m pytest` in {command!r}")


def test_readme_states_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert README_TEST_COMMAND in readme
    assert "python -m dve_teach demo" in readme
    # honest install notes: the CPU wheel index for Linux, conda, and CI's own pin explained
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme and "environment.yml" in readme
    assert "pip install torch==2.13.0" in readme and "--allow-root" in readme


def ci_lines() -> list[str]:
    text = (ROOT / ".ci" / "run").read_text()
    return [ln.split(" #", 1)[0].strip() for ln in text.splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def test_ci_installs_cpu_torch_first_then_the_package_then_runs_the_readme_tests():
    lines = ci_lines()
    torch_at = next(i for i, ln in enumerate(lines) if "pip install" in ln and "torch==2.13.0" in ln)
    pkg_at = next(i for i, ln in enumerate(lines) if "pip install" in ln and '-e ".[lessons,test]"' in ln)
    test_at = [i for i, ln in enumerate(lines) if re.search(r"-m\s+pytest", ln)]
    assert torch_at < pkg_at < test_at[-1]
    readme_line = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if README_TEST_COMMAND in ln)
    assert pytest_args(lines[test_at[-1]]) == pytest_args(readme_line), \
        ".ci/run must run the README's test command (same pytest arguments)"


def test_ci_fails_when_a_test_fails():
    lines = ci_lines()
    assert lines[0].startswith("#!") or (ROOT / ".ci" / "run").read_text().startswith("#!")
    assert any(re.fullmatch(r"set\s+-[a-z]*e[a-z]*(\s+-?o\s+pipefail)?|set\s+-euo\s+pipefail", ln)
               for ln in lines), ".ci/run must `set -e` so a failing step fails the run"
    pytest_line = [ln for ln in lines if re.search(r"-m\s+pytest", ln)][-1]
    assert "||" not in pytest_line and "|" not in pytest_line.replace("||", ""), \
        "the pytest line must not mask its exit status (no pipes or `|| true`)"
    # pytest exits 5 when nothing was collected, so `set -e` also fails an empty run;
    # the flag that turns that into 0 must not appear.
    assert "--suppress-no-test-exit-code" not in " ".join(lines)
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"
