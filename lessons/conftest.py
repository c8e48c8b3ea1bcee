"""pytest setup for the lessons: nbval runs the notebooks; the Python files here are not tests.

`python -m pytest` collects `lessons/` (pyproject testpaths) with ``--nbval-lax`` and the
sanitizer ``lessons/nbval_sanitize.cfg`` (pyproject addopts). Notebook kernels are subprocesses
of pytest and inherit its environment, so fast mode is set here too (tests/conftest.py does the
same), which also covers `python -m pytest lessons/` on its own.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DVE_TEACH_FAST", "1")

# Generators, solutions and the execute script are plain Python, never collected as tests.
collect_ignore = ["execute.py", "sweep.py", "master.py", "release.py"]
collect_ignore_glob = ["src/*", "solutions/*", ".ipynb_checkpoints/*"]


def pytest_collectstart(collector):
    """Resolve a relative --nbval-sanitize-with against the rootdir (pytest run from elsewhere)."""
    opt = collector.config.option
    path = getattr(opt, "nbval_sanitize_with", None)
    if path and not os.path.isabs(path) and not os.path.exists(path):
        candidate = Path(collector.config.rootpath, path)
        if candidate.exists():
            opt.nbval_sanitize_with = str(candidate)
