"""Seeded, plain `nn.Module` models for the lessons: an MLP and a linear model."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .checks import as_int

__all__ = ["mlp", "linear", "ACTIVATIONS"]

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
