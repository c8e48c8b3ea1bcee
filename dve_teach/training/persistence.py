"""Saving and loading a `Trajectory` without pickle: safetensors for tensors, JSON for the rest.

A coursework file travels (an instructor shares a run, a student submits one), so loading must
never execute code in it. The file is one safetensors container (a length-prefixed JSON header,
then raw little-endian tensor bytes; nothing in it is code):

- tensors: ``data.X``, ``data.y``, ``lrs`` (η_t, Tensor[T]), ``batch_losses`` (Tensor[T]) and one
  ``checkpoint.{t}`` (the optimizer state s_t = (θ_t, buffers), Tensor[k·P]) per stored step;
- the header's ``__metadata__``: ``"dve_teach"``, a JSON document with the format name and
  version, the schedule (batches, b, n), λ, the loss name, the update rule's spec (name and
  settings, `dve_teach.training.optim`), checkpoint spacing, dtype,
  device, the library version, the parameter names and shapes, and a model spec (the library's
  own `dt.models.mlp` / `dt.models.linear` / `dt.models.char_transformer` structures are rebuilt from it; any other model is
  passed by the caller, ``Trajectory.load(path, model=...)``, and checked against the shapes);
- ``"sha256"``: a hash over the JSON document and every tensor's name, dtype, shape and bytes.
  `load` recomputes it, then checks the pieces fit together (T batches, T step sizes, the
  checkpoints 0, k, 2k, …, T of length P), so a corrupted, truncated or edited file is refused
  as damaged instead of loaded into wrong numbers. Last, the whole run is verified by replay
  (``verify=True``, the default; it costs about one training run): every checkpoint segment is
  replayed from its stored state and must reach the next stored state, every recorded batch loss
  must be reproduced, and the training rows must be finite with labels the model can take. So a
  file edited anywhere (a late η_t, two points swapped between batches, a checkpoint replaced, a row
  or label changed) is refused, and so is a model or loss other than the one trained with (same
  shapes are not the same function). ``verify=False`` checks the first segment only (for runs too
  large to replay; the file's hash still guards against corruption, not against a forger).

Nothing is built before its size is known: a non-regular file (a pipe, a device) is refused
unread, the read is bounded by the file's size, a model spec's parameter shapes are computed
without building it and must match the stored checkpoints, and malformed JSON (too deep, huge
integers) is reported as damaged.

Version 3 added the update rule and its state; version 4 is written for multi-stage runs only (a
`StagedRule` spec with every stage's rule, start step and first point index, ``weight_decay`` null;
`dve_teach.training.stages`), so single-stage files stay readable by older releases; version-2 files (plain SGD: ``"optimizer": "sgd"``,
checkpoints θ_t) still load. Files of the first format (version 1, a ``torch.save`` pickle) are refused with the way out:
`dve_teach.training.legacy.convert_legacy_trajectory`, an explicit opt-in for files you trust.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from ..data.checks import as_device
from ..data.container import Data
from ..data.models import build_model, model_spec, spec_param_shapes
from .functional import FlatModel, LossLike, _LOSSES
from .optim import SGD, rule_from_spec
from .schedule import Schedule

__all__ = ["FORMAT", "FORMAT_VERSION", "save_trajectory", "load_trajectory", "DamagedFileError"]

FORMAT = "dve-teach-trajectory"
FORMAT_VERSION = 3
#: the version written for a multi-stage run (a staged rule; older readers refuse it by its version)
STAGED_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)
PathLike = Union[str, Path]

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
           "float64": torch.float64, "int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
           "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}


class DamagedFileError(ValueError):
    """A trajectory file that is corrupted, truncated or inconsistent (a ValueError)."""


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---- hashing and the container -------------------------------------------------------------
def _digest(meta_json: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{_dtype_name(t.dtype)}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _loss_name(loss: LossLike) -> tuple[str, Optional[str]]:
    """("mse" | "cross_entropy" | "custom", a readable name of a custom loss)."""
    if isinstance(loss, str):
        return loss, None
    for name, fn in _LOSSES.items():
        if loss is fn:
            return name, None
    return "custom", f"{getattr(loss, '__module__', '?')}.{getattr(loss, '__qualname__', repr(loss))}"


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("dve-teach")
    except PackageNotFoundError:
        return "unknown"


def save_trajectory(traj, path: PathLike) -> None:
    """Write `traj` to `path` (safetensors + JSON metadata + sha256; see the module docstring)."""
    from safetensors.torch import save_file
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory: give a file name, e.g. {p / 'run.dvt'}")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"the folder {p.parent} does not exist: create it first "
                                f"(pathlib.Path('{p.parent}').mkdir(parents=True))")
    loss, loss_repr = _loss_name(traj.loss)
    tensors = {"data.X": traj.data.X, "data.y": traj.data.y, "lrs": traj.lrs,
               "batch_losses": traj.batch_losses}
    tensors.update({f"checkpoint.{t}": th for t, th in traj.checkpoints.items()})
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    staged = traj.optimizer.name == "staged"
    meta = {"format": FORMAT, "version": STAGED_VERSION if staged else FORMAT_VERSION,
            "library_version": _library_version(),
            "batches": [list(b) for b in traj.schedule.batches], "batch_size": traj.schedule.batch_size,
            "n": traj.schedule.n,
            "weight_decay": None if staged else traj.weight_decay, "loss": loss, "loss_repr": loss_repr,
            "optimizer": traj.optimizer.spec(), "checkpoint_every": traj.checkpoint_every, "T": traj.T,
            "dtype": _dtype_name(traj.dtype), "device": str(traj.device),
            "param_names": traj.flat.names, "param_shapes": [list(s) for s in traj.flat.shapes],
            "model_spec": model_spec(traj.model), "model_class": type(traj.model).__qualname__}
    meta_json = json.dumps(meta, sort_keys=True)
    save_file(tensors, str(path), metadata={"dve_teach": meta_json, "sha256": _digest(meta_json, tensors)})


# ---- loading -------------------------------------------------------------------------------
_LEGACY = ("{path} is a torch pickle (the trajectory format of dve_teach 0.1, version 1, or another "
           "torch.save file). Loading a pickle can run any code it holds, so dve_teach no longer "
           "reads it. If you trust who made it, convert it once with "
           "dt.convert_legacy_trajectory('{path}', 'new_file', trusted=True); otherwise ask "
           "for a file saved by this version")


def _damaged(path: PathLike, why: str) -> DamagedFileError:
    return DamagedFileError(f"{path} is damaged ({why}): it is not a complete dve-teach trajectory "
                            "file; save the run again or ask for a fresh copy")


def _read_container(path: PathLike) -> tuple[dict, dict[str, torch.Tensor], str]:
    """(metadata, tensors, stored hash) of a safetensors file, refusing pickles and broken files."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no trajectory file at {path}")
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give the path of a file written by Trajectory.save")
    if not p.is_file():   # a named pipe would block forever, /dev/zero never ends
        raise ValueError(f"{path} is not a regular file (a pipe, socket or device?): give the path of a file "
                         "written by Trajectory.save")
    size = p.stat().st_size
    with open(p, "rb") as f:
        raw = f.read(size + 1)
    if len(raw) != size:
        raise _damaged(path, "it changed size while being read")
    if len(raw) == 0:
        raise _damaged(path, "the file is empty")
    if len(raw) < 9:
        raise _damaged(path, f"only {len(raw)} bytes")
    if raw[8:9] != b"{":  # not a safetensors header: a pickle of the old format, or something else
        if raw[:4] == b"PK\x03\x04" or raw[:1] == b"\x80":
            raise ValueError(_LEGACY.format(path=path))
        raise ValueError(f"{path} is not a dve-teach trajectory file (save one with Trajectory.save)")
    (n_header,) = struct.unpack("<Q", raw[:8])
    if 8 + n_header > len(raw):
        raise _damaged(path, f"truncated: the header says {n_header} bytes, the file holds {len(raw) - 8}")
    try:
        header = json.loads(raw[8:8 + n_header].decode("utf-8"))
        meta_json = header.get("__metadata__", {}).get("dve_teach")
        stored = header.get("__metadata__", {}).get("sha256")
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError) as e:
        raise _damaged(path, f"unreadable header: {e}") from None
    if meta_json is None:
        raise ValueError(f"{path} is a safetensors file but not a dve-teach trajectory (no dve_teach "
                         "metadata); save one with Trajectory.save")
    try:
        meta = json.loads(meta_json)
    except (TypeError, ValueError, RecursionError) as e:   # also too deep, or integers too long
        raise _damaged(path, f"unreadable metadata: {e}") from None
    if not isinstance(meta, dict):
        raise _damaged(path, "the metadata is not a JSON object")
    foreign = None if meta.get("format") == FORMAT else \
        f"{path} is not a dve-teach trajectory file (format {meta.get('format')!r})"
    version = meta.get("version")
    other = type(version) is not int or version not in READABLE_VERSIONS
    message = (f"{path} has trajectory format version {version!r} ({type(version).__name__}); this dve_teach "
               f"reads versions {', '.join(map(str, READABLE_VERSIONS[:-1]))} and {READABLE_VERSIONS[-1]} (int): retrain, or use the dve_teach "
               "that wrote it")
    from safetensors.torch import load as st_load
    try:
        tensors = st_load(raw)
    except Exception as e:  # the safetensors parser refuses offsets/sizes that do not add up
        raise _damaged(path, f"the tensor section does not parse: {e}") from None
    if not isinstance(stored, str) or _digest(meta_json, tensors) != stored:  # checked first: a damaged
        why = "its content hash does not match: bytes were changed after saving"  # field misleads
        raise _damaged(path, why + (f"; or else: {foreign or message}" if foreign or other else ""))
    if foreign:
        raise ValueError(foreign)
    if other:
        raise ValueError(message)
    return meta, tensors, meta_json


def _get(meta: dict, key: str, kind, path: PathLike):
    v = meta.get(key)
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool or kind is int and abs(v) >= 2 ** 62:
        raise _damaged(path, f"metadata field {key!r} is {v!r:.80}")
    return v


def _resolve_model(meta: dict, model: Optional[nn.Module], dtype: torch.dtype, path: PathLike) -> nn.Module:
    import copy
    names, shapes = meta["param_names"], [tuple(s) for s in meta["param_shapes"]]
    if model is None:
        spec = meta.get("model_spec")
        if spec is None:
            raise TypeError(f"{path} was trained with a model dve_teach cannot rebuild "
                            f"({meta.get('model_class')!r}, not dt.models.mlp/linear/char_transformer): pass it, "
                            "Trajectory.load(path, model=YourModel(...)) with the same architecture")
        try:   # the shapes the spec implies, before anything is built
            implied = spec_param_shapes(spec)
        except (ValueError, TypeError) as e:
            raise _damaged(path, f"its model spec {spec!r:.120} does not describe a dt.models network ({e})") from None
        if [(n, tuple(s)) for n, s in implied] != list(zip(names, shapes)):
            raise _damaged(path, "its model spec does not match the stored parameter names and shapes")
        try:
            model = build_model(spec, dtype)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _damaged(path, f"its model spec {spec!r:.120} does not describe a dt.models network") from None
    elif not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    else:
        model = copy.deepcopy(model).to(dtype=dtype)
    flat = FlatModel(model)
    mine, saved = list(zip(flat.names, flat.shapes)), list(zip(names, shapes))
    if mine != saved:
        want = ", ".join(f"{n} {list(s)}" for n, s in saved)
        got = ", ".join(f"{n} {list(s)}" for n, s in mine)
        raise ValueError(f"the model does not match the saved run: the file holds parameters [{want}], "
                         f"the model given has [{got}]; build the same architecture")
    return model


def load_trajectory(cls, path: PathLike, model: Optional[nn.Module] = None, loss: Optional[LossLike] = None,
                    device: Any = None, verify: bool = True):
    """Read a file written by `save_trajectory` into ``cls`` (a `Trajectory`); see the module docstring."""
    meta, tensors, _ = _read_container(path)
    T = _get(meta, "T", int, path)
    batches = _get(meta, "batches", list, path)
    k = _get(meta, "checkpoint_every", int, path)
    names, shapes = _get(meta, "param_names", list, path), _get(meta, "param_shapes", list, path)
    if len(names) != len(shapes) or not names or not all(isinstance(n, str) for n in names) or not all(
            isinstance(sh, list) and len(sh) <= 8 and all(type(d) is int and 0 <= d < 2 ** 40 for d in sh)
            for sh in shapes):
        raise _damaged(path, "the parameter names and shapes do not fit together")
    if not isinstance(meta.get("dtype"), str) or meta["dtype"] not in _DTYPES or not isinstance(meta.get("loss"), str) \
            or meta["loss"] not in ("custom", *_LOSSES) or not isinstance(meta.get("device"), str):
        raise _damaged(path, f"dtype {meta.get('dtype')!r}, loss {meta.get('loss')!r} or device "
                             f"{meta.get('device')!r} is not valid")
    dtype = _DTYPES[meta["dtype"]]
    lam = meta.get("weight_decay")
    staged = isinstance(meta.get("optimizer"), dict) and meta["optimizer"].get("name") == "staged"
    if staged != (meta["version"] == STAGED_VERSION):
        raise _damaged(path, f"version {meta['version']} with {'a' if staged else 'no'} staged optimizer (version "
                             f"{STAGED_VERSION} is for multi-stage runs, and only they use it)")
    if staged and lam is not None:
        raise _damaged(path, f"weight_decay is {lam!r} for a staged run (each stage's rule holds its own)")
    if not staged and (not isinstance(lam, (int, float)) or isinstance(lam, bool) or not lam >= 0):
        raise _damaged(path, f"weight_decay is {lam!r}")
    rule = _rule(meta, lam, path)
    if T < 1 or k < 1 or len(batches) != T:
        raise _damaged(path, f"{len(batches)} batches for T = {T} steps")
    want = {f"checkpoint.{t}" for t in range(0, T, k)} | {f"checkpoint.{T}"}
    want |= {"data.X", "data.y", "lrs", "batch_losses"}
    if set(tensors) != want:
        missing, extra = sorted(want - set(tensors)), sorted(set(tensors) - want)
        raise _damaged(path, f"missing tensors {missing[:5]}" if missing else f"unexpected tensors {extra[:5]}")
    P = rule.k * sum(int(torch.Size(s).numel()) for s in meta["param_shapes"])
    for name, n in (("lrs", T), ("batch_losses", T)):
        if tuple(tensors[name].shape) != (n,):
            raise _damaged(path, f"{name} has shape {tuple(tensors[name].shape)}, expected ({n},)")
    if any(tuple(tensors[f"checkpoint.{t}"].shape) != (P,) or tensors[f"checkpoint.{t}"].dtype != dtype
           for t in [*range(0, T, k), T]):
        raise _damaged(path, f"a checkpoint is not a {meta['dtype']} state vector of length {P}")
    try:
        schedule = Schedule(batches, _get(meta, "batch_size", int, path), _get(meta, "n", int, path))
        data = Data(tensors["data.X"], tensors["data.y"])
    except (ValueError, IndexError, TypeError) as e:
        raise _damaged(path, str(e)) from None
    if len(data) != schedule.n:
        raise _damaged(path, f"{len(data)} training rows for a schedule over n = {schedule.n}")
    if staged:
        _check_stages(rule, schedule, path)

    if meta["loss"] == "custom":
        if loss is None:
            raise TypeError(f"{path} was trained with a custom loss ({meta.get('loss_repr')}); a file never "
                            "stores code, so pass it: Trajectory.load(path, loss=your_loss)")
    elif loss is None:
        loss = meta["loss"]
    elif not isinstance(loss, str) or loss != meta["loss"]:
        raise ValueError(f"{path} was trained with loss {meta['loss']!r}; drop loss= or pass {meta['loss']!r}")
    if device is None:
        saved = meta["device"]
        if saved.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"{path} was saved on {saved}, which is not available here: pass device='cpu'")
        device = saved
    device = as_device(device)
    net = _resolve_model(meta, model, dtype, path).to(device)
    net.eval()
    ck = {t: tensors[f"checkpoint.{t}"].to(device) for t in [*range(0, T, k), T]}
    traj = cls(net, data.to(device), schedule, tensors["lrs"], rule, loss, ck, tensors["batch_losses"], k)
    _check_reproduces(traj, path, verify)
    traj.flat.load_into(net, traj.final)
    return traj


def _rule(meta: dict, lam: float, path: PathLike):
    """The update rule: version 2 knows only plain SGD ("sgd", λ apart); version 3 stores its spec."""
    spec = meta.get("optimizer")
    if meta["version"] == 2:
        if spec != "sgd":
            raise _damaged(path, f"optimizer {spec!r} in a version-2 file (which knows only 'sgd')")
        return SGD(weight_decay=lam)
    try:
        rule = rule_from_spec(spec)
    except (TypeError, ValueError) as e:
        raise _damaged(path, f"its optimizer {spec!r:.120} is not a dt.optim rule ({e})") from None
    if rule.name == "staged":
        return rule
    if rule.weight_decay != lam:
        raise _damaged(path, f"weight_decay {lam!r} differs from the optimizer's {rule.weight_decay!r}")
    return rule


def _check_stages(rule, schedule: Schedule, path: PathLike) -> None:
    """A staged run's layout fits its schedule: the stages' points cover 0..n−1 and each step's batch
    holds points of its own stage only (a prefix may end before a later stage starts)."""
    if rule.offsets[-1] != schedule.n:
        raise _damaged(path, f"the stages hold {rule.offsets[-1]} points, the schedule indexes n = {schedule.n}")
    for st in rule.stage_infos(len(schedule)):
        for t in st.steps:
            if any(i not in st.points for i in schedule.batches[t]):
                raise _damaged(path, f"step {t} of stage {st.name!r} holds points outside the stage's "
                                     f"{st.points.start}..{st.points.stop - 1}")


def _check_reproduces(traj, path: PathLike, verify: bool = True) -> None:
    """The model and loss must give the recorded batch loss of step 0 at θ_0 (equal parameter shapes
    do not mean an equal function: another activation, another loss). With `verify` every checkpoint
    segment is replayed from its stored state and must reach the next one, reproducing every recorded
    batch loss, and the training rows must be finite with labels the model takes; without, only the
    first segment is replayed."""
    try:   # rows and labels first: a label out of range would crash inside torch below
        traj.check_data(traj.data, "training")
    except (ValueError, TypeError) as e:
        raise DamagedFileError(f"{path} holds training data the run could not have used: {e}") from None
    _, X, y = traj.batch(0)
    try:
        with torch.no_grad():
            got = float(traj.objective.losses(traj.params(0), X, y).mean())
    except (RuntimeError, ValueError, TypeError) as e:
        raise ValueError(f"the model or loss given cannot evaluate the saved run's data ({e}); pass the "
                         "architecture and loss it was trained with") from e
    eps = torch.finfo(traj.dtype).eps  # tolerances allow another device's rounding, not another run
    loss_tol = max(1e-6, 100 * eps)
    want = float(traj.batch_losses[0])
    if not abs(got - want) <= loss_tol * abs(want) + 1e-9:
        raise ValueError(f"the saved run does not reproduce: the batch loss of step 0 at θ_0 is {got:.10g} here but "
                         f"{want:.10g} in {path}; the file was edited, or the model or loss given differs: pass the "
                         "architecture (also the activations) and the loss the run was trained with")
    marks = sorted(traj.checkpoints)
    for a, c in zip(marks[:-1], marks[1:] if verify else marks[1:2]):
        s = traj.checkpoints[a]   # the whole state: the replay checks the buffers too
        for t in range(a, c):
            _, X, y = traj.batch(t)
            s, L = traj.engine.step(s, t, X, y)
            rec = float(traj.batch_losses[t])
            if verify and not abs(float(L) - rec) <= loss_tol * abs(rec) + 1e-9:
                raise ValueError(f"the saved run does not replay: the batch loss of step {t} is {float(L):.10g} "
                                 f"here but {rec:.10g} in {path}; the file was edited, or the model or loss given "
                                 "differs from the one it was trained with")
        stored = traj.checkpoints[c]
        gap = float((s - stored).norm())
        if not gap <= max(1e-6, 1e3 * eps * (c - a)) * float(stored.norm()) + 1e-12:
            raise ValueError(f"the saved run does not replay: θ_{c} recomputed from θ_{a} differs from the stored "
                             f"checkpoint by {gap:.3g} in {path}; the file was edited, or the model or loss given "
                             "differs from the one it was trained with")
