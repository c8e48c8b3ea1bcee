"""Every lesson's solutions pass its own exercise checks.

Each lesson's source is a graded master (``lessons/master.py``): the master itself — solutions
inline, public and hidden tests — is run top to bottom in a fresh kernel (fast mode; every test
asserts, so a failing test fails here), and every check of the lesson's
`dve_teach.teach.exercises.lessonNN` module must then have said "right".
Also: the checks say "not yet" (never raise) for the scaffold's None and for a wrong answer, and
for a wrong-but-close one: every whole-number answer of a solution (or whole number inside a tuple)
is fed again plus 0.9, which no check may accept.
"""
from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
PATHS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))

BEFORE = """\
import dve_teach.teach.exercises as _ex, importlib as _il, numbers as _nb
_ex.HISTORY.clear()
_calls = []
_mod = _il.import_module('dve_teach.teach.exercises.lesson{number}')
for _name in [n for n in dir(_mod) if n.startswith('check_')]:
    def _rec(*a, _f=getattr(_mod, _name), **k):
        _calls.append((_f, a, k))
        return _f(*a, **k)
    setattr(_mod, _name, _rec)
"""
AFTER = """\
import json as _json
_history = list(_ex.HISTORY)
def _close(x):   # whole numbers (ints, not bools) plus 0.9; None when the answer holds none
    if isinstance(x, _nb.Integral) and not isinstance(x, bool):
        return [x + 0.9]
    if isinstance(x, tuple) and any(isinstance(v, _nb.Integral) and not isinstance(v, bool) for v in x):
        return [tuple(v + 0.9 if j == i else v for j, v in enumerate(x)) for i in range(len(x))
                if isinstance(x[i], _nb.Integral) and not isinstance(x[i], bool)]
    return []
_accepted = [(_f.__name__, repr(c)) for _f, _a, _k in _calls if _a for c in _close(_a[0])
             if _f(c, *_a[1:], **_k).ok]
_tried = sum(len(_close(_a[0])) for _f, _a, _k in _calls if _a)
print('RESULT' + _json.dumps({'history': _history, 'accepted': _accepted, 'tried': _tried}))"""


#: lessons whose solutions answer at least one check with a whole number (or a tuple of them)
WHOLE_NUMBER_ANSWERS = {"00", "01", "02", "03", "04", "05", "08", "10"}


def _master():
    """lessons/master.py, imported by path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lessons_master", LESSONS / "master.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checks(number: str) -> set[str]:
    module = importlib.import_module(f"dve_teach.teach.exercises.lesson{number}")
    return {name for name, fn in inspect.getmembers(module, inspect.isfunction)
            if name.startswith("check_") and fn.__module__ == module.__name__}


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_solutions_pass_their_checks(path, monkeypatch):
    number = path.name[:2]
    checks = _checks(number)
    assert len(checks) >= 2, f"lesson {number} needs at least two exercises with automatic checks"
    solution = f"src/{path.stem}.py"      # the master: solutions and tests inline; the recorder goes first
    nb = _master().solution_notebook(_master().read(LESSONS / solution))
    nb.cells = [nbformat.v4.new_code_cell(BEFORE.replace("{number}", number))] + nb.cells + \
               [nbformat.v4.new_code_cell(AFTER)]
    monkeypatch.setenv("DVE_TEACH_FAST", "1")
    monkeypatch.setenv("DVE_TEACH_SEED", "0")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(LESSONS)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    result = json.loads(text.split("RESULT", 1)[1])
    said = {name: ok for name, ok in result["history"]}
    assert checks <= set(said), f"{solution} does not call {sorted(checks - set(said))}"
    wrong = sorted(name for name, ok in result["history"] if not ok)
    assert not wrong, f"{solution}: the checks {wrong} say 'not yet' to the solution"
    assert not result["accepted"], f"checks accept wrong-but-close answers: {result['accepted']}"
    if number in WHOLE_NUMBER_ANSWERS:   # the perturbation is not vacuous where answers are whole numbers
        assert result["tried"] > 0, f"no whole-number answer of {solution} was perturbed"
