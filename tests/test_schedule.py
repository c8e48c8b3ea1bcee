"""Schedule: constructors, reading, edits that return new schedules, immutability, every error."""
from __future__ import annotations

import pytest

import dve_teach as dt
from dve_teach import Schedule


# ---- constructors ------------------------------------------------------------------------
def test_shuffled_epochs_are_permutations():
    s = Schedule.shuffled(10, 4, epochs=3, seed=5)
    assert (len(s), s.batch_size, s.n) == (9, 4, 10)
    assert [len(b) for b in s.batches] == [4, 4, 2] * 3
    for e in range(3):
        assert sorted(i for b in s.batches[3 * e:3 * e + 3] for i in b) == list(range(10))
    epochs = [tuple(i for b in s.batches[3 * e:3 * e + 3] for i in b) for e in range(3)]
    assert len(set(epochs)) == 3  # a fresh order every epoch
    assert s == Schedule.shuffled(10, 4, epochs=3, seed=5)
    assert s != Schedule.shuffled(10, 4, epochs=3, seed=6)


def test_shuffled_drop_last():
    s = Schedule.shuffled(10, 4, epochs=2, drop_last=True)
    assert [len(b) for b in s.batches] == [4, 4, 4, 4]


def test_sequential_and_from_order():
    s = Schedule.sequential(5, 2, epochs=2)
    assert s.batches == ((0, 1), (2, 3), (4,)) * 2
    assert s.order == (0, 1, 2, 3, 4) * 2
    o = Schedule.from_order([3, 1, 4, 0, 2], 2)
    assert o.batches == ((3, 1), (4, 0), (2,)) and o.n == 5
    assert Schedule.from_order([3, 1, 4, 0, 2], 2, drop_last=True).batches == ((3, 1), (4, 0))
    assert Schedule.from_order([0, 1], 2, n=7).n == 7


def test_from_batches_defaults():
    s = Schedule.from_batches([[0, 5], [2], [1, 3, 4]])
    assert (s.batch_size, s.n, len(s)) == (3, 6, 3)
    s = Schedule.from_batches([[0, 5], [2]], batch_size=4, n=10)
    assert (s.batch_size, s.n) == (4, 10)


def test_curriculum_order():
    scores = [0.5, -1.0, 2.0, 0.5, 0.0]
    s = Schedule.curriculum(scores, 2, epochs=2)
    assert s.order == (1, 4, 0, 3, 2) * 2  # ascending, ties in index order
    assert Schedule.curriculum(scores, 2, descending=True).order == (2, 0, 3, 4, 1)
    assert s.n == 5


# ---- reading -----------------------------------------------------------------------------
def test_occurrences_and_pairs():
    s = Schedule([[0, 1], [2, 0], [1, 3]], 2, 5)
    assert s.occurrences(0) == [0, 1]
    assert s.occurrences(3) == [2]
    assert s.occurrences(4) == []
    pts, sts = s.occurrence_pairs()
    assert pts == [0, 1, 2, 0, 1, 3] and sts == [0, 0, 1, 1, 2, 2]
    assert all(p in s.batches[t] for p, t in zip(pts, sts))
    assert repr(s) == "Schedule(steps=3, batch_size=2, n=5)"


# ---- edits --------------------------------------------------------------------------------
def test_move_swap_reversed_return_new_schedules():
    s = Schedule([[0, 1], [2, 3], [4]], 2, 5)
    m = s.move(1, 0, 2)
    assert m.batches == ((0,), (2, 3), (4, 1))
    assert s.batches == ((0, 1), (2, 3), (4,))  # the original is unchanged
    assert m.occurrences(1) == [2] and (m.batch_size, m.n) == (2, 5)
    assert s.move(1, 0, 0) == s
    assert s.move(1, 0, -1) == m  # negative steps count from the end
    w = s.swap(0, 2)
    assert w.batches == ((4,), (2, 3), (0, 1)) and w.swap(0, 2) == s
    r = s.reversed()
    assert r.batches == ((4,), (2, 3), (0, 1)) and r.reversed() == s


def test_immutability_hash_and_eq():
    s = Schedule([[0, 1], [2]], 2, 3)
    with pytest.raises(AttributeError):
        s.batches = ((0,),)
    with pytest.raises(TypeError):
        s.batches[0] = (2,)
    with pytest.raises(AttributeError):
        s.new_attribute = 1  # __slots__: no stray state
    lst = [[0, 1], [2]]
    t = Schedule(lst, 2, 3)
    lst[0].append(2)  # mutating the input afterwards does not leak in
    assert t == s and hash(t) == hash(s)
    assert {s: "a"}[t] == "a"
    assert s != Schedule([[0, 1], [2]], 3, 3) and s != Schedule([[0, 1], [2]], 2, 4)
    assert s != Schedule([[1, 0], [2]], 2, 3)  # order inside a batch is part of the schedule
    assert s != "not a schedule"


# ---- errors -------------------------------------------------------------------------------
def test_construction_errors():
    with pytest.raises(IndexError, match=r"index 5 outside the training set \[0, 5\)"):
        Schedule([[0, 5]], 2, 5)
    with pytest.raises(IndexError, match="index -1"):
        Schedule([[0, -1]], 2, 5)
    with pytest.raises(ValueError, match="batch 1 holds index 2 more than once"):
        Schedule([[0], [2, 1, 2]], 3, 5)
    with pytest.raises(ValueError, match="batch 1 is empty"):
        Schedule([[0], []], 2, 5)
    with pytest.raises(ValueError, match="at least one batch"):
        Schedule([], 2, 5)
    with pytest.raises(ValueError, match="at least one batch"):
        Schedule.from_batches([])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Schedule([[0]], 0, 5)
    with pytest.raises(ValueError, match="n .* must be >= 1"):
        Schedule([[0]], 1, 0)
    with pytest.raises(ValueError, match="finite"):
        Schedule.curriculum([0.0, float("nan")], 1)


def test_edit_errors():
    s = Schedule([[0, 1], [2, 3], [4]], 2, 5)
    with pytest.raises(ValueError, match=r"point 4 is not in batch 0; it is in steps \[2\]"):
        s.move(4, 0, 1)
    with pytest.raises(ValueError, match="already in batch 0"):
        Schedule([[0, 1], [0, 3]], 2, 5).move(0, 1, 0)
    with pytest.raises(ValueError, match="leave batch 2 empty.*swap"):
        s.move(4, 2, 0)
    with pytest.raises(IndexError, match="step 3 is out of range"):
        s.move(0, 0, 3)
    with pytest.raises(IndexError, match="step -4 is out of range"):
        s.swap(-4, 0)
    with pytest.raises(IndexError, match="step 9 is out of range"):
        s.swap(0, 9)
    with pytest.raises(IndexError, match=r"point 5 is outside the training set \[0, 5\)"):
        s.occurrences(5)


def test_train_refuses_a_schedule_for_other_data():
    split = dt.datasets.blobs(n_train=12, n_test=2)
    with pytest.raises(ValueError, match="indexes 10 points but the data has 12.*n=12"):
        dt.train(dt.models.mlp((2, 3)), split.train, Schedule.shuffled(10, 4), 0.1)
