"""Automatic checks for the exercises inside the lessons.

Each lesson NN has a module ``lessonNN`` of ``check_…(answer, ...)`` functions. A check recomputes
the truth from the lesson's own objects with the library, compares, and returns a `Feedback`:
"right", or what is wrong and a hint — never the answer itself. Every result is also appended to
`HISTORY` (name, ok), which the tests read after feeding each solution in ``lessons/solutions/``
to its check. ``None`` (the scaffold's placeholder) and ``...`` (Otter Assign's placeholder, in the
lessons whose source is a graded master: ``lessons/master.py``) are "not answered yet", not errors.

    from dve_teach.teach.exercises import lesson00 as ex
    ex.check_most_helpful(my_answer, traj, split.test)
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ...data.checks import as_int

__all__ = ["Feedback", "HISTORY", "right", "wrong", "not_yet", "exercise", "whole", "number"]

#: (check function name, ok) of every check run in this process, oldest first.
HISTORY: list[tuple[str, bool]] = []


@dataclass(frozen=True)
class Feedback:
    """The verdict of one check: ``ok``, the check's ``name`` and a ``message`` for the learner."""

    name: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"{'✅ Right' if self.ok else '❌ Not yet'} ({self.name}): {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#029e73" if self.ok else "#d55e00"
        head = "✅ Right" if self.ok else "❌ Not yet"
        return (f'<div style="border-left:4px solid {colour};padding:2px 8px">'
                f"<b>{head}</b> <small>({html.escape(self.name)})</small>: {html.escape(self.message)}</div>")


def right(name: str, message: str) -> Feedback:
    """The verdict "right", with a message that says what the answer shows."""
    return Feedback(name, True, message)


def wrong(name: str, problem: str, hint: str) -> Feedback:
    """The verdict "not yet": what is wrong with the answer and a hint (never the answer)."""
    return Feedback(name, False, f"{problem} Hint: {hint}")


def not_yet(name: str, hint: str) -> Feedback:
    """The verdict for the scaffold's None (`exercise` renames it for otter's ...): not answered yet, with a hint."""
    return Feedback(name, False, f"replace the None with your answer. Hint: {hint}")


def whole(answer: Any) -> Optional[int]:
    """A learner's answer as an int — an int, an integral float or a one-element tensor — or None
    when it is no whole number (a bool, 2.5, a string...); `dve_teach.data.checks.as_int` decides."""
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.reshape(())
    try:
        return as_int(answer, "answer")
    except (TypeError, ValueError):
        return None


def number(answer: Any) -> float:
    """A learner's answer as a float (a number or a one-element tensor); ValueError otherwise."""
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            raise ValueError(f"expected one number, got a tensor of shape {tuple(answer.shape)}; take .mean()")
        return float(answer.item())
    return float(answer)


def exercise(fn: Callable[..., Feedback]) -> Callable[..., Feedback]:
    """Decorator for a check: records its verdict in `HISTORY` and turns a learner's answer that
    cannot even be compared (wrong type, wrong shape) into feedback instead of a traceback."""
    import functools

    @functools.wraps(fn)
    def run(answer: Any, *args: Any, **kwargs: Any) -> Feedback:
        try:
            out = fn(None if answer is Ellipsis else answer, *args, **kwargs)
            if answer is Ellipsis and not out.ok:     # the check saw None: name the placeholder the learner sees
                out = Feedback(out.name, False, out.message.replace("replace the None", "replace the ...", 1))
        except (TypeError, ValueError, IndexError, KeyError) as err:
            out = Feedback(fn.__name__, False, f"your answer could not be checked ({err}). Hint: see "
                                               f"the exercise text for what kind of value is asked for.")
        HISTORY.append((fn.__name__, out.ok))
        return out

    return run
