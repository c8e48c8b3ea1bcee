"""The lesson-08 scaling model against the estimators it wraps: every cached result equals a fresh
`DataValueEmbedding` fit scored against a fresh `dt.exact_loo`; the cache, the share of the
unprojected Spearman, the matrix size, bad input; and the widget view driven without a kernel."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.influence.metrics import fidelity
from dve_teach.teach.explorers import Problem, order_for
from dve_teach.teach.scaling import KINDS, ScalingModel


def _problem(seed: int = 2) -> Problem:
    return Problem.digits(n_train=64, n_test=12, hidden=6, seed=seed)


@pytest.fixture(scope="module")
def model():
    return ScalingModel(_problem(), kind="gaussian", d=16, dims=(8, 16))


def test_run_and_truth_are_the_problems(model):
    p = _problem()
    traj = p.fit(order_for(p, "shuffle", p.seed))
    assert torch.equal(model.traj.final, traj.final)
    assert torch.allclose(model.exact_, dt.exact_loo(traj, p.test, list(range(64)), progress=False), atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_each_result_is_the_embedding_it_names(model, kind):
    r = model.result(kind, 16)
    dve = dt.DataValueEmbedding(proj_dim=16, projection=kind, seed=model.seed,
                                pca_samples=model.pca_samples).fit(model.traj)
    scores = dve.influence(model.test).total()
    assert r.dim == dve.embedding_dim_ and r.matrix_numbers == r.dim ** 2
    assert torch.allclose(r.scores, scores, atol=1e-12 * float(scores.abs().max()), rtol=0)
    assert r.spearman == pytest.approx(fidelity(scores, model.exact_)["spearman"], abs=1e-9)
    assert r.share == pytest.approx(r.spearman / model.reference_.spearman)
    assert model.result(kind, 16) is r                               # cached


def test_reference_is_unprojected(model):
    ref = model.reference_
    scores = dt.DataValueEmbedding().fit(model.traj).influence(model.test).total()
    assert ref.kind is None and ref.dim == model.traj.flat.P and ref.share == 1.0
    assert torch.allclose(ref.scores, scores, atol=1e-12 * float(scores.abs().max()), rtol=0)


def test_current_choice_sweep_table_summary_figure(model):
    model.kind, model.d = "pca", 8
    assert model.result() is model.result("pca", 8)
    rows = model.sweep(("gaussian", "pca"))
    assert [(r.kind, r.d) for r in rows] == [("gaussian", 8), ("gaussian", 16), ("pca", 8), ("pca", 16)]
    assert "pca" in model.summary() and f"{model.result().spearman:.3f}" in model.summary()
    lines = model.table().splitlines()
    assert len(lines) == 1 + len(model._cache)
    none = next(line.split() for line in lines if line.split()[0] == "none")
    P = model.traj.flat.P
    assert int(none[1]) == P and float(none[-1]) == pytest.approx(P * P * 8 / 2 ** 20, abs=1e-3)   # P×P float64, MiB
    fig = model.figure()
    kinds_drawn = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"gaussian", "pca"} <= kinds_drawn
    # one legend, beside the right panel: it hides no point of either panel (review L08-e1)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    legend = fig.axes[1].get_legend()
    assert fig.axes[0].get_legend() is None and legend is not None
    assert legend.get_window_extent(renderer).x0 >= fig.axes[1].get_window_extent(renderer).x1
    assert "current: pca, d = 8" in [t.get_text() for t in legend.get_texts()]


def test_layerwise_counts_blocks():
    m = ScalingModel(_problem(seed=4), kind="gaussian", d=16, dims=(16,), layerwise=True)
    r = m.result()
    dve = dt.DataValueEmbedding(proj_dim=16, layerwise=True, seed=m.seed).fit(m.traj)
    assert r.matrix_numbers == sum((b.stop - b.start) ** 2 for b in dve.projection_.blocks) < 16 ** 2


def test_bad_input_is_refused(model):
    with pytest.raises(ValueError, match="kind must be one of"):
        model.result("random", 8)
    with pytest.raises(ValueError, match="d must be an int"):
        model.result("pca", 10_000)
    with pytest.raises(ValueError, match="d must be an int"):
        model.result("gaussian", 0)


def test_widget_drives_the_model():
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import ScalingExplorer
    view = ScalingExplorer(_problem(), dims=(8, 16), d=8)
    first = view.out.outputs[0]["data"]["image/png"]
    view.controls["kind"].value = "kronecker"
    view.controls["d"].value = 16
    assert (view.model.kind, view.model.d) == ("kronecker", 16)
    assert "kronecker" in view.readout.value and view.out.outputs[0]["data"]["image/png"] != first
    assert view.controls["d"].continuous_update is False
    assert ("kronecker", 16) in view.model._cache and not view.log_out.outputs


def test_widget_reuses_a_model(model):
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import ScalingExplorer
    view = ScalingExplorer(model=model)
    assert view.model is model and view.controls["d"].value in model.dims
    with pytest.raises(ValueError, match="either model="):
        ScalingExplorer(_problem(), model=model)
