"""The figure helpers added for lessons 00-04 (issue 17): what each draws, checked on the artists
(not on pixels): plots.star_point, plots.legend_on_top, plots.probability_difference, the plain log
tick labels of plots.divergence_curve, LearningRateModel.figure(rates=False) and the titles of
lr_figure, PointModel's figure."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dve_teach as dt
from dve_teach import plots
from dve_teach.teach.explorers import LearningRateModel
from dve_teach.teach.tour import PointModel
from dve_teach.widgets import Problem


@pytest.fixture(scope="module")
def two_runs():
    split = dt.datasets.moons(40, 20, seed=0)
    model = dt.models.mlp((2, 6, 2), seed=0)
    runs = [dt.train(model, split.train, dt.Schedule.shuffled(40, 8, 2, seed=s), lr=0.5) for s in (0, 1)]
    return runs, split


def test_star_point_marks_the_point_in_a_legend():
    with plots.style():
        fig, ax = plots.new_figure(1)
        plots.star_point(ax[0, 0], 0.5, -0.2, "point 7")
    coll = ax[0, 0].collections[-1]
    np.testing.assert_allclose(coll.get_offsets()[0], [0.5, -0.2])
    assert [t.get_text() for t in ax[0, 0].get_legend().get_texts()] == ["point 7"]


def test_legend_on_top_leaves_the_data_below_the_legend_band():
    with plots.style():
        fig, ax = plots.new_figure(1)
        a = ax[0, 0]
        a.plot([0, 1, 2], [-1.0, -3.0, -2.0], "o", label="values")
        lo, hi = a.get_ylim()
        plots.legend_on_top(a, room=0.4)
    new_lo, new_hi = a.get_ylim()
    assert new_lo == lo and new_hi == pytest.approx(hi + 0.4 * (hi - lo))
    assert a.get_legend() is not None and a.get_legend()._loc == 9      # "upper center"


def test_probability_difference_is_b_minus_a(two_runs):
    (a, b), split = two_runs
    with plots.style():
        fig, ax = plots.new_figure(1)
        plots.probability_difference(ax[0, 0], a, b, split.test, title="worst − best")
    gx, gy, pa = plots._probability_grid(a, split.test.X.numpy())
    _, _, pb = plots._probability_grid(b, split.test.X.numpy())
    X = torch.as_tensor(np.c_[gx.ravel(), gy.ravel()])
    p = lambda run: run.predict(X).softmax(1)[:, 1].reshape(gx.shape).numpy()   # an independent oracle
    np.testing.assert_allclose(pb - pa, p(b) - p(a), atol=1e-10)
    assert np.abs(pb - pa).max() > 0                                       # two orders, two models
    assert ax[0, 0].get_title() == "worst − best" and len(fig.axes) == 2      # the panel and its colourbar
    with pytest.raises(ValueError, match="2-D inputs"):
        plots.probability_difference(ax[0, 0], a, b, dt.Data(torch.zeros(3, 5), torch.zeros(3, dtype=torch.int64)))


def test_log_axes_label_plain_numbers_at_1_2_5():
    labels = [plots._plain_log_labels(v) for v in (0.1, 0.2, 0.3, 0.5, 0.05, 2e-4, 7e-3, 0.0)]
    assert labels == ["0.1", "0.2", "", "0.5", "0.05", "0.0002", "", ""]
    with plots.style():
        fig, ax = plots.new_figure(1)
        plots.divergence_curve(ax[0, 0], torch.tensor([0.0, 0.3, 0.2, 0.05, 0.01]))
    assert ax[0, 0].get_yscale() == "log"
    assert ax[0, 0].yaxis.get_minor_formatter() is plots._plain_log_labels


def test_learning_rate_figure_without_the_rates_panel(two_runs):
    problem = Problem.moons(n_train=40, n_test=12, epochs=1, batch_size=8, hidden=6, seed=1)
    m = LearningRateModel(problem, lr=0.5, points=list(range(6)))
    one = m.figure(rates=False)
    assert len(one.axes) == 1 and "lr 0.5" in one.axes[0].get_xlabel()
    both = m.figure()
    right = both.axes[1]
    assert "lr" not in right.get_title() and "per learning rate" in right.get_title()
    assert any("lr 0.5" in t.get_text() for t in right.get_legend().get_texts())   # the star is named


def test_point_figure_names_the_star_and_frees_the_stems(two_runs):
    (a, _), split = two_runs
    m = PointModel(a, split.test, point=3)
    fig = m.figure()
    middle, right = fig.axes[1], fig.axes[2]                 # the colourbar is added last
    assert middle.get_legend()._loc == 9
    steps, est, exact = m.occurrences()
    top = max(float(est.max()), float(exact.max()), 0.0)
    assert middle.get_ylim()[1] > top                        # an empty band above every stem and the zero line
    assert [t.get_text() for t in right.get_legend().get_texts()][-1] == "point 3"
