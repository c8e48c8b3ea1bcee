"""The API reference, built from the docstrings with pdoc (``python -m dve_teach docs``).

`modules()` lists what it documents: the package (every public name of ``import dve_teach as dt``)
and every module of its five layers. `build(out)` writes static HTML to a folder; `serve()` starts
pdoc's local web server and opens the browser.
"""
from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Optional

__all__ = ["modules", "build", "serve"]


def modules() -> list[str]:
    """The module specs to document: the package and its layers (pdoc adds the submodules they
    export), then every other module under them (not ``__main__``), each named once."""
    import dve_teach
    from pdoc.extract import walk_specs
    layers = ["dve_teach"] + [f"dve_teach.{layer}" for layer in ("data", "training", "influence", "teach", "cli")]
    covered = set(walk_specs(layers))
    rest = [m.name for m in pkgutil.walk_packages(dve_teach.__path__, "dve_teach.")
            if m.name not in covered and not m.name.endswith("__main__")]
    return layers + sorted(rest)


def _pdoc():
    try:
        import pdoc
    except ImportError:
        raise SystemExit("the API reference needs pdoc: pip install pdoc (it is in the test extra: "
                         "pip install -e '.[test]')") from None
    return pdoc


def build(out: Path) -> Path:
    """Write the HTML reference to `out` (created if missing); returns the index page."""
    pdoc = _pdoc()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pdoc.pdoc(*modules(), output_directory=out)
    return out / "index.html"


def serve(port: Optional[int] = None) -> None:
    """Serve the reference on localhost (pdoc's own server) until interrupted."""
    import subprocess
    import sys
    _pdoc()
    args = [sys.executable, "-m", "pdoc", *modules()] + (["--port", str(port)] if port else [])
    subprocess.run(args, check=False)
