"""The exercise checks of lessons 00, 01, 02 and 05 against the answers they must accept and refuse:
the right answer is "right", a typical mistake and the scaffold's None are "not yet" with a hint,
and nothing raises. (Each check recomputes its truth with the library; the oracle here is a second,
independent computation of the same quantity.)"""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach import exercises
from dve_teach.teach.exercises import lesson00


@pytest.fixture(scope="module")
def moons_run():
    split = dt.datasets.moons(60, 30, seed=0)
    traj = dt.train(dt.models.mlp((2, 8, 2), seed=0), split.train, dt.Schedule.shuffled(60, 10, 2, seed=0), lr=0.3)
    return traj, split


def test_feedback_records_history_and_reads_well():
    exercises.HISTORY.clear()
    fb = lesson00.check_most_helpful(None, None, None)
    assert not fb and "replace the None" in str(fb) and "Not yet" in fb._repr_html_()
    assert exercises.HISTORY == [("check_most_helpful", False)]


def test_most_helpful(moons_run):
    traj, split = moons_run
    exact = torch.stack([dt.exact_loo(traj, split.test, [i])[0] for i in range(60)]).mean(1)  # one at a time
    assert lesson00.check_most_helpful(int(exact.argmax()), traj, split.test)
    assert lesson00.check_most_helpful(exact.argmax(), traj, split.test)            # a 0-d tensor
    for bad in (int(exact.argmin()), int(exact.argsort()[30]), 999, 2.5, "x"):
        fb = lesson00.check_most_helpful(bad, traj, split.test)
        assert not fb and "Hint" in fb.message
    assert "hurt most" in lesson00.check_most_helpful(int(exact.argmin()), traj, split.test).message


def test_last_occurrence(moons_run):
    traj, split = moons_run
    p = 3
    steps = traj.schedule.occurrences(p)
    truth = dt.exact_loo(traj, split.test, [p], [steps[-1]])[0].mean()
    assert lesson00.check_last_occurrence(truth, traj, split.test, p)
    assert lesson00.check_last_occurrence(float(truth), traj, split.test, p)
    every = dt.exact_loo(traj, split.test, [p])[0].mean()
    assert "every step" in lesson00.check_last_occurrence(every, traj, split.test, p).message
    first = dt.exact_loo(traj, split.test, [p], [steps[0]])[0].mean()
    assert "first occurrence" in lesson00.check_last_occurrence(first, traj, split.test, p).message
    assert not lesson00.check_last_occurrence(torch.zeros(3), traj, split.test, p)   # wrong shape: feedback
    assert not lesson00.check_last_occurrence(None, traj, split.test, p)
