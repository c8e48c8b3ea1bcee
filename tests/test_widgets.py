"""The lesson widgets driven without a kernel: set ``.value``, ``.click()``, then check the model's
state against an oracle (a fresh `dt.train`, `dt.exact_loo`, `DataValueEmbedding` on the same
order), that the displayed figure changed, every slider's extremes, the log pane and the busy state.
"""
from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Annotation

import dve_teach as dt
from dve_teach import plots
from dve_teach import widgets as wd
from dve_teach.influence.embedding import DataValueEmbedding
from dve_teach.influence.loo import exact_loo

pytest.importorskip("ipywidgets")


def png(view, out=None) -> str:
    """The PNG the Output shows (base64)."""
    outputs = (out or view.out).outputs
    assert len(outputs) == 1 and outputs[0]["output_type"] == "display_data"
    data = outputs[0]["data"]["image/png"]
    assert base64.b64decode(data)[:4] == b"\x89PNG"
    return data


def log_text(view) -> str:
    return "".join(o.get("text", "") for o in view.log_out.outputs)


def no_errors(view) -> None:
    assert log_text(view) == "", log_text(view)


def per_point(dve, n) -> torch.Tensor:
    return torch.zeros(n, dve.embeddings_.shape[1], dtype=dve.embeddings_.dtype).index_add_(
        0, dve.points_, dve.embeddings_)


@pytest.fixture(scope="module")
def moons():
    """40 train / 12 test moons, a 2-6-2 MLP, b = 8, 2 epochs (10 steps)."""
    return wd.Problem.moons(n_train=40, n_test=12, epochs=2, batch_size=8, hidden=6, seed=1)


@pytest.fixture(scope="module")
def digits_problem():
    return wd.Problem.digits(n_train=60, n_test=6, epochs=1, batch_size=16, hidden=6, lr=0.2)


@pytest.fixture(scope="module")
def digits_run(digits_problem):
    p = digits_problem
    return p.fit(wd.order_for(p, "shuffle", 0)), p.test


# ---- plots ----------------------------------------------------------------------------------------
def test_palette_and_style_are_seaborns():
    sns = pytest.importorskip("seaborn")
    assert plots.COLORS == sns.color_palette("colorblind").as_hex()
    assert {k: v for k, v in sns.axes_style("whitegrid").items() if k != "image.cmap"}.items() <= plots.STYLE.items()


def test_pca_basis_is_the_top_singular_subspace():
    E = torch.randn(30, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    V = plots.pca_basis(E)
    assert V.shape == (6, 2)
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-12)
    _, _, Vt = np.linalg.svd(E.numpy(), full_matrices=False)
    np.testing.assert_allclose(np.abs(V.T @ Vt[:2].T), np.eye(2), atol=1e-10)
    assert np.all(plots.project(torch.zeros(3, 6), V) == 0)  # "no influence yet" sits at the origin


def test_decision_boundary_needs_2d_inputs(digits_run):
    traj, _ = digits_run
    with plots.style():
        fig, ax = plots.new_figure()
        with pytest.raises(ValueError, match="2-D inputs"):
            plots.decision_boundary(ax[0, 0], traj)


def test_fidelity_scatter_rejects_mismatched_shapes():
    with plots.style():
        fig, ax = plots.new_figure()
        with pytest.raises(ValueError, match="matching"):
            plots.fidelity_scatter(ax[0, 0], np.zeros(3), np.zeros(4))


# ---- lesson 01 ------------------------------------------------------------------------------------
def test_order_explorer(moons):
    v = wd.OrderExplorer(moons, seed=5, n_orders=6)
    no_errors(v)
    seed, preset = v.controls["seed"], v.controls["preset"]
    first = png(v)
    for value in (seed.min, seed.max):
        seed.value = value
        assert v.model.seed == value
        no_errors(v)
    assert png(v) != first and f"seed {seed.max}" in v.readout.value
    ref = dt.train(moons.model, moons.train, dt.Schedule.shuffled(40, 8, 2, seed=seed.max), moons.lr)
    assert v.model.update()["test_loss"] == pytest.approx(float(ref.test_losses(moons.test).mean()), rel=1e-10)
    ref3 = dt.train(moons.model, moons.train, dt.Schedule.shuffled(40, 8, 2, seed=3), moons.lr)
    assert v.model.spread()[3] == pytest.approx(float(ref3.test_losses(moons.test).mean()), rel=1e-8)

    assert not seed.disabled
    y = moons.train.y.numpy()
    for name in wd.PRESETS:
        before = png(v)
        preset.value = name
        no_errors(v)
        s = v.model.schedule
        assert sorted(s.order) == sorted(list(range(40)) * 2)  # two passes over every point
        if name != "shuffle":
            assert png(v) != before
    preset.value = "class-sorted"
    assert seed.disabled  # the seed only matters for the shuffle
    assert np.all(np.diff(y[list(v.model.schedule.order)[:40]]) >= 0)
    preset.value = "easy→hard (loss at init)"
    with torch.no_grad():
        init = torch.nn.functional.cross_entropy(moons.model(moons.train.X), moons.train.y, reduction="none")
    assert np.all(np.diff(init.numpy()[list(v.model.schedule.order)[:40]]) >= 0)


# ---- lesson 02 ------------------------------------------------------------------------------------
def test_removal_explorer(moons):
    traj = moons.fit(wd.order_for(moons, "shuffle", 0))
    v = wd.RemovalExplorer(traj, moons.test)
    point, step, renorm = v.controls["point"], v.controls["step"], v.controls["renormalize"]
    for value in (point.max, point.min, 5):
        point.value = value
        assert v.model.point == value and v.model.step is None
        assert [t for _, t in step.options[1:]] == traj.schedule.occurrences(value)
        no_errors(v)
    before = png(v)
    t = traj.schedule.occurrences(5)[-1]
    step.value = t
    assert v.model.step == t and png(v) != before
    r = v.model.update()
    torch.testing.assert_close(r["tsloo"], exact_loo(traj, moons.test, [5], [t])[0])
    assert torch.all(r["divergence"][:t + 1] == 0) and r["divergence"][t + 1] > 0
    assert f"{float(r['tsloo'].mean()):+.3e}" in v.readout.value
    renorm.value = True
    torch.testing.assert_close(v.model.update()["tsloo"],
                               exact_loo(traj, moons.test, [5], [t], renormalize=True)[0])
    other = next(i for i in range(40) if t not in traj.schedule.occurrences(i))
    point.value = other  # the step no longer holds the point: back to "every occurrence"
    assert v.model.step is None and step.value == -1
    no_errors(v)


# ---- lesson 03 ------------------------------------------------------------------------------------
def test_learning_rate_explorer(moons):
    v = wd.LearningRateExplorer(moons, lr=2.0, points=list(range(10)), lr_range=(0.02, 2.0))
    lr = v.controls["lr"]
    images = [png(v)]
    for value in (10 ** lr.min, 10 ** lr.max):
        lr.value = value
        assert v.model.lr == pytest.approx(value)
        no_errors(v)
        images.append(png(v))
    assert images[0] != images[1] != images[2]  # the lr-vs-spearman panel grew a point
    r = v.model.update()
    traj = dt.train(moons.model, moons.train, v.model.schedule, v.model.lr)
    np.testing.assert_allclose(r["exact"], exact_loo(traj, moons.test, list(range(10))).mean(1).numpy(), rtol=1e-8)
    lr.value = 10 ** lr.min  # cached; a small step: the first-order estimate ranks the points right
    assert v.model.update()["spearman"] > 0.9 and len(v.model._cache) == 2
    v.model.lr = 50.0
    with pytest.raises(ValueError, match="outside"):
        v.model.update()


# ---- lesson 04 ------------------------------------------------------------------------------------
def test_digit_explorer(digits_run):
    traj, test = digits_run
    v = wd.DigitExplorer(traj, test, k=3)
    scores = DataValueEmbedding().fit(traj).influence(test).total()
    torch.testing.assert_close(v.model.scores, scores)
    ti, k = v.controls["test_index"], v.controls["k"]
    for value in (ti.max, ti.min):
        before = png(v)
        ti.value = value
        r = v.model.update()
        assert r["helpful"][0] == int(scores[:, value].argmax()) and r["harmful"][0] == int(scores[:, value].argmin())
        assert png(v) != before
        no_errors(v)
    i = v.model.update()["helpful"][0]
    assert v.model.caption(i).endswith(",".join(map(str, traj.schedule.occurrences(i))))
    for value in (k.max, k.min):
        k.value = value
        assert len(v.model.update()["helpful"]) == value
        no_errors(v)
    assert v.model.images[0] is traj.data.X  # a user's run: its inputs are drawn


def test_digits_problem_keeps_the_raw_images(digits_problem):
    train_img, test_img = digits_problem.images  # sklearn's 0..16 pixels, the same rows as the data
    assert train_img.shape == (60, 64) and test_img.shape == (6, 64)
    assert float(train_img.min()) >= 0 and float(train_img.max()) <= 16
    assert torch.all(train_img == train_img.round())
    sd = train_img.std(0, unbiased=False)
    z = (test_img - train_img.mean(0)) / torch.where(sd > 0, sd, 1.0)
    torch.testing.assert_close(z, digits_problem.test.X)


# ---- lesson 05 ------------------------------------------------------------------------------------
def test_reorder_explorer_default_problem():
    v = wd.ReorderExplorer()
    r = v.result
    no_errors(v)
    assert isinstance(r.exact, float) and isinstance(r.estimate, float)
    assert r.steps == r.schedule.occurrences(r.point) and r.xy.shape == (v.model.n, 2)
    assert isinstance(v.figure(), Figure)
    png(v), png(v, v.frame_out)
    assert "exact" in v.readout.value and "up to date" in v.status.value


@pytest.fixture(scope="module")
def _reorder(moons):
    return wd.ReorderExplorer(moons, point=3)


@pytest.fixture
def reorder(_reorder):
    """The module's explorer, back at its first order and point, log cleared (runs stay cached)."""
    v = _reorder
    v.buttons["reset"].click()
    v.point.value = 3
    v.occurrence.value = -1
    v.retrain()
    v.log_out.outputs = ()
    return v


def test_reorder_move_buttons(reorder):
    v, m = reorder, reorder.model
    T, sizes, pool = len(m.order), [len(b) for b in m.order.batches], sorted(m.order.order)
    occ = m.order.occurrences(3)
    v.buttons["later"].click()
    d = min(1, T - 1 - max(occ))
    assert m.order.occurrences(3) == [t + d for t in occ]
    v.buttons["first"].click()
    new = m.order.occurrences(3)
    assert new[0] == 0 and np.all(np.diff(new) == np.diff(occ))
    v.buttons["last"].click()
    assert m.order.occurrences(3)[-1] == T - 1
    v.occurrence.value = 0  # only the first occurrence moves
    before = m.order.occurrences(3)
    v.buttons["earlier"].click()
    after = m.order.occurrences(3)
    assert after[0] == before[0] - 1 and after[1:] == before[1:]
    assert v.occurrence.value == 0  # the selection survives the move: press again to move it further
    v.buttons["earlier"].click()
    assert m.order.occurrences(3)[0] == max(before[0] - 2, 0) and m.order.occurrences(3)[1:] == before[1:]
    assert [len(b) for b in m.order.batches] == sizes and sorted(m.order.order) == pool
    assert m.stale and "Retrain" in v.status.value
    no_errors(v)


def test_reorder_retrain_matches_oracles(reorder, moons):
    v, m = reorder, reorder.model
    first, old = png(v), v.result
    v.buttons["later"].click()
    v.retrain_button.click()
    r = v.result
    assert not m.stale and m.previous is old and r.steps == m.order.occurrences(3)
    traj = dt.train(moons.model, moons.train, m.order, moons.lr)
    torch.testing.assert_close(r.traj.final, traj.final)
    assert r.exact == pytest.approx(float(exact_loo(traj, moons.test, [3]).mean()), rel=1e-10)
    np.testing.assert_allclose(r.per_step_exact, exact_loo(traj, moons.test, [3] * len(r.steps), r.steps).mean(1))
    dve = DataValueEmbedding().fit(traj)
    infl = dve.influence(moons.test)
    assert r.estimate == pytest.approx(float(infl.total()[3].mean()), rel=1e-8)
    np.testing.assert_allclose(r.per_step_estimate, infl.at([3] * len(r.steps), r.steps).mean(1), rtol=1e-8)
    np.testing.assert_allclose(r.xy, plots.project(per_point(dve, 40), m.basis), rtol=1e-8, atol=1e-14)
    assert png(v) != first
    assert any(isinstance(a, Annotation) for a in v.last_figure.axes[0].get_children())  # the arrow
    assert "up to date" in v.status.value
    no_errors(v)


def test_reorder_order_edits(reorder, moons):
    v, m = reorder, reorder.model
    v.seed.value = 4
    v.buttons["shuffle"].click()
    assert m.order == dt.Schedule.shuffled(40, 8, 2, seed=4)
    v.buttons["reverse"].click()
    assert m.order == dt.Schedule.shuffled(40, 8, 2, seed=4).reversed()
    for name in wd.PRESETS[1:]:
        v.preset.value = name
        v.buttons["curriculum"].click()
        assert sorted(m.order.order) == sorted(list(range(40)) * 2)
        no_errors(v)
    assert np.all(np.diff(moons.train.y.numpy()[list(m.order.order)[:40]]) >= 0)  # class-sorted
    v.set_order(list(range(39, -1, -1)) * 2)
    assert m.order == dt.Schedule.from_order(list(range(39, -1, -1)) * 2, 8, 40)
    v.set_order(dt.Schedule.sequential(40, 8, 2))
    assert m.order == dt.Schedule.sequential(40, 8, 2)
    with pytest.raises(ValueError, match="more than once"):
        v.set_order([0, 0] + list(range(1, 40)))
    with pytest.raises(ValueError, match="40"):
        v.set_order(dt.Schedule.sequential(20, 8))
    v.buttons["reset"].click()
    assert m.order == m.baseline_order and not m.stale


def test_reorder_leave_out(reorder):
    v, m = reorder, reorder.model
    v.drop.value = 5
    v.buttons["leave_out"].click()
    assert m.left_out == {5} and m.stale
    r = v.retrain()
    assert 5 not in r.schedule.order and r.left_out == {5}
    assert np.all(r.xy[5] == 0)  # never seen: no embedding
    v.drop.value = m.point  # the chosen point cannot be left out: an error in the log, not raised
    v.buttons["leave_out"].click()
    assert "chosen point" in log_text(v) and "chosen point" in v.readout.value
    assert v.log_pane.selected_index == 0
    v.buttons["put_back"].click()
    assert m.left_out == frozenset()


def test_reorder_play_frames(reorder, moons):
    v, m = reorder, reorder.model
    T = len(v.result.schedule)
    assert (v.step.min, v.step.max, v.play.min, v.play.max) == (1, T, 1, T)
    images = []
    for s in (1, T):
        v.step.value = s
        images.append(png(v, v.frame_out))
        no_errors(v)
    assert images[0] != images[1]
    v.play.value = 2  # Play drives the slider
    assert v.step.value == 2
    dve = DataValueEmbedding().fit(v.result.traj.prefix(2))
    np.testing.assert_allclose(m.frame(2), plots.project(per_point(dve, 40), m.basis), rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(m.frame(T), v.result.xy, rtol=1e-8, atol=1e-14)  # relative to θ_T: the full run
    with pytest.raises(IndexError):
        m.frame(0)


def test_reorder_retrain_button_disabled_while_running(reorder, monkeypatch):
    v, m = reorder, reorder.model
    seen, retrain = {}, m.retrain

    def spy():
        seen["disabled"] = v.retrain_button.disabled
        return retrain()

    monkeypatch.setattr(m, "retrain", spy)
    v.buttons["earlier"].click()
    v.retrain_button.click()
    assert seen["disabled"] is True and v.retrain_button.disabled is False


def test_reorder_callback_error_goes_to_the_log(reorder, monkeypatch):
    v = reorder

    def boom():
        raise RuntimeError("boom in retrain")

    monkeypatch.setattr(v.model, "retrain", boom)
    v.retrain_button.click()  # does not raise
    assert "boom in retrain" in log_text(v) and "boom in retrain" in v.readout.value
    assert v.log_pane.selected_index == 0 and v.retrain_button.disabled is False
    assert v.retrain() is None


def test_reorder_caches_runs(reorder, monkeypatch):
    v, m = reorder, reorder.model
    calls = []
    fit = m.problem.fit
    monkeypatch.setattr(m.problem, "fit", lambda *a, **k: calls.append(1) or fit(*a, **k))
    v.buttons["reverse"].click()
    v.retrain()
    v.buttons["reverse"].click()
    v.retrain()  # back to the baseline order: cached
    assert len(calls) == 1


def test_reorder_model_plain_python_and_user_trajectory(moons):
    traj = dt.train(moons.model, moons.train, dt.Schedule.shuffled(40, 8, 2, seed=9), moons.lr)
    with pytest.raises(ValueError, match="test"):
        wd.ReorderModel(traj)
    m = wd.ReorderModel(traj, moons.test, point=0)
    assert m.result.traj is traj  # the user's run is the baseline, not retrained
    m.set_order(traj.schedule.reversed())
    assert m.stale
    r = m.retrain()
    ref = dt.train(traj.model_at(0), traj.data, traj.schedule.reversed(), moons.lr)
    torch.testing.assert_close(r.traj.final, ref.final)
    assert isinstance(m.figure(), Figure) and isinstance(m.frame_figure(1), Figure)
    with pytest.raises(ValueError, match="first' or 'last"):
        m.move_to("middle")
    with pytest.raises(IndexError):
        m.set_point(40)


def test_no_pyplot_figures_left_open():
    assert plt.get_fignums() == []


def test_reorder_to_step_slider(reorder):
    v, m = reorder, reorder.model
    sizes = [len(b) for b in m.order.batches]
    occ = m.order.occurrences(3)
    assert v.to_step.value == occ[0] and v.to_step.max == len(m.order) - 1 and v.to_step.continuous_update
    v.occurrence.value = len(occ) - 1                # the slider now sits on the last occurrence
    assert v.to_step.value == occ[-1]
    target = next(t for t in range(len(m.order)) if t not in occ and 3 not in m.order.batches[t])
    v.to_step.value = target
    moved = m.order.occurrences(3)
    assert target in moved and sorted(set(occ[:-1])) == sorted(set(moved) - {target})
    assert [len(b) for b in m.order.batches] == sizes and m.stale
    v.occurrence.value = -1                          # every occurrence: the earliest moves, the others shift
    before = m.order.occurrences(3)
    v.to_step.value = 0
    after = m.order.occurrences(3)
    assert after[0] == 0 and np.all(np.diff(after) == np.diff(before))
    no_errors(v)


def test_reorder_refuses_an_order_without_the_point(reorder):
    m = reorder.model
    with pytest.raises(ValueError, match="never uses the followed point 3"):
        m.set_order([0, 1, 2])
    with pytest.raises(ValueError, match="outside the run"):
        m.move_occurrence_to(len(m.order))


def test_reorder_frames_share_axes(reorder):
    m = reorder.model
    T = len(m.result.schedule)
    (x0, x1), (y0, y1) = m.frame_limits()
    for s in (max(1, T // 4), T):
        xy = m.frame(s)
        assert x0 < xy[:, 0].min() and xy[:, 0].max() < x1 and y0 < xy[:, 1].min() and xy[:, 1].max() < y1
        ax = m.frame_figure(s).axes[0]
        assert ax.get_xlim() == pytest.approx((x0, x1)) and ax.get_ylim() == pytest.approx((y0, y1))


@pytest.mark.parametrize("call, match", [
    (lambda m: m.move(1.5), "steps must be a whole number"),
    (lambda m: m.move(1, occurrence=-1), "occurrence -1 does not exist"),
    (lambda m: m.move(1, occurrence=9), "occurrence 9 does not exist"),
    (lambda m: m.move_occurrence_to(2.5), "step must be a whole number"),
    (lambda m: m.set_point(True), "point must be an integer"),
    (lambda m: m.shuffle(-1), "seed must be >= 0"),
    (lambda m: m.frame(1.5), "step s must be a whole number"),
])
def test_reorder_refuses_non_integer_arguments(reorder, call, match):
    """No silent truncation (2.5 -> 2) and no wrap-around (occurrence -1 = the last one)."""
    m = reorder.model
    before = m.order
    with pytest.raises((TypeError, ValueError), match=match):
        call(m)
    assert m.order == before


def test_reorder_model_keeps_a_runs_rule_dtype_and_step_sizes(blobs_mlp):
    """Retraining from a recorded run keeps its update rule and dtype (a float32 Adam run retrains as
    one), and leaving out a whole batch of a run with an η_t schedule drops that step's η_t too."""
    from dve_teach.teach.reorder import ReorderModel
    p = blobs_mlp
    lrs = [0.01 * (1 + t) for t in range(len(p.schedule))]
    run = dt.train(p.model, p.train, p.schedule, lrs, optimizer=dt.optim.Adam(), dtype=torch.float32)
    m = ReorderModel(run, dt.Data(p.test.X.float(), p.test.y))
    r = m.retrain()
    assert r.traj.optimizer == run.optimizer and r.traj.dtype == torch.float32
    assert torch.equal(r.traj.final, run.final)
    last = p.schedule.batches[-1]
    for i in last:                       # the whole last batch: 7 steps and 7 step sizes are left
        m.leave_out(i)
    r = m.retrain()
    assert r.traj.T == len(p.schedule) - 1 and torch.allclose(r.traj.lrs, torch.tensor(lrs[:-1], dtype=torch.float64))


def test_explorer_text_repr_is_a_sentence(moons):
    """Where the live widget is not shown (before the cell runs, after a reload), the notebook shows
    the plain-text repr: a sentence that says what to do, not the widget tree."""
    ex = wd.RemovalExplorer(dt.train(moons.model, moons.train, dt.Schedule.shuffled(40, 8, 1, seed=0), moons.lr),
                            moons.test)
    text = repr(ex)
    assert text.startswith("RemovalExplorer: ") and "Run this cell" in text and "children=" not in text


def _outputs(widget):
    """Every ipywidgets Output inside `widget` (depth first)."""
    import ipywidgets as W
    if isinstance(widget, W.Output):
        yield widget
    for child in getattr(widget, "children", ()):
        yield from _outputs(child)


def test_figure_areas_grow_to_their_figures(moons, reorder):
    """A figure area has a minimum height, never a fixed one: a fixed height smaller than the PNG
    clipped it or let the next control cover it in JupyterLab (tests/test_browser.py measures that in
    the browser). Checked on explorers of three kinds, every Output inside them."""
    traj = dt.train(moons.model, moons.train, dt.Schedule.shuffled(40, 8, 1, seed=0), moons.lr)
    views = [wd.RemovalExplorer(traj, moons.test), wd.PointExplorer(traj, moons.test), reorder]
    for view in views:
        outs = list(_outputs(view))
        assert outs, type(view).__name__
        for out in outs:
            assert out.layout.height is None, (type(view).__name__, out.layout.height)


def test_readout_says_computing_while_the_model_works(moons, monkeypatch):
    """The readout shows the computing note before the model's figure is drawn, then the summary."""
    traj = dt.train(moons.model, moons.train, dt.Schedule.shuffled(40, 8, 1, seed=0), moons.lr)
    v = wd.RemovalExplorer(traj, moons.test)
    seen = []
    figure = v.model.figure
    monkeypatch.setattr(v.model, "figure", lambda: (seen.append(v.readout.value), figure())[1])
    v.controls["point"].value = 3
    assert seen == [wd.COMPUTING] and v.readout.value != wd.COMPUTING and "point 3" in v.readout.value


def test_reorder_figure_keeps_one_colour_per_method(reorder):
    """Review L05-e1: DVE and exact have the same colours in the per-step panel and the totals panel."""
    import matplotlib.colors as mc
    fig = reorder.figure()
    middle, right = fig.axes[1], fig.axes[2]
    stems = {c.get_label(): mc.to_hex(c.get_facecolor()[0]) for c in middle.collections if c.get_label() in
             ("DVE", "exact (that step only)")}
    bars = [mc.to_hex(b.get_facecolor()) for b in right.patches]
    names = [t.get_text() for t in right.get_xticklabels()]
    by_name = dict(zip(names, bars))
    assert stems["DVE"] == by_name["DVE"] and stems["exact (that step only)"] == by_name["exact"]
