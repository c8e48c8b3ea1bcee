"""Hostile models and hostile rows against every entry point, and widget models driven through random
sequences of settings (hypothesis properties, not listed cases).

1. **No crash deep in torch.** A model kind (returns a tuple or a dict, lives on the meta device, has
   a frozen layer or a parameter no output uses, embeds token ids) is crossed with a flawed row
   (a finite row whose loss is NaN, a token id or a label out of range; in the training or the test
   data, at a drawn position) and an entry point (train, exact LOO, the first-order sweeps, the
   embedding, TracIn, grad-dot, the influence function with a drawn damping, final losses over
   orders). Each draw gives a finite result of the right shape or an error raised by dve_teach
   whose message names the fix — and, for a flawed row, the row's index.
2. **Widget models never serve stale results.** A model taken through any sequence of settings shows
   what a fresh model built with the final settings shows (the cache key holds every setting that
   changes the result).

Inputs are counted with ``test_hostile.attempt`` (``DVE_TEACH_HOSTILE_REPORT`` writes the counts).
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dve_teach as dt

from test_bad_input import _TupleOut as _Tuple
from test_hostile import FAST, SLOW, _report, attempt  # noqa: F401  (_report: the counts, as there)


# ---- models ------------------------------------------------------------------------------------
class _Dict(_Tuple):
    def forward(self, x):
        return {"logits": self.lin(x)}


class _Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = dt.models.mlp((2, 4, 3), seed=0)
        self.spare = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, x):
        return self.net(x)


class _SqrtFirst(nn.Module):
    """Finite rows with x[0] < 0 give a NaN output (a sqrt inside forward)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(2, 3, dtype=torch.float64)

    def forward(self, x):
        return self.lin(x) * torch.sqrt(x[:, :1])


class _Tokens(nn.Module):
    """Token ids [n, 4] in 0..4 -> 3 classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(5, 3, dtype=torch.float64)
        self.out = nn.Linear(3, 3, dtype=torch.float64)

    def forward(self, x):
        return self.out(self.emb(x).mean(1))


def _frozen():
    m = dt.models.mlp((2, 4, 3), seed=0)
    m[0].weight.requires_grad_(False)
    return m


#: kind -> (model factory, input kind, what train must do: "ok" or a regex of its error)
MODELS = {
    "mlp": (lambda: dt.models.mlp((2, 4, 3), seed=0), "real", "ok"),
    "frozen layer": (_frozen, "real", "ok"),
    "unused parameter": (_Unused, "real", "ok"),
    "sqrt": (_SqrtFirst, "positive", "ok"),
    "tokens": (_Tokens, "tokens", "ok"),
    "tuple output": (_Tuple, "real", r"returned a tuple, not a Tensor"),
    "dict output": (_Dict, "real", r"returned a dict, not a Tensor"),
    "meta device": (lambda: dt.models.mlp((2, 4, 3)).to("meta"), "real", r"meta device"),
}

#: a flaw in one row of the training or the test data, for the input kinds it applies to
FLAWS = {"none": ("real", "positive", "tokens"), "nan output": ("positive",), "token out of range": ("tokens",),
         "label out of range": ("real", "positive", "tokens")}

ENTRIES = ("exact_loo", "sgd_influence", "unrolled_influence", "embedding", "tracin", "grad_dot",
           "influence_function", "final_test_losses")


def _data(kind: str, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    if kind == "tokens":
        X = torch.randint(0, 5, (n, 4), generator=g)
    else:
        X = torch.randn(n, 2, generator=g, dtype=torch.float64)
        if kind == "positive":
            X = X.abs() + 0.1
    return X, torch.randint(0, 3, (n,), generator=g)


def _flaw(X: torch.Tensor, y: torch.Tensor, flaw: str, row: int):
    X, y = X.clone(), y.clone()
    if flaw == "nan output":
        X[row, 0] = -1.0          # finite, but sqrt(-1) = NaN inside the model
    elif flaw == "token out of range":
        X[row, 1] = 7
    elif flaw == "label out of range":
        y[row] = 3
    return X, y


def _entry(name: str, traj, test, damping):
    model, train = traj.model, traj.data
    return {
        "exact_loo": lambda: dt.exact_loo(traj, test, [0, 1]),
        "sgd_influence": lambda: dt.sgd_influence(traj, test).total(),
        "unrolled_influence": lambda: dt.unrolled_influence(traj, test).total(),
        "embedding": lambda: dt.DataValueEmbedding().fit(traj).influence(test).total(),
        "tracin": lambda: dt.tracin(traj, test).total(),
        "grad_dot": lambda: dt.grad_dot(traj, test).total(),
        "influence_function": lambda: dt.influence_function(traj, test, damping=damping, solver="exact"),
        "final_test_losses": lambda: dt.orders.final_test_losses(model, train, test, [traj.schedule], 0.2),
    }[name]


@FAST
@given(kind=st.sampled_from(sorted(MODELS)), flaw=st.sampled_from(sorted(FLAWS)), row=st.integers(0, 7),
       seed=st.integers(0, 3))
def test_hostile_models_and_training_rows(kind, flaw, row, seed):
    """Training: a model torch would crash on, or a flawed training row, is refused by name."""
    make, inputs, trains = MODELS[kind]
    flaw = flaw if inputs in FLAWS[flaw] else "none"
    X, y = _flaw(*_data(inputs, 8, seed), flaw, row)
    sched = dt.Schedule.shuffled(8, 4, epochs=2, seed=seed)
    bad_row = flaw != "none"
    msg = trains if trains != "ok" else rf"rows \[{row}\]" if bad_row else r"^$"
    ok, traj = attempt(f"train[{kind}]", lambda: dt.train(make(), (X, y), sched, 0.2), msg)
    assert ok == (trains == "ok" and not bad_row), (kind, flaw, traj)
    if ok:
        assert torch.isfinite(traj.final).all()


_RUNS: dict = {}


def _run(kind: str, seed: int):
    """A clean run of a model kind that trains (cached: the property draws many queries per run)."""
    if (kind, seed) not in _RUNS:
        make, inputs, _ = MODELS[kind]
        _RUNS[kind, seed] = dt.train(make(), _data(inputs, 8, seed), dt.Schedule.shuffled(8, 4, epochs=2, seed=seed),
                                     0.2)
    return _RUNS[kind, seed]


@settings(FAST, max_examples=150)
@given(kind=st.sampled_from([k for k, m in MODELS.items() if m[2] == "ok"]), flaw=st.sampled_from(sorted(FLAWS)),
       row=st.integers(0, 5), entry=st.sampled_from(ENTRIES), damping=st.sampled_from([0.0, 1e-3, 1.0, "auto"]),
       seed=st.integers(0, 1))
def test_hostile_models_and_test_rows(kind, flaw, row, entry, damping, seed):
    """Every entry point on every model kind that trains: a flawed test row is refused naming the row;
    otherwise a finite result of the right shape (or, for the singular Hessian of an unused parameter
    with damping 0, an error that names damping)."""
    _, inputs, _ = MODELS[kind]
    flaw = flaw if inputs in FLAWS[flaw] else "none"
    traj = _run(kind, seed)
    X, y = _flaw(*_data(inputs, 6, seed + 100), flaw, row)
    bad_row = flaw != "none"
    needs_damping = kind == "unused parameter" and entry == "influence_function" and damping == 0.0
    msg = rf"test.*rows \[{row}\]" if bad_row else r"singular.*damping" if needs_damping else r"^$"
    with _quiet():
        ok, out = attempt(f"{entry}[{kind}]", lambda: _entry(entry, traj, (X, y), damping)(), msg,
                          ValueError, TypeError)
    assert ok == (not bad_row and not needs_damping), (entry, kind, flaw, damping, out)
    if ok:
        out = torch.as_tensor(out)
        assert torch.isfinite(out).all(), f"{entry} on {kind}: a non-finite result {out}"
        assert out.shape[-1] == 6 or entry == "final_test_losses", out.shape


class _quiet:
    """An indefinite Hessian only warns (documented); the property is about errors and results."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


# ---- widget models: any sequence of settings = a fresh model with the final settings ------------
@pytest.fixture(scope="module")
def phase_problem():
    from dve_teach.teach.explorers import Problem
    return Problem.digits(n_train=32, n_test=5, batch_size=8, hidden=4, lr=0.2)


@pytest.fixture(scope="module")
def optimizer_problem():
    from dve_teach.teach import optimizers as to
    return to.optimizer_problem(seed=3, n_train=16, n_test=4, epochs=2)


def _phase(problem, **kw):
    from dve_teach.teach.phases import PhaseModel
    return PhaseModel(problem, **{"schedule": "warmup_cosine", "peak": 0.3, "epochs": 1, "exact_steps": 3,
                                  "per_step": 2, **kw})


PHASE_SETTINGS = st.one_of(st.tuples(st.just("schedule"), st.sampled_from(["constant", "warmup_cosine", "step_decay"])),
                           st.tuples(st.just("peak"), st.sampled_from([0.1, 0.3, 0.5])),
                           st.tuples(st.just("epochs"), st.sampled_from([1, 2])),
                           st.tuples(st.just("warmup"), st.sampled_from([0.0, 0.1, 0.3])))


@SLOW
@given(edits=st.lists(PHASE_SETTINGS, min_size=1, max_size=4))
def test_phase_model_never_serves_a_stale_run(phase_problem, edits):
    from dve_teach.teach.phases import SCHEDULES
    m = _phase(phase_problem)
    m.update()
    for name, value in edits:
        if name == "schedule" and value not in SCHEDULES:
            continue
        setattr(m, name, value)
        m.update()
    final = {k: getattr(m, k) for k in ("schedule", "peak", "epochs", "warmup")}
    assert m.summary() == _phase(phase_problem, **final).summary(), final


OPT_SETTINGS = st.one_of(st.tuples(st.just("optimizer"), st.sampled_from(["sgd", "momentum", "adam", "adamw"])),
                         st.tuples(st.just("lr"), st.sampled_from([0.01, 0.05, 0.2])),
                         st.tuples(st.just("beta1"), st.sampled_from([0.0, 0.5, 0.9])),
                         st.tuples(st.just("beta2"), st.sampled_from([0.99, 0.999])))


@SLOW
@given(edits=st.lists(OPT_SETTINGS, min_size=1, max_size=4))
def test_optimizer_model_never_serves_a_stale_run(optimizer_problem, edits):
    from dve_teach.teach import optimizers as to
    m = to.OptimizerModel(optimizer_problem, optimizer="adam", lr=0.05)
    m.update()
    for name, value in edits:
        setattr(m, name, value)
        m.update()
    final = {k: getattr(m, k) for k in ("optimizer", "lr", "beta1", "beta2")}
    assert m.summary() == to.OptimizerModel(optimizer_problem, **final).summary(), final


@SLOW
@given(edits=st.lists(st.one_of(st.tuples(st.just("early"), st.sampled_from([(0.0, 0.2), (0.0, 0.5), (0.1, 0.3)])),
                                st.tuples(st.just("late"), st.sampled_from([(0.8, 1.0), (0.5, 1.0)])),
                                st.tuples(st.just("peak"), st.sampled_from([0.1, 0.4])),
                                st.tuples(st.just("ratio"), st.sampled_from([2, 3]))), min_size=1, max_size=4))
def test_selection_model_never_serves_a_stale_run(blobs_mlp, edits):
    from dve_teach.teach.selection import SelectionModel
    p = blobs_mlp

    def make(**kw):
        return SelectionModel(p.model, p.train, p.test, p.test, **{"epochs": 1, "batch_size": 5, "ratio": 2,
                                                                  "val_batch_size": 3, "seeds": [0], **kw})
    m = make()
    m.update()
    for name, value in edits:
        setattr(m, name, value)
        m.update()
    final = {k: getattr(m, k) for k in ("early", "late", "peak", "ratio")}
    assert m.summary() == make(**final).summary(), final


@FAST
@given(edits=st.lists(st.one_of(st.tuples(st.just("move"), st.integers(-2, 2)),
                                st.tuples(st.just("shuffle"), st.integers(0, 5)),
                                st.tuples(st.just("leave_out"), st.integers(0, 39)),
                                st.tuples(st.just("point"), st.integers(0, 39)),
                                st.tuples(st.just("retrain"), st.none())), min_size=1, max_size=5))
def test_reorder_model_results_are_those_of_its_order(reorder_problem, edits):
    """After any edits and Retrains, the shown result is a fresh `ReorderModel`'s on the same order and
    point (the caches are keyed on the order, the left-out points and the point)."""
    from dve_teach.teach.reorder import ReorderModel
    m = ReorderModel(reorder_problem, point=3)
    for name, value in edits:
        try:
            if name == "move":
                m.move(value)
            elif name == "shuffle":
                m.shuffle(value)
            elif name == "leave_out":
                m.leave_out(value)
            elif name == "point":
                m.set_point(value)
            else:
                m.retrain()
        except ValueError:   # a refused edit (moved past an end, the point itself left out): nothing changes
            pass
    m.retrain()
    fresh = ReorderModel(reorder_problem, point=m.point)
    fresh.set_order(m.order)
    for p in sorted(m.result.left_out):
        fresh.leave_out(p)
    fresh.retrain()
    a, b = m.result, fresh.result
    assert a.steps == b.steps and math.isclose(a.exact, b.exact, rel_tol=1e-9, abs_tol=1e-15)
    assert math.isclose(a.estimate, b.estimate, rel_tol=1e-9, abs_tol=1e-15)


@pytest.fixture(scope="module")
def reorder_problem():
    from dve_teach.teach.explorers import Problem
    return Problem.moons(n_train=40, n_test=10, seed=0)
