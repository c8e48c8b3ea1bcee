"""Lesson 05's predictions before a Retrain (`teach.order_prediction`, `ReorderModel`'s mixin and the
explorer's readout and curve). Oracles: `dt.OrderPredictor` on the same run (the prediction, the
insertion-curve identity), `dt.exact_order_change` (each Retrain's exact pair), and the model's own
edits (the slider curve equals the prediction after sliding there)."""
from __future__ import annotations

import base64

import numpy as np
import pytest

import dve_teach as dt
from dve_teach import widgets as wd
from dve_teach.teach import order_prediction as op_mod

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def problem():
    """40 train / 12 test moons, a 2-6-2 MLP, b = 8, 2 epochs (10 steps)."""
    return wd.Problem.moons(n_train=40, n_test=12, epochs=2, batch_size=8, hidden=6, seed=1)


@pytest.fixture
def model(problem):
    return wd.ReorderModel(problem, point=3)


def oracle(m, schedule=None) -> float:
    """The library's prediction on the model's last trained run."""
    pred = dt.OrderPredictor(m.result.traj, m.problem.test, mean=True).fit()
    return float(pred.predict(m.schedule() if schedule is None else schedule)[0])


def test_prediction_equals_the_order_predictor(model):
    m = model
    assert m.predicted_change() == 0.0 and not m.stale
    m.move(2, occurrence=0)
    assert m.stale
    assert m.predicted_change() == pytest.approx(oracle(m), rel=1e-10, abs=1e-15)
    m.leave_out(7)                       # a removal only: the schedule keeps its steps
    assert m.predicted_change() == pytest.approx(oracle(m), rel=1e-10, abs=1e-15)
    m.put_back()
    m.shuffle(5)                         # a whole-order edit
    assert m.predicted_change() == pytest.approx(oracle(m), rel=1e-10, abs=1e-15)
    m.reset()
    assert m.predicted_change() == 0.0


def test_prediction_follows_the_last_retrain_never_stale(model):
    m = model
    m.reverse()
    before = m.predicted_change()
    m.retrain()                          # the reversed run is now the reference
    assert m.predicted_change() == 0.0
    m.move(1)
    assert m.predicted_change() == pytest.approx(oracle(m), rel=1e-10, abs=1e-15)
    m.reset()                            # the baseline order, relative to the reversed run
    assert m.predicted_change() == pytest.approx(oracle(m), rel=1e-10, abs=1e-15)
    assert before == pytest.approx(float(dt.OrderPredictor(m.previous.traj, m.problem.test, mean=True).fit()
                                         .predict(m.order.reversed())[0]), rel=1e-10)


def test_one_predictor_per_trained_run(model, monkeypatch):
    m, fits = model, []
    fit = dt.OrderPredictor.fit
    monkeypatch.setattr(dt.OrderPredictor, "fit", lambda self: fits.append(self.traj) or fit(self))
    m.move(1); m.predicted_change(); m.best_step_curve(); m.slider_curve()
    m.move(1); m.predicted_change()
    assert fits == [m.result.traj]       # fitted once for the baseline run, whatever the edits
    m.retrain(); m.move(-1); m.predicted_change()
    assert len(fits) == 2 and fits[-1] is m.result.traj
    m.reset(); m.retrain(); m.move(1); m.predicted_change()
    assert len(fits) == 2                # back on the baseline run: its predictor is reused
    # a run with the same schedule but another trajectory (e.g. retrained elsewhere) is refitted
    sched = m.result.schedule
    m._predictions[sched].traj = dt.train(m.problem.model, m.problem.train, sched, m.problem.lr)
    m.predicted_change()
    assert len(fits) == 3 and m._predictions[sched].traj is m.result.traj


def test_history_grows_only_on_retrain_with_the_exact_pair(model):
    m = model
    first = m.result
    m.move(3, occurrence=0); m.move(-1); m.shuffle(2); m.reset(); m.move(2, occurrence=0)
    assert m.history == []               # edits never add a pair
    predicted, new_sched = m.predicted_change(), m.schedule()
    r = m.retrain()
    assert len(m.history) == 1
    h = m.history[0]
    assert h.predicted == predicted
    assert h.exact == pytest.approx(r.test_loss - first.test_loss, rel=1e-12)
    exact = float(dt.exact_order_change(first.traj, m.problem.test, new_sched).mean())
    assert h.exact == pytest.approx(exact, rel=1e-8, abs=1e-14)
    assert h.changes == op_mod.changed_pairs(first.schedule, new_sched) == 4   # one swap: 2 points x 2 steps
    m.retrain()                          # nothing changed
    m.set_point(5); m.retrain()          # another point, the same order: nothing to predict
    assert len(m.history) == 1
    m.reverse(); m.retrain()
    assert len(m.history) == 2 and m.history[1].changes > 4


def test_best_step_curve_is_the_insertion_identity(model):
    m = model
    p, T = m.point, len(m.order)
    occ = m.order.occurrences(p)
    c = dt.OrderPredictor(m.result.traj, m.problem.test, mean=True).fit().insertion_curve(p)[:, 0].numpy()
    for k, tk in enumerate(occ):
        curve = m.best_step_curve(k)
        free = [t for t in range(T) if p not in m.order.batches[t]]
        np.testing.assert_allclose(curve[free], c[free] - c[tk], rtol=1e-10, atol=1e-15)
        assert curve[tk] == 0.0 and all(np.isnan(curve[t]) for t in occ if t != tk)
        # moving the point alone (Schedule.move) is predicted by the library as the curve says
        t2 = free[len(free) // 2]
        assert curve[t2] == pytest.approx(oracle(m, m.order.move(p, tk, t2)), rel=1e-10, abs=1e-15)
    every = m.best_step_curve()
    for t in range(T):
        d = t - occ[0]
        if 0 <= occ[0] + d and occ[-1] + d < T:
            assert every[t] == pytest.approx(sum(c[s + d] - c[s] for s in occ), rel=1e-10, abs=1e-15)
        else:
            assert np.isnan(every[t])


def test_slider_curve_is_the_prediction_after_sliding_there(model):
    m = model
    m.move(1, occurrence=0)              # a pending edit: curves are relative to the last Retrain
    start, k = m.order, len(m.order.occurrences(m.point)) - 1
    curve, own = m.slider_curve(k), m.best_step_curve(k)
    assert np.isfinite(curve).sum() >= 3
    for t in range(len(start)):
        m.set_order(start)
        if np.isnan(curve[t]):
            with pytest.raises(ValueError):
                m.slide_to(t, k)
            continue
        m.slide_to(t, k)
        assert t in m.order.occurrences(m.point)
        assert m.predicted_change() == pytest.approx(curve[t], rel=1e-10, abs=1e-15)
        assert m.predicted_change() == pytest.approx(oracle(m), rel=1e-10, abs=1e-15)
    at = start.occurrences(m.point)[k]
    assert curve[at] == own[at] == pytest.approx(oracle(m, start), rel=1e-10, abs=1e-15)


def test_slide_is_a_position_not_a_path(model):
    m = model
    start, occ = m.order, m.order.occurrences(m.point)
    k = 0
    targets = [t for t in range(len(start)) if m.point not in start.batches[t]]
    idx = k
    for t in targets:                    # a drag over every free step (the view's selection follows) ...
        m.slide_to(t, idx)
        idx = m.order.occurrences(m.point).index(t)
    direct = wd.ReorderModel(m.problem, point=m.point)
    direct.move_occurrence_to(targets[-1], k)
    assert m.order == direct.order       # ... ends where one jump ends: the drag left no trace
    m.slide_to(occ[k], idx)
    assert m.order == start              # and sliding back restores the order
    m.move(1, occurrence=0)              # a button edit: the next slide starts from here
    here = m.order
    m.slide_to(here.occurrences(m.point)[0] + 1, 0)
    assert m.order == op_mod.shifted(here, m.point, 1, 0)


def test_random_moves_move_one_point():
    S = dt.Schedule.shuffled(20, 4, 2, seed=3)
    moves = op_mod.random_moves(S, 12, seed=5)
    assert len(moves) == 12 and moves == op_mod.random_moves(S, 12, seed=5)
    for new in moves:
        changes = op_mod.schedule_changes(S, new)
        assert len(changes) == 2 and op_mod.changed_pairs(S, new) == 2
        (t1, rem, ins1), (t2, rem2, ins) = sorted(changes, key=lambda c: -len(c[1]))
        assert len(rem) == 1 and ins1 == [] and rem2 == [] and ins == rem and rem[0] not in S.batches[t2]
    with pytest.raises(ValueError, match="count"):
        op_mod.random_moves(S, -1)
    with pytest.raises(ValueError, match="no point to move"):
        op_mod.random_moves(dt.Schedule.sequential(4, 4, 3), 1)     # full batches: every point at every step
    assert op_mod.random_moves(dt.Schedule.sequential(4, 4, 3), 0) == []


def test_no_prediction_when_a_batch_empties(problem):
    m = wd.ReorderModel(problem, point=3)
    last = m.order.batches[-1]
    if m.point in last:
        pytest.skip("the followed point is in the last batch")
    for i in last:
        m.leave_out(i)
    assert m.predicted_change() is None and "no prediction" in m.prediction_summary()
    assert np.isnan(m.best_step_curve()).all()
    m.retrain()
    assert m.history == [] and m.predicted_change() == 0.0


# ---- the view ------------------------------------------------------------------------------------
def _png(out) -> str:
    (o,) = out.outputs
    data = o["data"]["image/png"]
    assert base64.b64decode(data)[:4] == b"\x89PNG"
    return data


def test_readout_and_curve_update_on_every_edit_before_retrain(problem, monkeypatch):
    v = wd.ReorderExplorer(problem, point=3)
    m = v.model
    assert "+0.00e+00" in v.readout.value
    img = _png(v.predict_out)
    v.occurrence.value = 0
    v.buttons["later"].click()
    assert m.stale and f"{m.predicted_change():+.2e}" in v.readout.value and "predicted" in v.readout.value
    assert _png(v.predict_out) != img
    occ = m.order.occurrences(3)
    free = next(t for t in range(len(m.order)) if t not in occ)
    v.to_step.value = free               # the slider moves and predicts at once
    assert free in m.order.occurrences(3) and f"{m.predicted_change():+.2e}" in v.readout.value
    if len(occ) > 1:                     # a step the point already uses: a note, not an error
        v.to_step.value = occ[1]
        assert "cannot move there" in v.readout.value and free in m.order.occurrences(3)
    assert "".join(o.get("text", "") for o in v.log_out.outputs) == ""
    seen = {}
    retrain = m.retrain
    monkeypatch.setattr(m, "retrain", lambda: seen.setdefault("status", v.status.value) and retrain())
    v.retrain_button.click()
    assert "retraining" in seen["status"] and "up to date" in v.status.value
    assert len(m.history) == 1 and "last Retrain: predicted" in v.readout.value


def test_figure_areas_hold_their_figures(problem):
    from dve_teach import plots
    v = wd.ReorderExplorer(problem, point=3)
    for out, fig in [(v.out, v.model.figure()), (v.predict_out, v.model.prediction_figure()),
                     (v.frame_out, v.model.frame_figure(1))]:
        h = fig.get_figheight() * fig.dpi
        # the area grows to its figure (no fixed height); its minimum already holds it, so no jump
        assert out.layout.height is None and float(out.layout.min_height.removesuffix("px")) >= h, (out.layout, h)
    assert plots.PREDICTION_FIGSIZE[1] * plots.DPI <= float(v.predict_out.layout.min_height.removesuffix("px"))
