"""Lesson 10's widget model (`dve_teach.teach.foundation_model.FoundationModel`) and its helpers, on a tiny
two-stage run: a model after a sequence of edits equals a fresh model with the final settings, and
every exact answer equals a replay computed here by hand."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach import foundation as fd
from dve_teach.teach.foundation_model import FoundationModel

TINY = dict(context=6, n_plays=24, n_plays_test=4, n_sonnets=8, n_sonnets_test=3, d_model=8, n_heads=1,
            n_layers=1, peak=1e-2)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return FoundationModel(seed=3, sizes=TINY, k=2)


def test_place_keeps_batches_full_and_moves_one_occurrence():
    s = dt.Schedule.shuffled(12, 4, epochs=2, seed=0)
    i = s.batches[0][0]
    t = next(t for t in range(len(s)) if i not in s.batches[t])
    moved = fd.place(s, i, 0, t)
    assert [len(b) for b in moved.batches] == [len(b) for b in s.batches]
    assert i in moved.batches[t] and i not in moved.batches[0]
    assert sorted(moved.order) == sorted(s.order)
    assert sum(a != b for a, b in zip(moved.batches, s.batches)) == 2
    with pytest.raises(ValueError, match="already"):
        fd.place(s, i, 0, s.occurrences(i)[1])
    with pytest.raises(ValueError, match="not in batch"):
        fd.place(s, i, t, 0)


def test_passage_text_is_context_plus_one_characters(model):
    text = fd.passage(model.plays, 0)
    assert len(text) == TINY["context"] + 1
    assert model.plays.vocab.encode(text)[1:].tolist() == model.plays.train.y[0].tolist()


def test_ranking_is_the_unrolled_sweep(model):
    r = model.update()
    one = model.sonnets.test[[r.line]]
    fo = dt.unrolled_influence(model.traj, one, measure=fd.MeanLoss(one)).total()[:model.n_plays, 0]
    assert r.helpful == torch.argsort(fo, descending=True)[:2].tolist()
    assert r.harmful == torch.argsort(fo)[:2].tolist()
    assert model.stale and r.exact is None


def test_retrain_matches_replay_by_hand(model):
    model.line, model.moved, model.position = 1, None, None
    r = model.update()
    moved = r.helpful[0]
    free = next(t for t in range(model.stage1_steps) if t not in model.plays_schedule.occurrences(moved))
    model.position = free
    r = model.retrain()
    one = model.sonnets.test[[1]]
    m = fd.MeanLoss(one)
    pts = r.helpful + r.harmful
    by_hand = dt.exact_loo(model.traj, one, pts, measure=m, chunk_size=1, progress=False)[:, 0]
    assert torch.allclose(torch.tensor([r.exact[i] for i in pts], dtype=by_hand.dtype), by_hand, rtol=1e-6, atol=1e-12)
    first = model.plays_schedule.occurrences(moved)[0]
    traj = fd.foundation_run(3, sizes=TINY, plays_schedule=fd.place(model.plays_schedule, moved, first, free))[0]
    assert traj.schedule.batches[free].count(moved) == 1
    want = float(dt.exact_loo(traj, one, [moved], [free], measure=m, progress=False)[0, 0])
    assert r.moved_exact == pytest.approx(want, rel=1e-6, abs=1e-12)
    assert not model.stale


def test_edits_then_equal_a_fresh_model(model):
    for line, pos in [(2, None), (0, 1), (1, None)]:
        model.line, model.moved, model.position = line, None, pos
        model.update()
    model.line, model.moved, model.position = 2, None, None
    r = model.retrain()
    fresh = FoundationModel(seed=3, sizes=TINY, k=2, line=2)
    f = fresh.retrain()
    assert (r.helpful, r.harmful, r.moved, r.position) == (f.helpful, f.harmful, f.moved, f.position)
    assert r.exact == pytest.approx(f.exact, rel=1e-9) and r.moved_exact == pytest.approx(f.moved_exact, rel=1e-9)
    assert r.first_order == pytest.approx(f.first_order, rel=1e-9)


def test_bad_settings_name_the_fix(model):
    model.line = 99
    with pytest.raises(IndexError, match="held-out sonnet"):
        model.update()
    model.line, model.position = 0, 10 ** 6
    with pytest.raises(IndexError, match="pretraining step"):
        model.update()
    model.position = None


def test_explorer_view_runs_without_a_kernel(model):
    pytest.importorskip("ipywidgets")
    from dve_teach.teach.widgets import FoundationExplorer
    model.line, model.moved, model.position = 0, None, None
    w = FoundationExplorer(model=model)
    assert "press Retrain" in w.status.value
    w.retrain_button.click()
    assert "exact answers shown" in w.status.value, w.log_out.outputs
    w.controls["line"].value = 1
    assert w.controls["position"].value == model.plays_schedule.occurrences(model.result.helpful[0])[0]
    assert "<table>" in w.table.value


def test_lesson10_checks_accept_the_truth_and_name_typical_mistakes(model):
    from dve_teach.teach.exercises import lesson10 as ex
    traj, B = model.traj, model.stage1_steps
    g = lambda t: traj.objective.per_sample_grads(traj.params(t), *traj.batch(t)[1:]).sum(0) / traj.batch_size  # noqa: E731
    eps = traj.optimizer.rules[1].eps
    truth = int((g(B).abs() < eps).sum())
    assert ex.check_near_zero_coordinates(truth, traj).ok
    assert not ex.check_near_zero_coordinates(None, traj).ok
    assert not ex.check_near_zero_coordinates(truth + 0.9, traj).ok
    at_start = int((g(0).abs() < eps).sum())
    if at_start != truth:
        assert "θ_0" in str(ex.check_near_zero_coordinates(at_start, traj))
    i = model.plays_schedule.batches[0][0]
    occ = model.plays_schedule.occurrences(i)
    last = [t for t in range(B) if t not in occ][-1]
    value = float(fd.placement_exact(3, i, occ[0], [last], sizes=TINY)[0])
    assert ex.check_moved_exact(value, 3, i, occ[0], last, sizes=TINY).ok
    assert "sign" in str(ex.check_moved_exact(-value, 3, i, occ[0], last, sizes=TINY))
    old = float(dt.exact_loo(traj, model.sonnets.test[:1], [i], [occ[0]], measure=fd.MeanLoss(model.sonnets.test),
                             progress=False)[0, 0])
    assert "original run" in str(ex.check_moved_exact(old, 3, i, occ[0], last, sizes=TINY))
