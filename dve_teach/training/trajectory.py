"""`Trajectory`: one recorded run — the optimizer states s_t (θ_t, plus momentum or Adam's m, v),
batches, step sizes η_t, batch losses — and the update rule every replay and estimator shares.

The update (DEVELOPERS.md, "The maths"; paper §2 with η_paper = η/b):
    g_t = (1/b) Σ_{i∈B_t} w_i ∇ℓ(θ_t, z_i),   s_{t+1} = F_t(s_t, g_t)   (w_i = 1 in the recorded run),
F_t the rule of `dve_teach.training.optim`; for plain SGD θ_{t+1} = θ_t − η_t (g_t + λ θ_t).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ..data.checks import as_flag, as_int
from ..data.container import Data, DataLike, as_data, check_finite
from .functional import FlatModel, LossLike, Objective
from .optim import SGD, UpdateRule
from .stages import StagedRule, StageInfo
from .replay import Engine, Guard
from .persistence import FORMAT, FORMAT_VERSION, load_trajectory, save_trajectory
from .schedule import Schedule

__all__ = ["Trajectory", "sgd_update", "removal_directions", "FORMAT", "FORMAT_VERSION"]



def sgd_update(theta: torch.Tensor, batch_grad: torch.Tensor, lr: float, weight_decay: float) -> torch.Tensor:
    """θ − η (g + λ θ): one plain SGD step (`dt.optim.SGD(weight_decay=λ).step`). Works under vmap."""
    return SGD(weight_decay=weight_decay).step(theta, batch_grad, lr, 0)


def removal_directions(G: torch.Tensor, lr: float, b: int, renormalize: bool = False) -> torch.Tensor:
    """θ'_{t+1} − θ_{t+1} when member k of the batch is dropped at step t, one row per member.

    G: Tensor[m, P] per-sample gradients of the batch at θ_t. Exact at step t (both runs share θ_t):
      zero-weight (divisor stays b):     (η/b) g_k
      renormalized (divisor m−1):        η [ g_k/(m−1) − S (1/(m−1) − 1/b) ],  S = Σ_j g_j,
    which for a full batch (m = b) is (η/(b−1)) (g_k − ḡ): removing k also rescales the others.
    """
    if not renormalize:
        return (lr / b) * G
    m = G.shape[0]
    if m < 2:
        raise ValueError("renormalize=True cannot remove the only point of a batch (divisor 0); "
                         "use renormalize=False")
    S = G.sum(0, keepdim=True)
    return lr * (G / (m - 1) - S * (1.0 / (m - 1) - 1.0 / b))


class Trajectory:
    """A recorded run. Build it with `dt.train`; do not construct it by hand.

    Attributes: ``schedule`` (`Schedule`), ``lrs`` Tensor[T] (η_t), ``optimizer`` (the
    `dt.optim` update rule), ``weight_decay`` (its λ), ``batch_losses`` Tensor[T] (mean loss of each
    batch at θ_t, before the step), ``data`` (the training `Data`, on the trajectory's device and
    dtype), ``loss`` (name or callable), ``checkpoint_every`` (the state s_t is stored for
    t % k == 0 and t = T; others are replayed). ``checkpoints[t]`` is the whole state s_t
    Tensor[k·P] (θ_t first, then the rule's buffers); `params` gives θ_t, `state` gives s_t.
    """

    def __init__(self, model: nn.Module, data: Data, schedule: Schedule, lrs: torch.Tensor,
                 optimizer: UpdateRule, loss: LossLike, checkpoints: dict, batch_losses: torch.Tensor,
                 checkpoint_every: int = 1):
        if not isinstance(optimizer, UpdateRule):
            raise TypeError(f"optimizer must be a dt.optim rule, got {type(optimizer).__name__}")
        self.model, self.data, self.schedule = model, data, schedule
        self.lrs, self.optimizer, self.loss = lrs, optimizer, loss
        self.checkpoints, self.batch_losses = checkpoints, batch_losses
        self.checkpoint_every = int(checkpoint_every)
        self.flat = FlatModel(model)
        self.objective = Objective(self.flat, loss)
        self._guard: Optional[Guard] = None

    # ---- basic facts ------------------------------------------------------------------
    @property
    def T(self) -> int:
        """Number of steps."""
        return len(self.schedule)

    def __len__(self) -> int:
        return self.T

    @property
    def batch_size(self) -> int:
        return self.schedule.batch_size

    @property
    def device(self) -> torch.device:
        return self.flat.device

    @property
    def dtype(self) -> torch.dtype:
        return self.flat.dtype

    @property
    def weight_decay(self) -> float:
        """λ of the update rule (coupled for SGD and Adam, decoupled for AdamW); a multi-stage run whose
        stages differ raises (ask ``traj.optimizer.weight_decay_at(t)``)."""
        return self.optimizer.weight_decay

    @property
    def stages(self) -> list[StageInfo]:
        """The run's stages (`dve_teach.training.stages`): name, global steps, global point indices and
        update rule of each; one stage for a run of `dt.train`."""
        if isinstance(self.optimizer, StagedRule):
            return self.optimizer.stage_infos(self.T)
        return [StageInfo("stage 1", range(self.T), range(self.schedule.n), self.optimizer)]

    def stage_of_point(self, i: int) -> tuple[int, int]:
        """(stage, index within the stage's own data) of global training index i."""
        i = as_int(i, "i")
        for k, st in enumerate(self.stages):
            if i in st.points:
                return k, i - st.points.start
        raise IndexError(f"point {i} is outside the training set [0, {self.schedule.n})")

    @property
    def final(self) -> torch.Tensor:
        """θ_T as a flat Tensor[P]."""
        return self.optimizer.theta(self.checkpoints[self.T])

    @property
    def engine(self) -> Engine:
        """One step of this run (`dve_teach.training.replay.Engine`): its objective, rule, η_t and b."""
        return Engine(self.objective, self.optimizer, self.lrs, self.batch_size)

    @property
    def guard(self) -> Guard:
        """The divergence rule of this run (`dve_teach.training.replay`), fixed by θ_0 and the data."""
        if self._guard is None:
            self._guard = Guard.of(self.objective, self.params(0), self.data)
        return self._guard

    def require_sgd(self, what: str, instead: str = "") -> None:
        """Refuse runs of another rule than plain SGD: `what` assumes θ' = θ − η(g + λθ)."""
        if not self.optimizer.plain_sgd:
            hint = f"; use {instead}" if instead else ""
            raise NotImplementedError(f"{what} assumes plain SGD; this run used {self.optimizer!r}{hint}")

    # ---- stepping and replay -------------------------------------------------------------
    def batch(self, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(indices, X, y) of step t's batch, on the trajectory's device."""
        idx = torch.as_tensor(self.schedule.batches[t], dtype=torch.int64, device=self.device)
        return idx, self.data.X[idx], self.data.y[idx]

    def step(self, state: torch.Tensor, t: int) -> torch.Tensor:
        """s_{t+1} from s_t with the recorded batch and η_t (unit weights). For plain SGD the state
        is θ itself."""
        _, X, y = self.batch(t)
        return self.engine.step(state, t, X, y)[0]

    def _check_step(self, t, name: str = "step") -> int:
        t = as_int(t, name)
        if t < 0:
            t += self.T + 1
        if not 0 <= t <= self.T:
            raise IndexError(f"{name} {t} is out of range 0..{self.T}")
        return t

    def state(self, t: int) -> torch.Tensor:
        """The optimizer state s_t Tensor[k·P] (θ_t, then buffers) for t in 0..T (negative t counts
        from the end), replayed from the nearest stored checkpoint when `checkpoint_every` > 1."""
        t = self._check_step(t)
        if t in self.checkpoints:
            return self.checkpoints[t]
        start = max(s for s in self.checkpoints if s <= t)
        s = self.checkpoints[start]
        for u in range(start, t):
            s = self.step(s, u)
        return s.detach()

    def params(self, t: int) -> torch.Tensor:
        """θ_t Tensor[P] for t in 0..T (negative t counts from the end)."""
        return self.optimizer.theta(self.state(t))

    def iter_states(self, reverse: bool = False, start: int = 0, stop: Optional[int] = None):
        """Yield (t, s_t) for t = start..stop−1 (or stop−1..start; default all T steps), replaying
        each stretch between stored checkpoints once."""
        stop = self.T if stop is None else stop
        if not 0 <= start <= stop <= self.T:
            raise IndexError(f"steps {start}..{stop} are out of range 0..{self.T}")
        steps = range(stop - 1, start - 1, -1) if reverse else range(start, stop)
        cache: dict[int, torch.Tensor] = {}
        for t in steps:
            if t not in cache:
                first = t - t % self.checkpoint_every
                s = self.checkpoints[first]
                cache = {first: s}
                for u in range(first, min(first + self.checkpoint_every, self.T) - 1):
                    s = self.step(s, u)
                    cache[u + 1] = s.detach()
            yield t, cache[t]

    def iter_params(self, reverse: bool = False, start: int = 0, stop: Optional[int] = None):
        """Yield (t, θ_t), as `iter_states`."""
        for t, s in self.iter_states(reverse, start, stop):
            yield t, self.optimizer.theta(s)

    def prefix(self, s: int) -> "Trajectory":
        """The same run stopped after step s (θ_s final): embeddings and influence "relative to
        the checkpoint at step s" (paper §4.4, data value dynamics). 1 <= s <= T."""
        s = as_int(s, "prefix length")
        if not 1 <= s <= self.T:
            raise IndexError(f"prefix length {s} must be in 1..{self.T}")
        ck = {t: th for t, th in self.checkpoints.items() if t <= s}
        ck[s] = self.state(s)
        sched = Schedule(self.schedule.batches[:s], self.schedule.batch_size, self.schedule.n)
        return Trajectory(self.model, self.data, sched, self.lrs[:s], self.optimizer, self.loss,
                          ck, self.batch_losses[:s], self.checkpoint_every)

    # ---- using the trained model ----------------------------------------------------------
    def model_at(self, t: Optional[int] = None) -> nn.Module:
        """A copy of the model with θ_t loaded (θ_T when t is None)."""
        return self.flat.load_into(copy.deepcopy(self.model), self.params(self.T if t is None else t))

    def predict(self, X: torch.Tensor, step: Optional[int] = None) -> torch.Tensor:
        """Model outputs at θ_step (θ_T by default) for inputs X [m, ...] shaped like the training
        rows (a tensor or numpy array; floating inputs are cast to the run's dtype)."""
        if isinstance(X, np.ndarray):
            X = torch.from_numpy(X)
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"X must be a torch.Tensor or numpy array of inputs, got {type(X).__name__}")
        ref = self.data.X
        if X.ndim == 0 or tuple(X.shape[1:]) != tuple(ref.shape[1:]):
            raise ValueError(f"X has shape {list(X.shape)}, but inputs are rows shaped like the training "
                             f"inputs [m]{list(ref.shape[1:])}: add or fix the leading example dimension")
        theta = self.params(self.T if step is None else step)
        X = X.to(self.device, self.dtype) if X.is_floating_point() else X.to(self.device)
        if X.dtype != ref.dtype:
            raise TypeError(f"X is {X.dtype} but the training inputs are {ref.dtype}: convert with .to({ref.dtype})")
        with torch.no_grad():
            return self.flat.forward(theta, X)

    def check_data(self, data: DataLike, name: str = "test") -> Data:
        """Validate data against the training data (feature shape, dtype, device), and refuse
        rows holding NaN/inf (naming them) and out-of-range class labels. A non-finite test row is
        refused rather than scored: through the shared backward pass of the test gradients it would
        turn every test column of the gradient estimators NaN, not only its own."""
        d = as_data(data, name)
        ref = self.data
        if d.device != ref.device:
            raise ValueError(f"{name} data is on {d.device} but the trajectory on {ref.device}: "
                             f"move it with .to('{ref.device}') (mixed devices)")
        if tuple(d.X.shape[1:]) != tuple(ref.X.shape[1:]):
            raise ValueError(f"{name}.X has feature shape {tuple(d.X.shape[1:])}, the training data "
                             f"{tuple(ref.X.shape[1:])}: pass rows shaped like the training inputs")
        if d.X.dtype != ref.X.dtype:
            raise TypeError(f"{name}.X is {d.X.dtype} but the trajectory is {ref.X.dtype}: "
                            f"convert with .to({ref.X.dtype})")
        if d.y.dtype != ref.y.dtype or tuple(d.y.shape[1:]) != tuple(ref.y.shape[1:]):
            raise TypeError(f"{name}.y is {d.y.dtype} {tuple(d.y.shape)} but training targets are "
                            f"{ref.y.dtype} with shape [n]{list(ref.y.shape[1:])}: match them")
        check_finite(d, name)
        self.objective.check_inputs(d, name)
        self.objective.check_targets(self.final, d, name)
        self.objective.check_finite_losses(self.final, d, name, "θ_T")
        return d

    def test_losses(self, test: DataLike) -> torch.Tensor:
        """Per-example loss at θ_T: Tensor[n_test]."""
        d = self.check_data(test)
        with torch.no_grad():
            return self.objective.losses(self.final, d.X, d.y)

    # ---- persistence ------------------------------------------------------------------
    def save(self, path: Union[str, Path]) -> None:
        """Write the run to one file that holds no code: tensors in safetensors, everything else as
        JSON, plus a sha256 of both (format version 3, with the update rule and its state;
        `dve_teach.training.persistence`). A custom
        loss is recorded by name only: pass it again to `load`."""
        save_trajectory(self, path)

    @classmethod
    def load(cls, path: Union[str, Path], model: Optional[nn.Module] = None,
             loss: Optional[LossLike] = None, device=None, verify: bool = True) -> "Trajectory":
        """Read a file written by `save`, never executing anything in it.

        model: needed unless the run used a `dt.models.mlp` / `linear` / `char_transformer` structure (rebuilt
        from the file); it must have the saved parameter names and shapes, and gets θ_T loaded.
        loss: needed when the run used a custom loss function (files store no code).
        device: where to put the run (default: where it was saved).
        verify: replay the whole run and check it against every stored checkpoint and batch loss (the
        default; costs about one training run). False replays only the first checkpoint segment, for
        runs too large to replay: a file edited later in the run would then load.
        Raises DamagedFileError (a ValueError) for a corrupted, truncated or inconsistent file, and
        ValueError for a pickle of the old format (see `convert_legacy_trajectory`).
        """
        return load_trajectory(cls, path, model=model, loss=loss, device=device, verify=as_flag(verify, "verify"))

    def __repr__(self) -> str:
        opt = "" if self.optimizer.plain_sgd and self.optimizer == SGD(weight_decay=self.weight_decay) else f"optimizer={self.optimizer!r}, "
        return (f"Trajectory(steps={self.T}, batch_size={self.batch_size}, n={self.schedule.n}, "
                f"P={self.flat.P}, {opt}final_batch_loss={float(self.batch_losses[-1]):.4g})")
