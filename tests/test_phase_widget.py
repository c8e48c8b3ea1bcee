"""Lesson 06's model (`dve_teach.teach.phases.PhaseModel`) against direct computations with the
library, and its widget (`PhaseExplorer`) driven without a kernel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dve_teach as dt
from dve_teach.teach import phases as tp


@pytest.fixture(scope="module")
def small():
    from dve_teach.teach.explorers import Problem
    problem = Problem.digits(n_train=48, n_test=6, batch_size=8, hidden=4, lr=0.2)
    return tp.PhaseModel(problem, schedule="warmup_cosine", peak=0.3, epochs=2, exact_steps=4, per_step=2)


def test_make_schedule():
    assert tp.make_schedule("constant", 0.2, 10) == dt.lr.constant(0.2)
    assert tp.make_schedule("warmup_cosine", 0.2, 10) == dt.lr.warmup_cosine(0.2, 10, warmup=1)
    assert tp.make_schedule("linear_decay", 0.2, 20, warmup=0.25) == dt.lr.linear_decay(0.2, 20, warmup=5)
    assert tp.make_schedule("step_decay", 0.2, 12) == dt.lr.step_decay(0.2, 3, gamma=0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        tp.make_schedule("cyclic", 0.2, 10)


def test_mean_test_loss_measure(small):
    p = small.problem
    traj = small.update()["traj"]
    one = dt.sgd_influence(traj, p.test[[0]], measure=tp.mean_test_loss(p)).per_occurrence[:, 0]
    every = dt.sgd_influence(traj, p.test).per_occurrence.mean(1)
    assert torch.allclose(one, every, rtol=1e-9, atol=1e-15)   # influence is linear in the measure


def test_update_against_the_library(small):
    r = small.update()
    traj, p = r["traj"], small.problem
    assert traj.T == 12 and torch.equal(traj.lrs, dt.lr.warmup_cosine(0.3, 12, warmup=1).values())
    ref = dt.train(p.model, p.train, dt.Schedule.shuffled(48, 8, 2, seed=0), dt.lr.warmup_cosine(0.3, 12, warmup=1))
    assert torch.equal(traj.final, ref.final)
    view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
    dve = dt.DataValueEmbedding().fit(traj).influence(p.test)
    assert torch.allclose(r["curve"], dve.by_step(**view))
    sgd = dt.sgd_influence(traj, p.test)
    assert torch.allclose(r["sgd_curve"], sgd.by_step(**view), rtol=1e-9)
    assert list(r["exact_steps"]) == [0, 4, 7, 11]
    pts, sts = dt.phases.sample_occurrences(traj.schedule, [0, 4, 7, 11], 2, seed=0)
    ex = dt.Influence(dt.exact_loo(traj, p.test, pts, sts), pts, sts, 48).by_step(**view)[[0, 4, 7, 11]]
    assert torch.allclose(r["exact_curve"], ex)
    assert small.update() is r                                    # cached
    assert "warmup_cosine" in small.summary()


def test_widget_drives_the_model(small):
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import PhaseExplorer
    view = PhaseExplorer(model=small)
    assert view.model is small and len(view.out.outputs) == 1
    first = view.out.outputs[0]["data"]["image/png"]
    view.controls["epochs"].value = 1
    assert small.epochs == 1 and small.update()["traj"].T == 6
    assert view.out.outputs[0]["data"]["image/png"] != first
    view.controls["schedule"].value = "step_decay"
    assert np.allclose(small.update()["traj"].lrs.numpy(), 0.3 * 0.5 ** np.arange(6))   # halves every T//4 = 1 step
    assert "".join(o.get("text", "") for o in view.log_out.outputs) == ""
    view.controls["epochs"].value = 2
    view.controls["schedule"].value = "warmup_cosine"             # back to a cached run
    assert "warmup_cosine" in view.readout.value


@pytest.mark.parametrize("kw, match", [({"epochs": 2.5}, "epochs must be a whole number"),
                                       ({"epochs": True}, "epochs must be an integer"),
                                       ({"epochs": 0}, "epochs must be >= 1"),
                                       ({"peak": "0.4"}, "peak must be a number"),
                                       ({"seed": -1}, "seed must be >= 0")])
def test_phase_model_refuses_bad_settings(kw, match):
    from dve_teach.teach.phases import PhaseModel
    from dve_teach.widgets import Problem
    problem = Problem.digits(n_train=40, n_test=8, seed=0)
    with pytest.raises((TypeError, ValueError), match=match):
        PhaseModel(problem, **kw)
    m = PhaseModel(problem, epochs=1)
    if "epochs" in kw:
        m.epochs = kw["epochs"]                      # what the widget does: set, then update
        with pytest.raises((TypeError, ValueError), match=match):
            m.update()


def test_every_setting_is_in_the_cache_key(small):
    """A changed warm-up (or any other setting) gives a new run, never the cached one."""
    base = small.update()
    small.warmup = 0.5
    try:
        other = small.update()
        assert other is not base and not torch.equal(other["traj"].lrs, base["traj"].lrs)
        for bad, name in ((2.5, "epochs"), (True, "epochs")):
            small.epochs = bad
            with pytest.raises((ValueError, TypeError), match=name):
                small.update()
        small.epochs = 2
        small.warmup = 1.5
        with pytest.raises(ValueError, match="warmup"):
            small.update()
    finally:
        small.warmup, small.epochs = 0.1, 2
    assert small.update() is base


def test_figure_marks_exact_and_estimate_at_the_same_points(small):
    """Review L06-a1/e1: the exact diamonds (dark, not a curve's hue) sit beside SGD-influence at the
    same sampled points (hollow), and the legend names the smoothing, beside the panels."""
    r = small.update()
    fig = small.figure()
    a = fig.axes[1]
    offsets = [c.get_offsets() for c in a.collections]
    assert len(offsets) == 2
    steps = np.asarray(r["exact_steps"], float)
    assert all(np.allclose(o[:, 0], steps) for o in offsets)
    assert any(np.allclose(o[:, 1], r["exact_curve"].numpy()) for o in offsets)
    assert any(np.allclose(o[:, 1], r["sgd_at_samples"].numpy()) for o in offsets)
    labels = [t.get_text() for t in a.get_legend().get_texts()]
    smoothed = r["traj"].T // 20 > 1                 # the thick line averages T // 20 steps
    assert (any(t.startswith("thick: mean of") for t in labels) and "thin: every step" in labels) == smoothed
