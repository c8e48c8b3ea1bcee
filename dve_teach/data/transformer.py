"""A tiny causal character-level transformer (GPT-style, pre-LayerNorm), seeded, replayable: the
"foundation model in miniature" of issue 13.

    h_0 = E[x] + P[:L]                                   (token embedding E [V, d], positions P [context, d])
    h ← h + Attn(LN(h)),   h ← h + MLP(LN(h))            (n_layers blocks; MLP d → 4d → d with GELU)
    logits = W_out LN(h) + b                              Tensor[n, L, V]

Attention is written by hand (masked softmax over a constant lower-triangular mask): no fused
kernel, so per-example gradients (``vmap``) and second derivatives (forward-over-reverse HVPs)
work. No dropout. The causal mask is a non-persistent, constant buffer (`FlatModel` allows
constant buffers and refuses running statistics). The input and output embeddings are separate
parameters (tied weights are refused by `FlatModel`: one parameter under two names).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .checks import as_int

__all__ = ["CharTransformer", "char_transformer", "transformer_param_shapes", "LIMITS"]

#: bounds on a spec's sizes (a saved file's spec is checked against them before anything is built)
LIMITS = {"vocab": 65_536, "d_model": 4096, "n_heads": 256, "n_layers": 64, "context": 8192}


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention on [n, L, d]: softmax(q kᵀ/√(d/h) masked to j ≤ i) v."""

    def __init__(self, d_model: int, n_heads: int, context: int, dtype: torch.dtype):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, dtype=dtype)
        self.proj = nn.Linear(d_model, d_model, dtype=dtype)
        self.register_buffer("mask", torch.ones(context, context, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, L, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.reshape(n, L, h, d // h).transpose(1, 2) for z in (q, k, v))     # [n, h, L, d/h]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)
        att = att.masked_fill(~self.mask[:L, :L], float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(n, L, d))


class Block(nn.Module):
    """One pre-LayerNorm transformer block: h + Attn(LN(h)), then h + MLP(LN(h))."""

    def __init__(self, d_model: int, n_heads: int, context: int, dtype: torch.dtype):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, dtype=dtype)
        self.attn = CausalSelfAttention(d_model, n_heads, context, dtype)
        self.ln2 = nn.LayerNorm(d_model, dtype=dtype)
        self.fc = nn.Linear(d_model, 4 * d_model, dtype=dtype)
        self.out = nn.Linear(4 * d_model, d_model, dtype=dtype)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.ln1(h))
        return h + self.out(F.gelu(self.fc(self.ln2(h))))


class CharTransformer(nn.Module):
    """Token ids [n, L] (L ≤ context, int64) -> next-token logits [n, L, V] (module docstring)."""

    def __init__(self, vocab: int, d_model: int, n_heads: int, n_layers: int, context: int,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        self.vocab, self.d_model, self.n_heads, self.n_layers, self.context = vocab, d_model, n_heads, n_layers, context
        self.tok = nn.Embedding(vocab, d_model, dtype=dtype)
        self.pos = nn.Parameter(torch.zeros(context, d_model, dtype=dtype))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, context, dtype) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model, dtype=dtype)
        self.head = nn.Linear(d_model, vocab, dtype=dtype)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.ndim != 2 or X.shape[1] > self.context:
            raise ValueError(f"char_transformer takes token ids [n, L] with L <= context = {self.context}, got "
                             f"{list(X.shape)}")
        h = self.tok(X) + self.pos[:X.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))


def _sizes(vocab, d_model, n_heads, n_layers, context) -> tuple[int, int, int, int, int]:
    vals = [as_int(v, name, 1) for v, name in ((vocab, "vocab"), (d_model, "d_model"), (n_heads, "n_heads"),
                                                (n_layers, "n_layers"), (context, "context"))]
    for v, (name, cap) in zip(vals, LIMITS.items()):
        if v > cap:
            raise ValueError(f"{name} = {v} is over this library's bound {cap} for char_transformer")
    if vals[1] % vals[2]:
        raise ValueError(f"d_model = {vals[1]} must be a multiple of n_heads = {vals[2]} (each head gets d_model/n_heads)")
    return tuple(vals)  # type: ignore[return-value]


def char_transformer(vocab, d_model: int = 48, n_heads: int = 4, n_layers: int = 2, context: int = 32,
                     seed: int = 0, dtype: torch.dtype = torch.float64) -> CharTransformer:
    """A seeded `CharTransformer`. vocab: V (an int, or anything with ``len``, e.g. a
    `dt.datasets.Vocab`). Weights: Linear and embeddings N(0, 0.02²) (the residual outputs
    N(0, (0.02/√(2·n_layers))²)), positions N(0, 0.01²), biases 0, LayerNorm (1, 0)."""
    if not isinstance(vocab, int) and hasattr(vocab, "__len__") and not isinstance(vocab, (str, bytes)):
        vocab = len(vocab)
    V, d, h, nl, ctx = _sizes(vocab, d_model, n_heads, n_layers, context)
    gen = torch.Generator().manual_seed(as_int(seed, "seed"))
    model = CharTransformer(V, d, h, nl, ctx, dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rpartition(".")[2]
            if name == "pos":
                p.copy_(0.01 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif leaf == "bias":
                p.zero_()
            elif ".ln" in name or name.startswith("ln_f"):
                p.fill_(1.0)
            else:
                std = 0.02 / math.sqrt(2 * nl) if name.endswith(("attn.proj.weight", "out.weight")) else 0.02
                p.copy_(std * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


def transformer_param_shapes(vocab, d_model, n_heads, n_layers, context) -> list[tuple[str, list[int]]]:
    """(name, shape) of every parameter of `char_transformer` with these sizes, in the module's
    order, computed without building it (bounds: `LIMITS`)."""
    V, d, _, nl, ctx = _sizes(vocab, d_model, n_heads, n_layers, context)
    out: list[tuple[str, list[int]]] = [("pos", [ctx, d]), ("tok.weight", [V, d])]   # own parameters first
    for k in range(nl):
        b = f"blocks.{k}."
        out += [(b + "ln1.weight", [d]), (b + "ln1.bias", [d]),
                (b + "attn.qkv.weight", [3 * d, d]), (b + "attn.qkv.bias", [3 * d]),
                (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d]),
                (b + "ln2.weight", [d]), (b + "ln2.bias", [d]),
                (b + "fc.weight", [4 * d, d]), (b + "fc.bias", [4 * d]),
                (b + "out.weight", [d, 4 * d]), (b + "out.bias", [d])]
    return out + [("ln_f.weight", [d]), ("ln_f.bias", [d]), ("head.weight", [V, d]), ("head.bias", [V])]
