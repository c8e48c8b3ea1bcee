"""Lesson 00's PointModel / PointExplorer against the estimators they wrap (exact replays one point
at a time, the DVE's own influence table) and driven like a learner would, without a kernel."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach.tour import PointModel, sign_reading


@pytest.fixture(scope="module")
def model():
    split = dt.datasets.moons(40, 20, seed=1)
    traj = dt.train(dt.models.mlp((2, 6, 2), seed=1), split.train, dt.Schedule.shuffled(40, 8, 2, seed=1), lr=0.3)
    return PointModel(traj, split.test), traj, split


def test_numbers_are_the_estimators(model):
    m, traj, split = model
    loop = torch.stack([dt.exact_loo(traj, split.test, [i])[0].mean() for i in range(40)])
    torch.testing.assert_close(m.exact_, loop, rtol=1e-10, atol=1e-14)
    dve = dt.DataValueEmbedding().fit(traj).influence(split.test).total().mean(1)
    torch.testing.assert_close(m.estimate_, dve)
    assert m.point == int(traj.test_losses(split.train).argmax())
    m.point = 5
    steps, est, exact = m.occurrences()
    assert steps == traj.schedule.occurrences(5)
    for s, e in zip(steps, exact):
        assert float(e) == pytest.approx(float(dt.exact_loo(traj, split.test, [5], [s])[0].mean()), rel=1e-10)
    assert "point 5" in m.summary() and ("helped" in m.summary() or "hurt" in m.summary()
                                          or "barely" in m.summary())


@pytest.mark.parametrize("bad", [-1, 40, 2.5, True, "3"])
def test_bad_point_names_the_range(model, bad):
    with pytest.raises(ValueError, match="training index in 0..39"):
        model[0].point = bad


def test_sign_reading():
    assert sign_reading(0.5, 1.0).startswith("helped")
    assert sign_reading(-0.5, 1.0).startswith("hurt")
    assert sign_reading(0.001, 1.0).startswith("barely")


def test_explorer_buttons_and_slider(model):
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import PointExplorer
    _, traj, split = model
    v = PointExplorer(traj, split.test)
    v.controls["point"].value = 7
    assert v.model.point == 7 and "point 7" in v.readout.value
    harmful = [b for b in v.busy if getattr(b, "description", "") == "most harmful"][0]
    harmful.click()
    assert v.model.point == int(v.model.exact_.argmin()) and v.controls["point"].value == v.model.point
    assert v.last_figure is not None


def test_point_model_refuses_an_embedding_of_another_run(blobs_mlp):
    from dve_teach.teach.tour import PointModel
    p = blobs_mlp
    other = dt.train(p.model, p.train, dt.Schedule.shuffled(30, 8, epochs=2, seed=5), p.lr)
    with pytest.raises(ValueError, match="fitted on this run"):
        PointModel(p.traj, p.test, dve=dt.DataValueEmbedding().fit(other))


def test_removal_model_refuses_fractional_points(blobs_mlp):
    from dve_teach.teach.explorers import RemovalModel
    m = RemovalModel(blobs_mlp.traj, blobs_mlp.test, point=2)
    with pytest.raises((ValueError, TypeError), match="point"):
        m.point = 3.9
    assert m.point == 2
