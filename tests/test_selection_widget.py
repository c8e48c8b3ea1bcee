"""Lesson 07's model (`dve_teach.teach.selection.SelectionModel`) against direct calls of
`dt.curation.select_and_train`, and its widget (`SelectionExplorer`) driven without a kernel."""
from __future__ import annotations

import numpy as np
import pytest

import dve_teach as dt
from dve_teach.teach.selection import STRATEGIES, SelectionModel


@pytest.fixture(scope="module")
def small(blobs_mlp):
    p = blobs_mlp
    return SelectionModel(p.model, p.train, p.test, p.test, epochs=2, batch_size=5, ratio=2, val_batch_size=3,
                          seeds=[0, 1], early=(0.0, 0.2), late=(0.8, 1.0))


def test_windows_to_steps(small):
    assert small.T == 12
    assert small.steps([(0.0, 0.2), (0.8, 1.0)]) == [(0, 2), (10, 12)]
    assert small.steps([(0.5, 0.5)]) == []                       # an empty window selects nothing
    with pytest.raises(ValueError, match="0 <= start <= stop <= 1"):
        small.steps([(0.6, 0.4)])
    for bad in ("x", [(0.1, 0.2, 0.3)], [0.5]):
        with pytest.raises(ValueError, match="a pair"):
            small.steps(bad)
    with pytest.raises(TypeError, match="window start must be a number"):
        small.steps([("0.1", 0.2)])


def test_run_is_select_and_train(small, blobs_mlp):
    p = blobs_mlp
    runs = small.run([(0.0, 0.2), (0.8, 1.0)])
    for s, sel in zip([0, 1], runs):
        order = dt.Schedule.shuffled(30, 5, 2, seed=s)
        ref = dt.curation.select_and_train(p.model, p.train, p.test, order, dt.lr.warmup_cosine(0.4, 12, warmup=1),
                                           windows=[(0, 2), (10, 12)], ratio=2, val_batch_size=3, test=p.test,
                                           seed=s)
        assert ref.test_loss == sel.test_loss and ref.selected_steps == sel.selected_steps == [0, 1, 10, 11]
    st = small.stats(runs)
    losses = np.array([r.test_loss for r in runs])
    assert st["loss"] == pytest.approx(losses.mean()) and st["spread"] == pytest.approx(losses.std())
    assert small.run([(0.0, 0.2), (0.8, 1.0)]) is runs          # cached by the steps
    never = small.stats(small.run(STRATEGIES["never"]))
    assert never["cost"] == 1.0


def test_widget(small):
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import SelectionExplorer
    view = SelectionExplorer(small)
    first = view.out.outputs[0]["data"]["image/png"]
    view.controls["late"].value = (0.5, 1.0)
    assert small.late == (0.5, 1.0) and view.out.outputs[0]["data"]["image/png"] != first
    assert "0.50–1.00" in view.readout.value
    assert "".join(o.get("text", "") for o in view.log_out.outputs) == ""
    view.controls["early"].value = (0.0, 0.0)
    r = small.update()
    assert r["current"]["cost"] == small.stats(small.run([(0.5, 1.0)]))["cost"]


def test_settings_are_checked_and_keyed(blobs_mlp):
    p = blobs_mlp
    with pytest.raises((ValueError, TypeError), match="epochs"):
        SelectionModel(p.model, p.train, p.test, p.test, epochs=2.9)
    m = SelectionModel(p.model, p.train, p.test, p.test, epochs=1, batch_size=5, ratio=2, val_batch_size=3,
                       seeds=[0])
    first = m.run([(0.0, 0.5)])
    m.peak = 0.1                       # a changed peak is a new run, not the cached one
    second = m.run([(0.0, 0.5)])
    assert second is not first and second[0].test_loss != first[0].test_loss
    m.peak = 0.4
    assert m.run([(0.0, 0.5)]) is first


@pytest.mark.parametrize("current, words", [(0.9, "worse than never selecting (by 20%"),
                                            (0.5, "that is 60% of the loss drop"),
                                            (0.2, "beats selecting always (by 20%")])
def test_readout_says_in_words_where_the_windows_land(small, monkeypatch, current, words):
    """never ends at 0.8 and always at 0.3 (a drop of 0.5): the readout places the windows' loss
    on that scale in words, with the seeds it averages over."""
    def stats(loss, cost):
        return {"loss": loss, "spread": 0.01, "losses": np.array([loss]), "cost": cost}
    monkeypatch.setattr(small, "update", lambda: {"current": stats(current, 2.0), "never": stats(0.8, 1.0),
                                                  "always": stats(0.3, 5.0)})
    text = small.summary()
    assert words in text and "over 2 seeds" in text and "0.800 → 0.300" in text and "×2.00" in text


def test_selection_figure_draws_points_not_bars():
    """Review L07-e2: points with error bars (and every seed's loss), never bars from a truncated axis."""
    from dve_teach.teach.selection import selection_figure
    rows = {name: {"loss": loss, "spread": 0.01, "losses": np.array([loss - 0.01, loss + 0.01]), "cost": cost}
            for name, loss, cost in (("never", 0.45, 1.0), ("early + late", 0.44, 2.6), ("always", 0.39, 5.0))}
    ax = selection_figure(rows, "t").axes[0]
    assert not ax.patches                                                   # no bars
    means = [c for c in ax.collections if len(c.get_offsets()) == 2]        # one seed dots per timing
    assert len(means) == 3
    lo, hi = ax.get_ylim()
    assert lo < 0.38 and hi > 0.46                                          # every error bar on screen
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == list(rows)
