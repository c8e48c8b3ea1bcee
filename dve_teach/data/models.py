"""Seeded, plain `nn.Module` models for the lessons: an MLP, a linear model and a tiny causal
character-level transformer (`dve_teach.data.transformer`), and their specs (`model_spec` /
`build_model`: a saved trajectory stores the spec instead of code)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .checks import as_int
from .transformer import CharTransformer, char_transformer, transformer_param_shapes

__all__ = ["mlp", "linear", "char_transformer", "CharTransformer", "ACTIVATIONS", "model_spec", "build_model",
           "spec_param_shapes"]

_TRANSFORMER_KEYS = ("vocab", "d_model", "n_heads", "n_layers", "context")

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus}


def _seeded(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return gen


def _init_linear(layer: nn.Linear, gen: torch.Generator) -> None:
    bound = 1.0 / layer.in_features ** 0.5  # PyTorch's default uniform init, drawn from `gen`
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=gen)
        layer.bias.uniform_(-bound, bound, generator=gen)


def mlp(sizes: Sequence[int] = (64, 32, 10), activation: str = "tanh", seed: int = 0,
        dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    `activation` is one of ``tanh, relu, gelu, sigmoid, softplus`` (between layers, not after
    the last). The same `seed` gives the same weights.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a sequence of layer widths such as (64, 32, 10), got {sizes!r}")
    sizes = [as_int(s, f"sizes[{k}] (a layer width)", 1) for k, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output width >= 1, got {sizes}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    gen = _seeded(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b, dtype=dtype)
        _init_linear(lin, gen)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def linear(in_dim: int, out_dim: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Linear:
    """A single `nn.Linear(in_dim, out_dim)` with seeded weights (logistic or least squares)."""
    in_dim, out_dim = as_int(in_dim, "in_dim (input width)", 1), as_int(out_dim, "out_dim (output width)", 1)
    lin = nn.Linear(in_dim, out_dim, dtype=dtype)
    _init_linear(lin, _seeded(seed))
    return lin


def _linear_spec(layer: nn.Linear) -> Optional[list[int]]:
    return [layer.in_features, layer.out_features] if layer.bias is not None else None


def _settings(module: nn.Module) -> dict:
    """A module's public constructor settings (e.g. GELU's ``approximate``), for comparison."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


def model_spec(model: nn.Module) -> Optional[dict]:
    """The spec of a model with the structure of `dt.models.linear`, `dt.models.mlp` or
    `dt.models.char_transformer` (``{"kind": "linear", "in_dim", "out_dim"}``, ``{"kind": "mlp", "sizes",
    "activation"}`` or ``{"kind": "char_transformer", "vocab", "d_model", "n_heads", "n_layers", "context"}``),
    or None for any other model (which `load` then needs passed in), and for one with frozen
    parameters (requires_grad=False: the spec would rebuild them trainable)."""
    if any(not p.requires_grad for p in model.parameters()):
        return None
    if type(model) is CharTransformer:
        return {"kind": "char_transformer", **{k: getattr(model, k) for k in _TRANSFORMER_KEYS}}
    if type(model) is nn.Linear:
        io = _linear_spec(model)
        return None if io is None else {"kind": "linear", "in_dim": io[0], "out_dim": io[1]}
    if type(model) is not nn.Sequential or len(model) % 2 == 0:
        return None
    layers, acts = list(model)[0::2], list(model)[1::2]
    if any(type(m) is not nn.Linear or m.bias is None for m in layers):
        return None
    if any(a.out_features != b.in_features for a, b in zip(layers[:-1], layers[1:])):
        return None
    act = "tanh"  # a single Linear in a Sequential: any activation name rebuilds it
    if acts:
        act = next((k for k, v in ACTIVATIONS.items() if type(acts[0]) is v), None)
        if act is None or any(type(a) is not ACTIVATIONS[act] or _settings(a) != _settings(ACTIVATIONS[act]())
                              for a in acts):
            return None
    return {"kind": "mlp", "sizes": [layers[0].in_features] + [m.out_features for m in layers],
            "activation": act}


def spec_param_shapes(spec: dict) -> list[tuple[str, list[int]]]:
    """(name, shape) of every parameter the network of `spec` would have, computed without building
    it (so a hostile spec with a million layers or huge widths is refused before any memory is
    taken). ValueError/TypeError for anything that is not a `model_spec`."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "linear":
        a, b = as_int(spec.get("in_dim"), "in_dim", 1), as_int(spec.get("out_dim"), "out_dim", 1)
        return [("weight", [b, a]), ("bias", [b])]
    if kind == "mlp":
        sizes = spec.get("sizes")
        if not isinstance(sizes, list) or not 2 <= len(sizes) <= 10_000:
            raise ValueError("an mlp spec needs a list of 2 to 10000 layer widths")
        sizes = [as_int(s, "sizes", 1) for s in sizes]
        if spec.get("activation") not in ACTIVATIONS:
            raise ValueError(f"unknown activation {spec.get('activation')!r}")
        out = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            out += [(f"{2 * k}.weight", [b, a]), (f"{2 * k}.bias", [b])]
        return out
    if kind == "char_transformer":
        if set(spec) != {"kind", *_TRANSFORMER_KEYS}:
            raise ValueError(f"a char_transformer spec holds exactly the keys {_TRANSFORMER_KEYS}")
        return transformer_param_shapes(*(spec[k] for k in _TRANSFORMER_KEYS))
    raise ValueError(f"unknown model spec {spec!r:.100}: use one written by model_spec")


def build_model(spec: dict, dtype: torch.dtype = torch.float64) -> nn.Module:
    """The `dt.models` network a `model_spec` describes (seed 0 weights; `Trajectory.load`
    overwrites them with the saved θ_T)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "linear":
        return linear(spec["in_dim"], spec["out_dim"], dtype=dtype)
    if kind == "mlp":
        return mlp(spec["sizes"], spec["activation"], dtype=dtype)
    if kind == "char_transformer":
        spec_param_shapes(spec)   # the bounds, before anything is built
        return char_transformer(*(spec[k] for k in _TRANSFORMER_KEYS), dtype=dtype)
    raise ValueError(f"unknown model spec {spec!r}: use one written by model_spec")
