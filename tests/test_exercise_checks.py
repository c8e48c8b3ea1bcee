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


def test_dve_rank():
    exact = torch.tensor([0.1, 0.3, -0.2, 0.2, 0.0, 0.5])    # the exact replay's most helpful: point 5
    estimate = torch.tensor([0.4, 0.3, -0.1, 0.1, 0.0, 0.2])  # the DVE scores points 0 and 1 higher
    assert lesson00.check_dve_rank(3, exact, estimate)
    assert lesson00.check_dve_rank(torch.tensor(3), exact, estimate)
    assert "0-based" in lesson00.check_dve_rank(2, exact, estimate).message
    assert "smallest" in lesson00.check_dve_rank(6 + 1 - 3, exact, estimate).message     # counted from below
    assert "index" in lesson00.check_dve_rank(5, exact, estimate).message                 # point 5's index
    for bad in (None, 2.5, "x", 0, 99):
        fb = lesson00.check_dve_rank(bad, exact, estimate)
        assert not fb and ("Hint" in fb.message or "replace the None" in str(fb))
    assert lesson00.check_dve_rank(1, exact, exact)                                       # a perfect ranking


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


def test_lesson01_share_better():
    from dve_teach.teach.exercises import lesson01
    losses = torch.tensor([[0.1, 0.5, 0.2, 0.3], [0.2, 0.4, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0]])  # best 0, worst 1
    assert lesson01.check_share_better(0.75, losses, 0, 1)                  # 3 of 4 test points lower under row 0
    assert lesson01.check_share_better(torch.tensor(0.75), losses, 0, 1)
    assert lesson01.check_share_better(losses[0] < losses[1], losses, 0, 1)   # the booleans themselves
    assert "WORST" in lesson01.check_share_better(0.25, losses, 0, 1).message
    assert "count" in lesson01.check_share_better(3, losses, 0, 1).message
    assert "mean losses" in lesson01.check_share_better(1.0, losses, 0, 1).message
    for bad in (None, "x", 0.5, torch.ones(3)):
        assert not lesson01.check_share_better(bad, losses, 0, 1)


def test_lesson01_checks(moons_run):
    from dve_teach.teach.exercises import lesson01
    traj, split = moons_run
    losses = torch.tensor([0.3, 0.1, 0.5, 0.2])
    assert lesson01.check_shuffles_below(2, losses, 0.25)                       # 0.1 and 0.2 are lower
    assert lesson01.check_shuffles_below(torch.tensor(3), losses, 0.4)
    assert "end higher" in lesson01.check_shuffles_below(1, losses, 0.4).message   # 3 lower, 1 higher
    assert "not the count" in lesson01.check_shuffles_below(0, losses, 0.4).message
    assert not lesson01.check_shuffles_below(None, losses, 0.25)
    model = dt.models.mlp((2, 8, 2), seed=0)
    steps = [0, 5, 11]
    data, sched = dt.explain.with_copies(split.train, traj.schedule, 4, steps)
    run = dt.train(model, data, sched, 0.3)
    last = dt.exact_loo(run, split.test, [60 + 2], [11])[0].mean()
    assert lesson01.check_correct_copy_last(last, model, split.train, traj.schedule, 4, steps, 0.3, split.test)
    first = dt.exact_loo(run, split.test, [60], [0])[0].mean()
    assert not lesson01.check_correct_copy_last(first, model, split.train, traj.schedule, 4, steps, 0.3, split.test)


def test_lesson02_checks(moons_run):
    from dve_teach.teach.exercises import lesson02
    traj, split = moons_run
    pts, sts = traj.schedule.occurrence_pairs()
    per_step = torch.tensor([(-1.0) ** k * (1 + s) for k, s in enumerate(sts)], dtype=torch.float64)
    per = len(traj.schedule) // 2                                               # 2 epochs of equal length
    assert lesson02.check_dominant_epoch(2, per_step, sts, per)                 # |values| grow with the step
    assert "off by one" in lesson02.check_dominant_epoch(1, per_step, sts, per).message
    assert not lesson02.check_dominant_epoch(7, per_step, sts, per)
    T = len(traj.schedule)
    replayed = sum(T - s for s in sts)
    loop = 0
    for s in sts:                                    # count the replayed steps one by one
        for _t in range(s, T):
            loop += 1
    assert replayed == loop and lesson02.check_replayed_steps(loop, traj.schedule)
    assert "one step short" in lesson02.check_replayed_steps(loop - len(sts), traj.schedule).message
    assert "from the start" in lesson02.check_replayed_steps(len(sts) * T, traj.schedule).message
    assert not lesson02.check_replayed_steps(None, traj.schedule)


def test_lesson02_replayed_steps_for():
    from dve_teach.teach.exercises import lesson02
    n, E = 20, 2
    current = dt.Schedule.shuffled(n, 10, E, seed=0)
    T = n * E // 5                                                   # 8 steps of 5 points
    loop = sum(5 * (T - s) for s in range(T))                        # every step removes 5 points, T - s each
    assert lesson02.check_replayed_steps_for(loop, n, 5, E, current)
    own = sum(10 * (4 - s) for s in range(4))
    assert "lesson's run" in lesson02.check_replayed_steps_for(own, n, 5, E, current).message
    assert "short" in lesson02.check_replayed_steps_for(loop - n * E, n, 5, E, current).message
    assert "approximation" in lesson02.check_replayed_steps_for(round(n * n * E * E / 10), n, 5, E, current).message
    assert not lesson02.check_replayed_steps_for(None, n, 5, E) and not lesson02.check_replayed_steps_for(1.5, n, 5, E)


def test_lesson05_checks():
    from types import SimpleNamespace

    from dve_teach.teach.exercises import lesson05
    r = SimpleNamespace(steps=[2, 9, 15], per_step_exact=[0.1, -0.4, 0.3], point=0, exact=-0.05,
                        estimate=-0.02, per_step_estimate=[0.05, -0.3, 0.2],
                        embeddings=torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [10.0, 9.0],
                                                 [0.9, -0.1], [-1.0, 0.0], [3.0, 0.5]]))
    # by hand: the one-step values sum to 0.0; gap = -0.05 - 0.0; relative to |-0.05|: -1.0
    assert lesson05.check_additivity(-1.0, r)
    assert lesson05.check_additivity(torch.tensor(-1.0), r)
    assert "reversed" in lesson05.check_additivity(1.0, r).message
    assert "absolute gap" in lesson05.check_additivity(-0.05, r).message
    assert "DVE" in lesson05.check_additivity(1.5, r).message      # DVE: (-0.02 - (-0.05)) / |-0.02|
    assert not lesson05.check_additivity(-0.9, r) and not lesson05.check_additivity(None, r)
    # cosine with [1, 0]: points 1, 4, 6 are nearly parallel, 3 is long but at 42°, 2 orthogonal, 5 opposite
    cos = torch.nn.functional.cosine_similarity(r.embeddings, r.embeddings[0][None], dim=1).tolist()
    top = sorted(range(1, 7), key=lambda i: -cos[i])[:3]
    assert lesson05.check_most_similar(top, r, k=3)
    assert "dot product" in lesson05.check_most_similar([3, 6, 1], r, k=3).message
    assert "itself" in lesson05.check_most_similar([0, 1, 4], r, k=3).message
    assert not lesson05.check_most_similar([1, 1, 4], r, k=3)


def test_lesson05_best_move(moons_run):
    """Oracle: the library's prediction of every single move (`predict` on `Schedule.move`), not the
    insertion curve the check uses."""
    from types import SimpleNamespace

    from dve_teach.teach.exercises import lesson05
    traj, split = moons_run
    p = 7
    r = SimpleNamespace(traj=traj, point=p, steps=traj.schedule.occurrences(p), schedule=traj.schedule)
    pred = dt.OrderPredictor(traj, split.test, mean=True).fit()
    moves = {(t1, t2): float(pred.predict(traj.schedule.move(p, t1, t2)).mean())
             for t1 in r.steps for t2 in range(traj.T) if t2 not in r.steps}
    best, worst = min(moves, key=moves.get), max(moves, key=moves.get)
    assert lesson05.check_best_move(best, r, split.test)
    assert lesson05.check_best_move(torch.tensor(best), r, split.test)
    assert "raise" in lesson05.check_best_move(worst, r, split.test).message
    other = next(t for t in r.steps if t != best[0])
    fb = lesson05.check_best_move((other, best[1]), r, split.test)
    assert not fb and "removal term" in fb.message
    assert "already used" in lesson05.check_best_move((best[0], r.steps[-1]), r, split.test).message
    free = next(t for t in range(traj.T) if t not in r.steps)
    assert "not used at step" in lesson05.check_best_move((free, best[1]), r, split.test).message
    middle = sorted(moves, key=moves.get)[len(moves) // 2]
    assert "another move" in lesson05.check_best_move(middle, r, split.test).message
    for bad in (None, 3, (1, 2, 3), (1.5, 2), "ab"):
        fb = lesson05.check_best_move(bad, r, split.test)
        assert not fb and "Hint" in fb.message
    for fb in (lesson05.check_best_move(x, r, split.test) for x in (worst, middle, (other, best[1]))):
        assert f"{best[0]} -> {best[1]}" not in fb.message and str(best) not in fb.message   # never the answer


def test_lesson06_checks():
    from dve_teach.influence.scores import Influence
    from dve_teach.teach.exercises import lesson06
    per = torch.tensor([[0.2, 0.4], [-0.6, -0.2], [0.1, -0.3], [0.5, 0.5], [-0.2, 0.0]], dtype=torch.float64)
    infl = Influence(per, points=[0, 1, 2, 0, 1], steps=[0, 0, 1, 2, 2], n_train=3)
    lrs = torch.tensor([0.5, 0.25, 1.0], dtype=torch.float64)
    # by hand: occurrence means over the test points 0.3, -0.4, -0.1, 0.5, -0.1
    want = torch.tensor([(0.3 + 0.4) / 2 / 0.5, 0.1 / 0.25, (0.5 + 0.1) / 2 / 1.0], dtype=torch.float64)
    assert lesson06.check_phase_curve(want, infl, lrs)
    assert lesson06.check_phase_curve(want.tolist(), infl, lrs)
    assert "learning rate" in lesson06.check_phase_curve(want * lrs, infl, lrs).message
    signed = torch.tensor([(0.3 - 0.4) / 2 / 0.5, -0.1 / 0.25, (0.5 - 0.1) / 2], dtype=torch.float64)
    assert "cancel" in lesson06.check_phase_curve(signed, infl, lrs).message
    assert "one value per step" in lesson06.check_phase_curve(want[:2], infl, lrs).message
    curve = torch.tensor([5.0, 4, 3, 1, 2, 2, 3, 3, 4, 6])           # ten steps, one per chunk
    steps_lr = torch.tensor([0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.2], dtype=torch.float64)
    # by hand: raw = 0.5, 2, 1.5, 0.5, 1, 1, 1.5, 1.5, 2, 1.2 -> basin 0.5 (chunk 3), start 0.5: ratio 1;
    # end/basin 2.4; divided: start 5 over basin 1 = 5
    assert lesson06.check_raw_ratio(1.0, curve, steps_lr)
    assert lesson06.check_raw_ratio(torch.tensor(1.0), curve, steps_lr)
    assert "divided by η" in lesson06.check_raw_ratio(5.0, curve, steps_lr).message
    assert "end/basin" in lesson06.check_raw_ratio(2.4, curve, steps_lr).message
    assert not lesson06.check_raw_ratio(1.1, curve, steps_lr) and not lesson06.check_raw_ratio(None, curve, steps_lr)


def test_lesson07_checks():
    from dve_teach.teach.exercises import lesson07
    scores = torch.tensor([0.9, 0.1, 0.8, 0.3, 0.3, 0.7])
    flipped = torch.tensor([1, 0, 0, 1, 0, 0])
    # pairs (flipped, clean): 0.9 beats all 4; 0.3 beats 0.1, ties 0.3, loses to 0.8, 0.7 -> 1.5
    auc = (4 + 1.5) / 8
    assert lesson07.check_auc_by_pairs(auc, scores, flipped)
    assert "wrong order" in lesson07.check_auc_by_pairs(1 - auc, scores, flipped).message
    assert not lesson07.check_auc_by_pairs(0.5, scores, flipped)
    # rank sum of two scores on different scales, worked by hand: ranks (0 = lowest)
    a = torch.tensor([0.9, 0.1, 0.8, 0.3, 0.2, 0.7])            # ranks 5 0 4 2 1 3
    b = torch.tensor([10., 60., 20., 50., 30., 40.])             # ranks 0 5 1 4 2 3
    # rank sums 5 5 5 6 3 6: flipped (0, 3) = 5, 6 against clean 5, 5, 3, 6 -> (0.5 + 0.5 + 1 + 0) + (1 + 1 + 1 + 0.5)
    combined = (2 + 3.5) / 8
    assert lesson07.check_combined_auc(combined, a, b, flipped)
    assert lesson07.check_combined_auc(torch.tensor(combined), a, b, flipped)
    raw = lesson07.check_combined_auc(float(dt.metrics.roc_auc(a + b, flipped)), a, b, flipped)
    assert not raw and "raw scores" in raw.message and f"{combined:.3f}" not in raw.message
    alone = lesson07.check_combined_auc(float(dt.metrics.roc_auc(a, flipped)), a, b, flipped)
    assert not alone and "alone" in alone.message
    assert not lesson07.check_combined_auc(1 - combined, a, b, flipped)
    assert not lesson07.check_combined_auc(None, a, b, flipped)
