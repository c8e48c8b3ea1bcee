"""Hostile files and rows, as properties (hypothesis): a saved run edited anywhere — with its hash
recomputed, a deliberate forgery — is refused or changes nothing; malformed metadata and model specs
are reported as damage before anything is built; finite rows the model cannot score are named.

Uses `attempt` of tests/test_hostile.py: an error must be raised inside dve_teach, of an expected type,
with a message that names the cause; anything else fails."""
from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import dve_teach as dt
from dve_teach.training.persistence import _digest

from test_hostile import FAST, SLOW, attempt


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    split = dt.datasets.blobs(n_train=12, n_test=4, seed=2)
    sched = dt.Schedule.shuffled(12, 4, epochs=2, seed=0)
    root = tmp_path_factory.mktemp("hostile_files")
    runs = {}
    for name, rule in (("sgd", None), ("adam", dt.optim.Adam())):
        traj = dt.train(dt.models.mlp((2, 4, 3), seed=0), split.train, sched, 0.05, optimizer=rule, checkpoint_every=2)
        traj.save(root / f"{name}.dvt")
        runs[name] = (traj, root / f"{name}.dvt")
    return runs, root


def forge(path, out, edit_meta=None, edit_tensors=None, meta_json=None):
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["dve_teach"])
    tensors = load_file(str(path))
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    text = meta_json if meta_json is not None else json.dumps(meta, sort_keys=True)
    save_file(tensors, str(out), metadata={"dve_teach": text, "sha256": _digest(text, tensors)})
    return out


REFUSED = r"does not replay|does not reproduce|damaged|could not have used"


@SLOW
@given(run=st.sampled_from(["sgd", "adam"]), t=st.integers(1, 5), factor=st.sampled_from([0.0, 0.5, 1.0, 3.0, -1.0]))
def test_any_step_size_edit_is_refused(saved, run, t, factor):
    runs, root = saved
    traj, path = runs[run]
    out = forge(path, root / "lr.dvt", edit_tensors=lambda ts: ts["lrs"][t:t + 1].mul_(factor))
    ok, back = attempt("load(η_t edited)", lambda: dt.Trajectory.load(out), REFUSED, ValueError)
    assert ok == (factor == 1.0), (t, factor)
    if ok:
        assert torch.equal(back.final, traj.final)


@SLOW
@given(run=st.sampled_from(["sgd", "adam"]), a=st.integers(0, 5), b=st.integers(0, 5), i=st.integers(0, 3),
       j=st.integers(0, 3))
def test_any_exchange_of_points_between_batches_is_refused(saved, run, a, b, i, j):
    runs, root = saved
    traj, path = runs[run]
    A, B = traj.schedule.batches[a], traj.schedule.batches[b]
    p, q = A[i % len(A)], B[j % len(B)]
    if a == b or p == q or p in B or q in A:
        return   # no exchange to make (or it would repeat a point within a batch)

    def swap(m):
        m["batches"][a][i % len(A)], m["batches"][b][j % len(B)] = q, p
    ok, _ = attempt("load(points exchanged)", lambda: dt.Trajectory.load(forge(path, root / "swap.dvt", swap)),
                    REFUSED, ValueError)
    assert not ok


@SLOW
@given(run=st.sampled_from(["sgd", "adam"]), src=st.sampled_from([0, 2, 4, 6]), dst=st.sampled_from([2, 4, 6]))
def test_any_checkpoint_replaced_by_another_is_refused(saved, run, src, dst):
    runs, root = saved
    traj, path = runs[run]
    out = forge(path, root / "ck.dvt", edit_tensors=lambda ts: ts.__setitem__(f"checkpoint.{dst}",
                                                                             ts[f"checkpoint.{src}"].clone()))
    ok, _ = attempt("load(checkpoint replaced)", lambda: dt.Trajectory.load(out), REFUSED, ValueError)
    assert ok == (src == dst)


@SLOW
@given(row=st.integers(0, 11), what=st.sampled_from(["nan", "inf", "label", "label_neg", "shift"]))
def test_any_edited_training_row_is_refused(saved, row, what):
    runs, root = saved
    traj, path = runs["sgd"]

    def edit(ts):
        if what in ("nan", "inf"):
            ts["data.X"][row, 1] = math.nan if what == "nan" else math.inf
        elif what == "shift":
            ts["data.X"][row] += 0.25
        else:
            ts["data.y"][row] = 3 if what == "label" else -1
    out = forge(path, root / "row.dvt", edit_tensors=edit)
    ok, _ = attempt("load(row edited)", lambda: dt.Trajectory.load(out), REFUSED + r"|rows? \[" + str(row), ValueError)
    assert not ok


@FAST
@given(depth=st.integers(1, 200_000), digits=st.integers(1, 20_000), where=st.sampled_from(["T", "batches", "n"]))
def test_malformed_metadata_is_damage(saved, depth, digits, where):
    runs, root = saved
    _, path = runs["sgd"]
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["dve_teach"])
    text = json.dumps({k: v for k, v in meta.items() if k != where}, sort_keys=True)[:-1]
    value = "[" * depth + "]" * depth if depth % 2 else "9" * digits
    out = forge(path, root / "json.dvt", meta_json=text + f', "{where}": {value}}}')
    ok, _ = attempt("load(malformed metadata)", lambda: dt.Trajectory.load(out), r"damaged|version|format",
                    ValueError, TypeError)
    assert not ok or (depth % 2 == 0 and digits < 4000 and where == "n" and int(value) == meta["n"])


@FAST
@given(sizes=st.one_of(st.lists(st.sampled_from([0, -1, 2, 3, 4, 10 ** 7, 2.5, True, "4", None]), max_size=6),
                       st.just([2] * 50_000), st.sampled_from([None, "mlp", 3, {}])),
       act=st.sampled_from(["tanh", "relu", "swish", None, 7]))
def test_hostile_model_specs_are_damage_before_building(saved, sizes, act):
    runs, root = saved
    traj, path = runs["sgd"]
    spec = {"kind": "mlp", "sizes": sizes, "activation": act}
    out = forge(path, root / "spec.dvt", edit_meta=lambda m: m.__setitem__("model_spec", spec))
    ok, back = attempt("load(model spec)", lambda: dt.Trajectory.load(out), r"damaged|model spec", ValueError, TypeError)
    if ok:   # only the true spec loads
        assert sizes == [2, 4, 3] and act in ("tanh",) and torch.equal(back.final, traj.final)


class NaNBelow(torch.nn.Module):
    """Output NaN for finite rows whose first input is below `cut` (a sqrt inside forward)."""

    def __init__(self, cut: float):
        super().__init__()
        self.lin, self.cut = torch.nn.Linear(2, 3, dtype=torch.float64), cut

    def forward(self, x):
        return self.lin(x) * torch.sqrt(x[:, :1] - self.cut)


@SLOW
@given(rows=st.lists(st.integers(0, 11), min_size=1, max_size=3, unique=True),
       est=st.sampled_from(["sgd_influence", "unrolled", "dve", "tracin", "exact_loo"]))
def test_finite_rows_the_model_cannot_score_are_named(rows, est):
    split = dt.datasets.blobs(n_train=12, n_test=12, seed=2)
    X = split.train.X - split.train.X[:, :1].min() + 1.0            # every first input >= 1
    sched = dt.Schedule.shuffled(12, 4, epochs=1, seed=0)
    bad = X.clone()
    bad[rows, 0] = 0.0
    ok, _ = attempt("train(NaN rows)", lambda: dt.train(NaNBelow(0.5), (bad, split.train.y), sched, 0.01),
                    r"training rows \[" + ", ".join(map(str, sorted(rows))))
    assert not ok
    traj = dt.train(NaNBelow(0.5), (X, split.train.y), sched, 0.01)
    call = {"sgd_influence": lambda d: dt.sgd_influence(traj, d), "unrolled": lambda d: dt.unrolled_influence(traj, d),
            "dve": lambda d: dt.DataValueEmbedding().fit(traj).influence(d), "tracin": lambda d: dt.tracin(traj, d),
            "exact_loo": lambda d: dt.exact_loo(traj, d, [0])}[est]
    ok, _ = attempt(f"{est}(NaN test rows)", lambda: call((bad, split.train.y)),
                    r"test rows \[" + ", ".join(map(str, sorted(rows))))
    assert not ok
