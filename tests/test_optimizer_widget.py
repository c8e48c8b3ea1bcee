"""Lesson 09's models (`dve_teach.teach.optimizers`) against direct computations with the library,
and its widget (`OptimizerExplorer`) driven without a kernel: results change when any setting
changes, the cache is keyed on every setting, bad settings are refused with clear errors."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach import optimizers as to
from dve_teach.training.linearize import removal_deltas


@pytest.fixture(scope="module")
def problem():
    return to.optimizer_problem(seed=3, n_train=20, n_test=6, epochs=2)    # 4 steps of b = 10


@pytest.fixture()
def model(problem):
    return to.OptimizerModel(problem, optimizer="adam")


def test_make_rule():
    assert to.make_rule("sgd") == dt.optim.SGD()
    assert to.make_rule("momentum", beta1=0.8) == dt.optim.SGD(momentum=0.8)
    assert to.make_rule("adam", 0.8, 0.99) == dt.optim.Adam(betas=(0.8, 0.99))
    assert to.make_rule("adamw") == dt.optim.AdamW(betas=(0.9, 0.999), weight_decay=0.01)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        to.make_rule("rmsprop")
    with pytest.raises(ValueError, match=r"beta2 must be a number in \[0, 1\)"):
        to.make_rule("adam", beta2=1.0)


def test_update_against_the_library(problem, model):
    r = model.update()
    order = dt.Schedule.shuffled(20, 10, 2, seed=3)
    ref = dt.train(problem.model, problem.train, order, 0.05, optimizer=dt.optim.Adam())
    assert torch.equal(r["traj"].final, ref.final)
    exact = dt.exact_loo(ref, problem.test, list(range(20)))
    assert torch.allclose(r["exact"], exact)
    assert torch.allclose(r["estimates"]["unrolled"], dt.unrolled_influence(ref, problem.test).total())
    frozen = dt.DataValueEmbedding(hessian="ggn", optimizer="frozen_preconditioner").fit(ref).influence(problem.test)
    assert torch.allclose(r["estimates"]["DVE frozen v"], frozen.total())
    assert torch.allclose(r["estimates"]["TracIn"], dt.tracin(ref, problem.test).total())
    assert list(r["spearman"]) == list(to.METHODS)
    for m, est in r["estimates"].items():
        assert r["spearman"][m] == pytest.approx(dt.metrics.fidelity(est, exact)["spearman"])
    assert model.update() is r                                                 # cached
    assert "adam, lr 0.05" in model.summary() and "DVE SGD proxy" in model.summary()


def test_on_plain_sgd_the_proxy_is_the_recorded_embedding(problem):
    r = to.OptimizerModel(problem, optimizer="sgd").update()
    assert "DVE frozen v" not in r["estimates"]
    assert torch.equal(r["estimates"]["DVE recorded"], r["estimates"]["DVE SGD proxy"])
    assert set(r["spearman"]) == set(to.METHODS) - {"DVE frozen v"}


@pytest.mark.parametrize("name, value", [("optimizer", "adamw"), ("lr", 0.02), ("beta1", 0.5), ("beta2", 0.99)])
def test_results_change_when_any_setting_changes(model, name, value):
    before = model.update()
    setattr(model, name, value)
    after = model.update()
    assert after is not before
    assert not torch.equal(after["traj"].final, before["traj"].final)
    assert not torch.equal(after["exact"], before["exact"])
    assert all(not torch.equal(after["estimates"][m], before["estimates"][m]) for m in before["estimates"])


def test_cache_is_keyed_on_every_setting(model, monkeypatch):
    calls = []
    real = to.train_with
    monkeypatch.setattr(to, "train_with", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    first = model.update()
    for name, value in [("beta2", 0.99), ("beta1", 0.8), ("lr", 0.01), ("optimizer", "adamw")]:
        setattr(model, name, value)
        model.update()
    assert len(calls) == 5 and len(set(calls)) == 5                     # a new run for every change
    model.optimizer, model.lr, model.beta1, model.beta2 = "adam", None, 0.9, 0.999
    assert model.update() is first and len(calls) == 5                  # back to the first: cached
    assert set(model._cache) == {("adam", 0.05, 0.9, 0.999), ("adam", 0.05, 0.9, 0.99), ("adam", 0.05, 0.8, 0.99),
                                 ("adam", 0.01, 0.8, 0.99), ("adamw", 0.01, 0.8, 0.99)}


@pytest.mark.parametrize("name, value, error, match", [
    ("optimizer", "rmsprop", ValueError, "optimizer must be one of"),
    ("optimizer", None, ValueError, "optimizer must be one of"),
    ("lr", "0.1", TypeError, "lr must be a number"),
    ("lr", 0.0, ValueError, r"lr must be a number in 0.001..1"),
    ("lr", 5.0, ValueError, r"lr must be a number in 0.001..1"),
    ("lr", float("nan"), ValueError, "lr must be a number in"),
    ("beta1", 1.0, ValueError, r"beta1 must be a number in \[0, 1\)"),
    ("beta1", -0.1, ValueError, r"beta1 must be a number in \[0, 1\)"),
    ("beta2", True, TypeError, "beta2 must be a number"),
    ("beta2", torch.ones(2), TypeError, "beta2 must be a single number"),
])
def test_bad_settings_are_refused(model, name, value, error, match):
    setattr(model, name, value)
    with pytest.raises(error, match=match):
        model.update()
    with pytest.raises(error, match=match):
        to.OptimizerModel(model.problem, **{name: value})


def test_bad_constructor_arguments(problem):
    with pytest.raises(ValueError, match="hessian must be one of"):
        to.OptimizerModel(problem, hessian="exact")
    with pytest.raises(TypeError, match="seed must be an integer"):
        to.optimizer_problem(seed=1.5j)


def test_a_diverging_run_is_refused_clearly(problem):
    with pytest.raises(ValueError, match="sgd diverged at this learning rate"):
        to.train_with(problem, "sgd", lr=1e6)


def test_step_response_and_sign_flips(problem):
    traj = to.train_with(problem, "adam")
    resp = to.step_response(traj, 0, [0.0, 0.5, 1.0])                        # [m, 3, P]
    s = traj.state(0)
    _, X, y = traj.batch(0)
    G = traj.objective.per_sample_grads(traj.params(0), X, y)
    full = removal_deltas(traj.optimizer, s, G, 0.05, 0, 10)[:, :traj.flat.P]
    assert torch.equal(resp[:, 0], torch.zeros_like(resp[:, 0]))
    assert torch.allclose(resp[:, 2], full, atol=1e-15)
    flips = to.sign_flips(traj, 0)
    # Adam's first step is -η g/(|g| + ε) (m̂ = g, v̂ = g²): a flipped coordinate moves by about 2η, the others
    # by about nothing
    g = G.sum(0) / 10
    step = lambda g: -0.05 * g / (g.abs() + 1e-8)  # noqa: E731
    assert torch.allclose(full, step(g - G / 10) - step(g), rtol=1e-9, atol=1e-14)
    assert flips.any() and bool((full[flips].abs() > 0.05).all())
    assert float(full[flips].abs().median()) == pytest.approx(0.1, rel=1e-4)
    assert float(full[~flips].abs().median()) < 1e-6 * 0.05
    sgd = to.train_with(problem, "sgd")
    lin = to.step_response(sgd, 1, [0.0, 0.5, 1.0])
    assert torch.allclose(lin[:, 1], 0.5 * lin[:, 2], atol=1e-15)              # SGD: linear in the weight


def test_first_order_by_step(problem):
    traj = to.train_with(problem, "adam")
    r = to.first_order_by_step(problem, traj)
    pts, sts = traj.schedule.occurrence_pairs()
    exact = dt.exact_loo(traj, problem.test, pts, sts).mean(1)
    est = dt.unrolled_influence(traj, problem.test).per_occurrence.mean(1)
    assert torch.allclose(r["exact"], exact, atol=1e-12) and torch.allclose(r["estimate"], est, atol=1e-12)
    rel = ((est - exact).abs() / exact.abs())[torch.as_tensor(sts) == 2]
    assert float(r["rel_error"][2]) == pytest.approx(float(rel.median()), rel=1e-6)
    assert r["rel_error"].shape == (traj.T,) and r["size"].shape == (traj.T,)


def test_phase_run(problem):
    r = to.phase_run(problem, "adamw", peak=0.05, exact_steps=3, per_step=2, seed=1)
    traj = r["traj"]
    assert torch.equal(traj.lrs, dt.lr.warmup_cosine(0.05, 4, warmup=0).values())   # round(0.1 · 4) = 0 warm-up steps
    view = dict(reduce="mean_abs", per_lr=True, lrs=traj.lrs, test="mean")
    est = dt.unrolled_influence(traj, problem.test)
    assert torch.allclose(r["curve"], est.by_step(**view), rtol=1e-8)
    pts, sts = dt.phases.sample_occurrences(traj.schedule, list(r["exact_steps"]), 2, seed=1)
    ex = dt.Influence(dt.exact_loo(traj, problem.test, pts, sts), pts, sts, 20).by_step(**view)[r["exact_steps"]]
    assert torch.allclose(r["exact_curve"], ex)
    s = traj.state(1)
    _, X, y = traj.batch(1)
    G = traj.objective.per_sample_grads(traj.params(1), X, y)
    kick = removal_deltas(traj.optimizer, s, G, float(traj.lrs[1]), 1, 10)[:, :traj.flat.P].norm(dim=1).mean()
    assert float(r["kicks"][1]) == pytest.approx(float(kick) / float(traj.lrs[1]))


def test_widget_drives_the_model(model):
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import OptimizerExplorer
    view = OptimizerExplorer(model=model)
    assert view.model is model and len(view.out.outputs) == 1 and view.status.value.startswith("done")
    first = view.out.outputs[0]["data"]["image/png"]
    view.controls["beta2"].value = 0.99
    assert model.beta2 == 0.99 and model.update()["traj"].optimizer == dt.optim.Adam(betas=(0.9, 0.99))
    assert view.out.outputs[0]["data"]["image/png"] != first
    view.controls["optimizer"].value = "momentum"                 # resets η to momentum's default
    assert model.lr == to.DEFAULT_LR["momentum"] == view.controls["lr"].value
    assert model.update()["traj"].optimizer == dt.optim.SGD(momentum=0.9)
    assert not view.controls["beta1"].disabled and view.controls["beta2"].disabled
    view.controls["optimizer"].value = "sgd"
    assert view.controls["beta1"].disabled and "sgd, lr 0.3" in view.readout.value
    view.controls["lr"].value = 0.1
    assert model.settings() == ("sgd", 0.1, 0.9, 0.99)
    assert "".join(o.get("text", "") for o in view.log_out.outputs) == ""


def test_widget_shows_a_failed_setting(model, monkeypatch):
    pytest.importorskip("ipywidgets")
    from dve_teach.widgets import OptimizerExplorer
    view = OptimizerExplorer(model=model)
    monkeypatch.setattr(to, "train_with", lambda *a, **k: (_ for _ in ()).throw(ValueError("diverged")))
    view.controls["beta1"].value = 0.5
    assert "diverged" in view.readout.value and "failed" in view.status.value
    assert "ValueError: diverged" in "".join(o.get("text", "") for o in view.log_out.outputs)
