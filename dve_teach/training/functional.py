"""The functional view of a model: flat parameter vectors, per-example losses and their gradients
(the losses themselves live in `dve_teach.training.losses`, re-exported here).

Every estimator works on flat parameter vectors θ ∈ R^P. `FlatModel` maps θ to the module's
named parameters and evaluates it with `torch.func.functional_call`, so per-example gradients are
``vmap(grad(example_loss))`` and Hessian-vector products are ``jvp(grad(batch_loss))`` — no
Python loop over examples (the torch.func idiom). The user's model and loss stay plain PyTorch.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vjp, vmap

from ..data.container import Data
from .losses import (_LOSSES, LossFn, LossLike, Measure, cross_entropy, is_sequence_output,  # noqa: F401
                     mse, no_second_derivatives, resolve_loss)

__all__ = ["FlatModel", "resolve_loss", "LossLike", "Measure", "cross_entropy", "mse", "is_sequence_output",
           "check_constant_buffers"]

_UNSUPPORTED = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                nn.AlphaDropout)


_RUNNING = ("running_mean", "running_var", "num_batches_tracked")


def check_constant_buffers(model: nn.Module, X: torch.Tensor) -> None:
    """Refuse a model whose buffers change in a forward pass (in train mode, on inputs X): a buffer
    is fine only as a constant (e.g. a causal mask), never as state the replay would have to carry."""
    before = {n: b.detach().clone() for n, b in model.named_buffers()}
    if not before:
        return
    mode = model.training
    try:
        with torch.no_grad():
            model.train()
            model(X)
    except Exception:   # the caller's forward check names what is wrong with the inputs
        return
    finally:
        model.train(mode)
    changed = [n for n, b in model.named_buffers() if n in before and not torch.equal(b, before[n])]
    for n in changed:   # put them back: the run starts from the model as given
        model.get_buffer(n).copy_(before[n])
    if changed:
        raise TypeError(f"the model's buffer {changed[0]} changes in a forward pass (a running statistic?): "
                        "dve_teach replays a run as a function of its parameters only; keep buffers constant "
                        "or compute them inside forward")


class FlatModel:
    """A model seen as a function of one flat parameter vector θ (Tensor[P]).

    ``layers`` groups the coordinates of θ by the module that owns them (used for per-layer M
    and the Kronecker projection): a list of ``(module_name, slice)``.
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (e.g. dt.models.mlp((4, 16, 3))), got "
                            f"{type(model).__name__}")
        for name, mod in model.named_modules():
            if isinstance(mod, _UNSUPPORTED) and not (isinstance(mod, nn.modules.dropout._DropoutNd)
                                                      and mod.p == 0):  # p = 0 is the identity
                raise TypeError(
                    f"unsupported layer {name or 'model'} ({type(mod).__name__}): SGD replays must be "
                    "deterministic functions of the batch; remove batch norm / dropout, or set dropout=0.0 "
                    "(LayerNorm is fine)")
        shared = len(list(model.named_parameters(remove_duplicate=False))) - len(list(model.named_parameters()))
        if shared:
            names = {}
            for n, p in model.named_parameters(remove_duplicate=False):
                names.setdefault(id(p), []).append(n)
            twice = next(v for v in names.values() if len(v) > 1)
            raise TypeError(f"the model holds one parameter under several names ({' and '.join(twice)}: tied weights "
                            "or a submodule registered twice); dve_teach cannot replay such a model exactly: give "
                            "each name its own parameter, or reuse the submodule through one attribute only")
        stats = [n for n, m in model.named_modules() if getattr(m, "track_running_stats", False)] + \
            [n for n, _ in model.named_buffers() if n.rpartition(".")[2] in _RUNNING]
        if stats:
            raise TypeError(f"the model keeps running statistics ({stats[0] or 'model'}): a forward pass changes "
                            "them, so a replay would not see the run's function; use LayerNorm, or "
                            "track_running_stats=False. Constant buffers (e.g. a causal mask) are fine")
        self.model = model
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("the model has no trainable parameters")
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.dtype = named[0][1].dtype
        self.device = named[0][1].device
        if any(p.is_meta for _, p in named):
            raise TypeError("the model's parameters are on the meta device (shapes without values): materialise "
                            "and initialise it first, e.g. model.to_empty(device='cpu') then reset_parameters()")
        offsets = [0]
        for k in self.numels:
            offsets.append(offsets[-1] + k)
        self.slices = [slice(a, b) for a, b in zip(offsets[:-1], offsets[1:])]
        layers: dict[str, list[slice]] = {}
        for n, s in zip(self.names, self.slices):
            layers.setdefault(n.rpartition(".")[0], []).append(s)
        self.layers = [(m, slice(ss[0].start, ss[-1].stop)) for m, ss in layers.items()]
        #: whether per-example gradients can be vmapped over the rows of X: known False for
        #: recurrent layers; otherwise tried once and switched off if vmap fails but a loop works.
        self.row_vmap = not any(isinstance(m, nn.RNNBase) for m in model.modules())
        #: whether Hessian-vector products may use forward-mode AD (switched off on the first op
        #: that has none; reverse-over-reverse gives the same products)
        self.forward_ad = True

    @property
    def P(self) -> int:
        return sum(self.numels)

    def flatten(self, params: Optional[dict] = None) -> torch.Tensor:
        """θ as Tensor[P] (from `params`, a name -> tensor dict, or from the module itself)."""
        src = params if params is not None else dict(self.model.named_parameters())
        return torch.cat([src[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, theta: torch.Tensor) -> dict:
        """The name -> tensor dict of θ (views, differentiable)."""
        return {n: theta[s].view(shape) for n, s, shape in zip(self.names, self.slices, self.shapes)}

    def forward(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, self.unflatten(theta), (X,))

    def load_into(self, module: nn.Module, theta: torch.Tensor) -> nn.Module:
        with torch.no_grad():
            for n, p in self.unflatten(theta).items():
                module.get_parameter(n).copy_(p)
        return module


class Objective:
    """Model + per-example loss as functions of θ: losses, gradients and HVPs (internal)."""

    def __init__(self, flat: FlatModel, loss: LossLike):
        self.flat, self.loss_fn = flat, resolve_loss(loss)

    def losses(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example losses, Tensor[n]."""
        out = self.loss_fn(self.flat.forward(theta, X), y)
        if out.ndim != 1 or out.shape[0] != X.shape[0]:
            raise ValueError(f"the loss must return one value per example (Tensor[{X.shape[0]}]), "
                             f"got shape {tuple(out.shape)}; use reduction='none'")
        return out

    def check_inputs(self, data: Data, name: str = "data") -> None:
        """Refuse integer inputs (token ids) outside 0..V−1 for the model's embedding tables, naming the
        rows, before torch fails deep inside an index_select."""
        if data.X.is_floating_point() or len(data) == 0:
            return
        sizes = [m.num_embeddings for m in self.flat.model.modules() if isinstance(m, nn.Embedding)]
        if not sizes:
            return
        V = min(sizes)
        X = data.X.reshape(len(data), -1)
        bad = torch.nonzero(((X < 0) | (X >= V)).any(1)).reshape(-1).tolist()
        if bad:
            raise ValueError(f"{name}.X rows {bad[:10]} hold token ids outside 0..{V - 1} (the model's embedding "
                             f"table has {V} entries): fix the ids or enlarge the nn.Embedding")

    def check_targets(self, theta: torch.Tensor, data: Data, name: str = "data") -> None:
        """Refuse class labels outside 0..k−1 for cross-entropy (k = the model's output width; for
        sequence outputs [n, L, V] the next-token labels [n, L] against V), naming the rows, before
        torch fails deep inside a batch."""
        if self.loss_fn is not cross_entropy or data.y.is_floating_point() or len(data) == 0:
            return
        with torch.no_grad():
            out = self.flat.forward(theta, data.X[:1])
        if out.ndim not in (2, 3):
            raise ValueError(f"loss='cross_entropy' needs model outputs of shape [n, k] or [n, L, V], got "
                             f"{list(out.shape)}")
        k = out.shape[-1]
        want = 1 if out.ndim == 2 else 2
        if data.y.ndim != want:
            return   # the loss itself names the shape problem
        flat_y = data.y.reshape(len(data), -1)
        bad = torch.nonzero(((flat_y < 0) | (flat_y >= k)).any(1)).reshape(-1).tolist()
        if bad:
            shown = data.y[bad[:10]].tolist() if want == 1 else "out of range"
            raise ValueError(f"{name}.y rows {bad[:10]} hold labels {shown} outside 0..{k - 1} "
                             f"(the model has {k} outputs): fix the labels or widen the model's last layer")

    def check_finite_losses(self, theta: torch.Tensor, data: Data, name: str = "data", where: str = "θ") -> None:
        """Refuse finite rows whose loss at θ is NaN/inf (the model's output is not finite there),
        naming them: through a shared backward pass one such row turns every column NaN."""
        if len(data) == 0:
            return
        with torch.no_grad():
            bad = torch.nonzero(~torch.isfinite(self.losses(theta, data.X, data.y))).reshape(-1).tolist()
        if bad:
            raise ValueError(f"{name} rows {bad[:10]} are finite but the model's loss at {where} is NaN/inf for "
                             f"them (its output is not finite there: a log, sqrt or division inside forward?); "
                             f"fix the model or drop those rows")

    def example_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.losses(theta, x.unsqueeze(0), y.unsqueeze(0))[0]

    def per_sample_grads(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇_θ ℓ(θ, z_i) for every row: Tensor[n, P] (``vmap(grad(...))``).

        Models that torch cannot vmap over their inputs (recurrent layers: nn.GRU, nn.LSTM, nn.RNN
        build their initial state inside forward) get the same gradients one row at a time."""
        if not self.flat.row_vmap:
            return self._looped_grads(theta, X, y)
        try:
            return vmap(grad(self.example_loss), in_dims=(None, 0, 0))(theta, X, y)
        except RuntimeError:  # vmap's batching failed: the loop raises the real error if it is not that
            G = self._looped_grads(theta, X, y)
            self.flat.row_vmap = False
            return G

    def _looped_grads(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = grad(self.example_loss)
        if X.shape[0] == 0:
            return theta.new_zeros(0, theta.shape[0])
        return torch.stack([g(theta, X[i], y[i]) for i in range(X.shape[0])])

    def weighted_loss(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                      w: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
        """(1/divisor) Σ_i w_i ℓ(θ, z_i): the batch objective of one SGD step."""
        return (w * self.losses(theta, X, y)).sum() / divisor

    def batch_grad(self, theta, X, y, w, divisor) -> torch.Tensor:
        return grad(self.weighted_loss)(theta, X, y, w, divisor)

    def hvp(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, divisor: float,
            V: torch.Tensor) -> torch.Tensor:
        """H V for the rows of V [k, P], H the Hessian of (1/divisor) Σ_i ℓ(θ, z_i) over the batch."""
        w = torch.ones(X.shape[0], dtype=theta.dtype, device=theta.device)
        d = torch.as_tensor(float(divisor), dtype=theta.dtype, device=theta.device)
        g = lambda th: self.batch_grad(th, X, y, w, d)  # noqa: E731
        if self.flat.forward_ad:
            try:
                return vmap(lambda v: jvp(g, (theta,), (v,))[1])(V)
            except NotImplementedError:  # an op without forward-mode AD (e.g. fused attention kernels)
                self.flat.forward_ad = False
        try:
            _, pullback = vjp(g, theta)  # reverse-over-reverse: H is symmetric, so Vᵀ H = (H V)ᵀ
            return vmap(lambda v: pullback(v)[0])(V)
        except (NotImplementedError, RuntimeError) as e:
            raise no_second_derivatives(e) from e

    def measure_fn(self, measure: Optional[Measure]) -> Callable[[torch.Tensor, Data], torch.Tensor]:
        """θ, data -> Tensor[n]: the test loss by default, else the user's measure."""
        if measure is None:
            return lambda theta, data: self.losses(theta, data.X, data.y)
        if not callable(measure):
            raise TypeError(f"measure must be a function measure(model, params, data) -> Tensor[n], got "
                            f"{type(measure).__name__}")

        def f(theta: torch.Tensor, data: Data) -> torch.Tensor:
            out = measure(self.flat.model, self.flat.unflatten(theta), data)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"the measure returned {type(out).__name__}, not a torch.Tensor[{len(data)}]: compute "
                                "it with torch from params (e.g. torch.func.functional_call(model, params, "
                                "(data.X,))), without .item(), float() or numpy, so it can be differentiated")
            return out
        return f

    def measure_grads(self, theta: torch.Tensor, data: Data, measure: Optional[Measure] = None,
                      chunk_size: Optional[int] = 256) -> torch.Tensor:
        """∇_θ measure(θ, z_j) for every test point: Tensor[n_test, P] (``jacrev``)."""
        f = self.measure_fn(measure)
        if measure is not None:  # probe once outside torch.func, so a bad measure gets a clear error
            with torch.enable_grad():
                probe = f(theta.detach().requires_grad_(True), data)
            if not probe.requires_grad:
                raise ValueError("the measure does not depend on params through torch operations (.item(), "
                                 ".detach(), numpy or new tensors cut the graph): its gradient would be zero "
                                 "and every gradient estimator would report zero influence; compute it from "
                                 "params with torch ops")
        U = jacrev(lambda th: f(th, data), chunk_size=chunk_size)(theta)
        if U.shape != (len(data), self.flat.P):
            raise ValueError(f"the measure must return one value per test point (Tensor[{len(data)}]); its "
                             f"gradient has shape {tuple(U.shape)} instead of [{len(data)}, {self.flat.P}]")
        if measure is not None and len(data) and not bool(U.ne(0).any()):
            raise ValueError("the measure's gradient with respect to params is exactly zero for every test point: it "
                             "ignores `params` (e.g. it calls model(data.X), which uses the module's own weights); "
                             "compute it with torch.func.functional_call(model, params, (data.X,)), or every "
                             "gradient estimator reports zero influence")
        return U.detach()
