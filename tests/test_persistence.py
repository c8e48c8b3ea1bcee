"""Saved runs: loading never executes code, damaged files are refused, round trips are bitwise.

Security oracle: each crafted file carries a live payload (shown live by unpickling it on purpose,
which writes the marker) and `Trajectory.load` must refuse it without the marker appearing.
Integrity oracle: the file's own sha256 and structure, edited byte by byte or piece by piece."""
from __future__ import annotations

import json
import os
import pickle
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

import dve_teach as dt
from dve_teach.data.models import model_spec
from dve_teach.training.persistence import FORMAT, FORMAT_VERSION, _digest


class Payload:
    """Unpickling this runs ``exec`` with code that writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def assert_same_run(a, b):
    assert a.schedule == b.schedule and a.T == b.T and a.checkpoint_every == b.checkpoint_every
    for name in ("lrs", "batch_losses"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert torch.equal(a.data.X, b.data.X) and torch.equal(a.data.y, b.data.y)
    assert a.data.X.dtype == b.data.X.dtype and a.data.y.dtype == b.data.y.dtype
    assert sorted(a.checkpoints) == sorted(b.checkpoints)
    assert all(torch.equal(a.checkpoints[t], b.checkpoints[t]) for t in a.checkpoints)
    assert a.weight_decay == b.weight_decay and a.optimizer == b.optimizer
    assert a.flat.names == b.flat.names and a.flat.shapes == b.flat.shapes


class TinyGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(2, 3, batch_first=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


# ---- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
def test_round_trip_is_bitwise(blobs_mlp, linear_lsq, tmp_path, k):
    for p in (blobs_mlp, linear_lsq):
        traj = dt.train(p.model, p.train, p.schedule, p.lr, loss=p.loss, weight_decay=0.01,
                        checkpoint_every=k)
        traj.save(tmp_path / "run.dvt")
        back = dt.Trajectory.load(tmp_path / "run.dvt")
        assert_same_run(traj, back)
        assert back.loss == p.loss
        assert torch.equal(dt.exact_loo(back, p.test, [0, 5]), dt.exact_loo(traj, p.test, [0, 5]))
        assert torch.equal(back.model_at()(p.test.X), traj.model_at()(p.test.X))


def test_model_spec_rebuilds_only_the_library_structures():
    assert model_spec(dt.models.mlp((4, 8, 3), "gelu")) == {"kind": "mlp", "sizes": [4, 8, 3], "activation": "gelu"}
    assert model_spec(dt.models.linear(3, 1)) == {"kind": "linear", "in_dim": 3, "out_dim": 1}
    assert model_spec(nn.Sequential(nn.Linear(2, 3), nn.GELU("tanh"), nn.Linear(3, 1))) is None
    assert model_spec(nn.Linear(2, 3, bias=False)) is None
    assert model_spec(TinyGRU()) is None


def test_other_models_are_passed_in_and_checked(tmp_path):
    torch.manual_seed(0)
    X, y = torch.randn(12, 4, 2, dtype=torch.float64), torch.randint(0, 2, (12,))
    traj = dt.train(TinyGRU(), (X, y), dt.Schedule.shuffled(12, 4, epochs=2), 0.1)
    traj.save(tmp_path / "gru.dvt")
    with pytest.raises(TypeError, match=r"cannot rebuild.*TinyGRU.*model=YourModel"):
        dt.Trajectory.load(tmp_path / "gru.dvt")
    with pytest.raises(ValueError, match=r"does not match the saved run.*rnn.weight_ih_l0 \[9, 2\]"):
        dt.Trajectory.load(tmp_path / "gru.dvt", model=dt.models.mlp((2, 3, 2)))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        dt.Trajectory.load(tmp_path / "gru.dvt", model="TinyGRU")
    class OtherGRU(TinyGRU):  # same parameters, another function
        def forward(self, x):
            return self.head(torch.relu(self.rnn(x)[0][:, -1]))
    with pytest.raises(ValueError, match=r"does not reproduce.*batch loss of step 0"):
        dt.Trajectory.load(tmp_path / "gru.dvt", model=OtherGRU())
    fresh = TinyGRU()  # different initial weights: θ_T from the file replaces them
    back = dt.Trajectory.load(tmp_path / "gru.dvt", model=fresh)
    assert_same_run(traj, back)
    assert torch.equal(back.model_at()(X), traj.model_at()(X))
    assert not torch.equal(fresh.head.weight.double(), back.model.head.weight)  # the caller's copy untouched


def sq_error(out, y):
    return ((out - y.reshape(out.shape)) ** 2).mean(1)


def test_custom_loss_is_passed_at_load(linear_lsq, tmp_path):
    p = linear_lsq
    traj = dt.train(p.model, p.train, p.schedule, p.lr, loss=lambda o, y: ((o - y.reshape(o.shape)) ** 2).mean(1))
    traj.save(tmp_path / "custom.dvt")  # a lambda saves fine: the file holds its name, not its code
    with pytest.raises(TypeError, match=r"custom loss.*<lambda>.*loss=your_loss"):
        dt.Trajectory.load(tmp_path / "custom.dvt")
    with pytest.raises(ValueError, match="does not reproduce"):
        dt.Trajectory.load(tmp_path / "custom.dvt", loss=lambda o, y: (o - y.reshape(o.shape)).abs().mean(1))
    back = dt.Trajectory.load(tmp_path / "custom.dvt", loss=sq_error)
    assert_same_run(traj, back)
    assert torch.equal(back.test_losses(p.test), traj.test_losses(p.test))
    p.traj.save(tmp_path / "mse.dvt")
    with pytest.raises(ValueError, match="trained with loss 'mse'"):
        dt.Trajectory.load(tmp_path / "mse.dvt", loss="cross_entropy")


# ---- security --------------------------------------------------------------------------------
def crafted_files(tmp_path, marker):
    """Files that execute the payload when unpickled, all looking like trajectories."""
    state = {"format": FORMAT, "version": 1, "model": Payload(marker)}
    files = {}
    files["raw_pickle"] = tmp_path / "raw.pt"
    files["raw_pickle"].write_bytes(pickle.dumps(state, protocol=2))
    files["torch_zip"] = tmp_path / "zip.pt"
    torch.save(state, files["torch_zip"])
    files["torch_legacy"] = tmp_path / "legacy.pt"
    torch.save(state, files["torch_legacy"], _use_new_zipfile_serialization=False)
    # a safetensors container whose metadata carries the pickle (hex) and claims to be a trajectory
    files["safetensors_meta"] = tmp_path / "st.dvt"
    meta = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "model": pickle.dumps(state).hex()})
    save_file({"lrs": torch.zeros(1)}, str(files["safetensors_meta"]), metadata={"dve_teach": meta, "sha256": "0"})
    # pickle bytes behind a header length, as if they were a safetensors header
    blob = pickle.dumps(state)
    files["disguised"] = tmp_path / "disguised.dvt"
    files["disguised"].write_bytes(struct.pack("<Q", len(blob)) + blob)
    return files


def test_payload_is_live(tmp_path):
    """The oracle of the security tests: unpickling the crafted bytes does run the code."""
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "code ran"


def test_loading_a_crafted_file_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    for name, path in crafted_files(tmp_path, marker).items():
        with pytest.raises(ValueError) as err:
            dt.Trajectory.load(path)
        assert not marker.exists(), f"{name}: loading ran the payload"
        if name.startswith(("raw", "torch")):
            assert "convert_legacy_trajectory" in str(err.value) and "trusted=True" in str(err.value), name
    with pytest.raises(PermissionError, match="trusted=True"):
        dt.convert_legacy_trajectory(tmp_path / "zip.pt", tmp_path / "out.dvt")
    assert not marker.exists()


def save_v1(traj, path):
    """The version-1 writer of dve_teach 0.1 (a torch.save pickle), to test the conversion."""
    state = {"format": FORMAT, "version": 1, "model": traj.model, "data": (traj.data.X, traj.data.y),
             "batches": traj.schedule.batches, "batch_size": traj.schedule.batch_size, "n": traj.schedule.n,
             "lrs": traj.lrs, "weight_decay": traj.weight_decay, "loss": traj.loss,
             "checkpoints": traj.checkpoints, "batch_losses": traj.batch_losses,
             "checkpoint_every": traj.checkpoint_every, "optimizer": traj.optimizer}
    torch.save(state, str(path))


def test_legacy_files_are_refused_then_converted_on_trust(blobs_mlp, tmp_path):
    save_v1(blobs_mlp.traj, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"torch pickle.*convert_legacy_trajectory.*trusted=True"):
        dt.Trajectory.load(tmp_path / "old.pt")
    dt.convert_legacy_trajectory(tmp_path / "old.pt", tmp_path / "new.dvt", trusted=True)
    assert_same_run(blobs_mlp.traj, dt.Trajectory.load(tmp_path / "new.dvt"))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a version-1 dve-teach trajectory"):
        dt.convert_legacy_trajectory(tmp_path / "other.pt", tmp_path / "x.dvt", trusted=True)


# ---- integrity -------------------------------------------------------------------------------
@pytest.fixture()
def saved(blobs_mlp, tmp_path):
    traj = dt.train(blobs_mlp.model, blobs_mlp.train, blobs_mlp.schedule, blobs_mlp.lr, checkpoint_every=3)
    path = tmp_path / "run.dvt"
    traj.save(path)
    return path


def rewrite(path, out, edit_meta=None, edit_tensors=None, rehash=True):
    """Re-save `path` with edited metadata / tensors, with a valid hash (a consistent forgery)."""
    with safe_open(str(path), "pt") as f:
        header = f.metadata()
    meta, tensors = json.loads(header["dve_teach"]), load_file(str(path))
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    meta_json = json.dumps(meta, sort_keys=True)
    digest = _digest(meta_json, tensors) if rehash else header["sha256"]
    save_file(tensors, str(out), metadata={"dve_teach": meta_json, "sha256": digest})
    return out


def test_flipped_bytes_are_refused(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    for start in (len(raw) // 2, len(raw) - 300, 60):
        bad = bytearray(raw)
        for i in range(start, min(start + 200, len(raw))):
            bad[i] ^= 0xFF
        (tmp_path / "flip.dvt").write_bytes(bytes(bad))
        with pytest.raises(dt.DamagedFileError, match="is damaged"):
            dt.Trajectory.load(tmp_path / "flip.dvt")
    one = bytearray(raw)
    one[len(raw) - 5] ^= 0x01  # one bit of the last checkpoint
    (tmp_path / "bit.dvt").write_bytes(bytes(one))
    with pytest.raises(dt.DamagedFileError, match="content hash does not match"):
        dt.Trajectory.load(tmp_path / "bit.dvt")


def test_truncated_and_empty_files_are_refused(saved, tmp_path):
    raw = saved.read_bytes()
    for size in (0, 3, 8, 9, 40, len(raw) // 2, len(raw) - 1):
        (tmp_path / "cut.dvt").write_bytes(raw[:size])
        with pytest.raises(dt.DamagedFileError, match="is damaged"):
            dt.Trajectory.load(tmp_path / "cut.dvt")
    with pytest.raises(FileNotFoundError, match="no trajectory file"):
        dt.Trajectory.load(tmp_path / "missing.dvt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        dt.Trajectory.load(tmp_path)


def test_consistent_forgeries_are_refused(saved, tmp_path):
    """Edits that keep the hash valid are still refused by the structure checks."""
    out = tmp_path / "forged.dvt"
    cases = {
        "missing tensors \\['checkpoint.3'\\]": dict(edit_tensors=lambda t: t.pop("checkpoint.3")),
        "lrs has shape \\(7,\\)": dict(edit_tensors=lambda t: t.__setitem__("lrs", t["lrs"][:-1])),
        "7 batches for T = 8": dict(edit_meta=lambda m: m.__setitem__("batches", m["batches"][:-1])),
        "checkpoint is not a float64 state vector": dict(
            edit_tensors=lambda t: t.__setitem__("checkpoint.0", t["checkpoint.0"][:-1])),
        "training rows": dict(edit_tensors=lambda t: t.update({"data.X": t["data.X"][:-2], "data.y": t["data.y"][:-2]})),
        "weight_decay": dict(edit_meta=lambda m: m.__setitem__("weight_decay", -1.0)),
        "parameter names and shapes": dict(edit_meta=lambda m: m.__setitem__("param_shapes", [["a"]])),
    }
    for message, edit in cases.items():
        with pytest.raises(dt.DamagedFileError, match=message):
            dt.Trajectory.load(rewrite(saved, out, **edit))
    for edit in (dict(edit_tensors=lambda t: t["lrs"].mul_(2)),           # η_t doubled, hash redone
                 dict(edit_meta=lambda m: m.__setitem__("batch_size", 1)),  # another SGD divisor
                 dict(edit_meta=lambda m: (m.__setitem__("weight_decay", 0.5),
                                           m["optimizer"].__setitem__("weight_decay", 0.5)))):
        with pytest.raises(ValueError, match=r"does not replay: (θ_3 recomputed from θ_0 differs|the batch loss of step)"):
            dt.Trajectory.load(rewrite(saved, out, **edit))
    with pytest.raises(dt.DamagedFileError, match="content hash"):  # an edit without re-hashing
        dt.Trajectory.load(rewrite(saved, out, edit_meta=lambda m: m.__setitem__("weight_decay", 0.5), rehash=False))


def test_version_messages_show_the_type(saved, tmp_path):
    out = tmp_path / "v.dvt"
    with pytest.raises(ValueError, match=r"version '2' \(str\); this dve_teach reads versions 2, 3 and 4 \(int\)"):
        dt.Trajectory.load(rewrite(saved, out, edit_meta=lambda m: m.__setitem__("version", "2")))
    with pytest.raises(ValueError, match=r"version 5 \(int\); this dve_teach reads versions 2, 3 and 4"):
        dt.Trajectory.load(rewrite(saved, out, edit_meta=lambda m: m.__setitem__("version", 5)))
    with pytest.raises(dt.DamagedFileError, match="multi-stage runs"):   # version 4 is for staged runs only
        dt.Trajectory.load(rewrite(saved, out, edit_meta=lambda m: m.__setitem__("version", 4)))
    save_file({"w": torch.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a dve-teach trajectory"):
        dt.Trajectory.load(tmp_path / "plain.safetensors")
    (tmp_path / "text.dvt").write_text("hello, this is not a trajectory at all")
    with pytest.raises(ValueError, match="not a dve-teach trajectory"):
        dt.Trajectory.load(tmp_path / "text.dvt")


def test_save_path_errors(blobs_mlp, tmp_path):
    traj = blobs_mlp.traj
    with pytest.raises(FileNotFoundError, match="does not exist: create it first"):
        traj.save(tmp_path / "no" / "such" / "run.dvt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        traj.save(tmp_path)
    for bad in (3, None, ["run.dvt"]):
        with pytest.raises(TypeError, match="path must be a str or pathlib.Path"):
            traj.save(bad)
        with pytest.raises(TypeError, match="path must be a str or pathlib.Path"):
            dt.Trajectory.load(bad)


# ---- the whole run is verified; nothing is read or built before its size is known ------------------
@pytest.fixture()
def saved_long(blobs_mlp, tmp_path):
    traj = dt.train(blobs_mlp.model, blobs_mlp.train, blobs_mlp.schedule, blobs_mlp.lr, checkpoint_every=2)
    path = tmp_path / "long.dvt"
    traj.save(path)
    return traj, path


def test_edits_late_in_the_run_are_refused(saved_long, tmp_path):
    traj, path = saved_long
    out = tmp_path / "late.dvt"
    T = traj.T
    late = [t for t in range(T) if t >= 4]
    a, c = late[0], late[-1]
    i, j = traj.schedule.batches[a][0], traj.schedule.batches[c][0]

    def swap_points(m):
        m["batches"][a][0], m["batches"][c][0] = j, i

    first_late_row = next(r for r in range(30) if min(traj.schedule.occurrences(r)) >= 2)   # first used at step 2 or 3

    def nan_row(t):
        t["data.X"][first_late_row, 0] = float("nan")

    edits = {"η_t tripled late": dict(edit_tensors=lambda t: t["lrs"][6:].mul_(3)),
             "two points swapped between late batches": dict(edit_meta=swap_points),
             "a checkpoint replaced by an earlier one": dict(edit_tensors=lambda t: t.__setitem__(
                 "checkpoint.6", t["checkpoint.4"].clone())),
             "a late batch loss changed": dict(edit_tensors=lambda t: t["batch_losses"][7:].add_(0.1))}
    for what, edit in edits.items():
        with pytest.raises(ValueError, match="does not replay"):
            dt.Trajectory.load(rewrite(path, out, **edit))
        if what != "a checkpoint replaced by an earlier one":   # without verification such edits load
            dt.Trajectory.load(rewrite(path, out, **edit), verify=False)
    with pytest.raises(dt.DamagedFileError, match=rf"rows? \[{first_late_row}\]"):
        dt.Trajectory.load(rewrite(path, out, edit_tensors=nan_row))
    with pytest.raises(dt.DamagedFileError, match="labels.*outside 0..2"):
        dt.Trajectory.load(rewrite(path, out, edit_tensors=lambda t: t["data.y"].__setitem__(first_late_row, 7)))


def test_non_regular_files_are_refused_unread(tmp_path):
    fifo = tmp_path / "pipe.dvt"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        dt.Trajectory.load(fifo)      # would block forever if opened
    with pytest.raises(ValueError, match="not a regular file"):
        dt.Trajectory.load("/dev/zero")   # would read until memory runs out


def test_hostile_specs_and_json_are_damage_not_crashes(saved, tmp_path):
    out = tmp_path / "spec.dvt"
    huge = {"kind": "mlp", "sizes": [2] + [10 ** 7] * 3 + [3], "activation": "tanh"}
    deep = {"kind": "mlp", "sizes": [2] * 700_000, "activation": "tanh"}
    for spec in (huge, deep, {"kind": "linear", "in_dim": 10 ** 9, "out_dim": 3}):
        with pytest.raises(dt.DamagedFileError, match="model spec"):
            dt.Trajectory.load(rewrite(saved, out, edit_meta=lambda m: m.__setitem__("model_spec", spec)))
    # metadata too deeply nested, or an integer too long for Python's conversion: damaged, not a crash
    with safe_open(str(saved), "pt") as f:
        header = f.metadata()
    tensors = load_file(str(saved))
    for meta_json in ("[" * 100_000 + "]" * 100_000, '{"T": ' + "9" * 5000 + "}"):
        save_file(tensors, str(out), metadata={"dve_teach": meta_json, "sha256": _digest(meta_json, tensors)})
        with pytest.raises(dt.DamagedFileError, match="unreadable metadata"):
            dt.Trajectory.load(out)
    assert header["sha256"]
