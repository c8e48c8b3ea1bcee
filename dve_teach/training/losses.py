"""Losses, defined once: per-example cross-entropy (classes, or sequences of next tokens) and
squared error, and the names users pass (``loss="cross_entropy"`` / ``"mse"`` or a callable).

A loss maps model outputs and targets to one value per example, Tensor[n]; the batch objective of
a step is (1/b) Σ w_i ℓ_i (`dve_teach.training.functional.Objective`). For a sequence model the
point is the whole sequence and ℓ_i the mean over its positions (issue 13).
"""
from __future__ import annotations

from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..data.container import Data

__all__ = ["cross_entropy", "mse", "is_sequence_output", "resolve_loss", "no_second_derivatives", "LossLike",
           "LossFn", "Measure"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossLike = Union[str, LossFn]
#: ``measure(model, params, data) -> Tensor[n]``: what is measured on the test points.
Measure = Callable[[nn.Module, dict, Data], torch.Tensor]


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy -> Tensor[n].

    Classification: outputs [n, k] logits, targets [n] int64 labels in 0..k−1 (or [n, k] class
    probabilities). Sequences (a language model, issue 13): outputs [n, L, V] logits, targets
    [n, L] int64 next tokens (or [n, L, V] probabilities); the loss of example i is the mean over its
    L positions, ℓ_i = (1/L) Σ_l −log softmax(outputs[i, l])[targets[i, l]], and every estimator
    treats one sequence as one training point."""
    if outputs.ndim not in (2, 3):
        raise ValueError(f"loss='cross_entropy' needs model outputs of shape [n, k] (one logit per class) or "
                         f"[n, L, V] (a sequence of next-token logits), got {list(outputs.shape)}")
    seq = outputs.ndim == 3
    if targets.is_floating_point() and tuple(targets.shape) != tuple(outputs.shape):
        raise ValueError(f"loss='cross_entropy' got floating targets of shape {list(targets.shape)}: give "
                         f"class labels as int64 {'[n, L]' if seq else '[n]'} (y.long()), or probabilities shaped "
                         f"like the outputs {list(outputs.shape)}; for regression use loss='mse'")
    if not targets.is_floating_point() and targets.dtype not in (torch.int64, torch.uint8):
        raise TypeError(f"loss='cross_entropy' needs int64 class labels, got {targets.dtype}: convert them "
                        "with y.long()")
    if not targets.is_floating_point() and not seq and targets.ndim != 1:
        raise ValueError(f"loss='cross_entropy' needs class labels of shape [n], got {list(targets.shape)}: "
                         "flatten them with y.reshape(-1)")
    if not targets.is_floating_point() and seq and tuple(targets.shape) != tuple(outputs.shape[:2]):
        raise ValueError(f"loss='cross_entropy' on sequence outputs {list(outputs.shape)} ([n, L, V]) needs "
                         f"next-token labels of shape {list(outputs.shape[:2])} ([n, L]), got {list(targets.shape)}")
    if seq:   # F.cross_entropy wants the classes second: [n, V, L]
        t = targets.transpose(1, 2) if targets.is_floating_point() else targets
        return F.cross_entropy(outputs.transpose(1, 2), t, reduction="none").mean(1)
    return F.cross_entropy(outputs, targets, reduction="none")


def is_sequence_output(out: torch.Tensor) -> bool:
    """True for outputs [n, L, V] (a sequence model under cross-entropy)."""
    return out.ndim == 3


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example squared error averaged over output dimensions: [n, k], [n, k] or [n, 1], [n] -> [n].

    Shapes must match exactly (targets [n] are read as [n, 1] for a one-output model): no silent
    broadcasting of [n] against [n, 1] into [n, n]. Integer (class-label) targets are refused."""
    if not targets.is_floating_point():
        raise TypeError(f"loss='mse' got {targets.dtype} targets (class labels?): use loss='cross_entropy' "
                        "for labels, or give float targets (e.g. one-hot, y.double())")
    if targets.ndim == 1 and outputs.ndim == 2 and outputs.shape[1] == 1:
        targets = targets.unsqueeze(1)
    if tuple(outputs.shape) != tuple(targets.shape):
        raise ValueError(f"loss='mse': model outputs have shape {list(outputs.shape)} but targets "
                         f"{list(targets.shape)}; make them equal (e.g. y.reshape(-1, 1) for one output, "
                         "or a model whose output width matches the targets)")
    err = F.mse_loss(outputs, targets.to(outputs.dtype), reduction="none")
    return err.reshape(err.shape[0], -1).mean(1)


_LOSSES = {"cross_entropy": cross_entropy, "mse": mse}


def no_second_derivatives(e: BaseException) -> Exception:
    """The error for a model torch cannot differentiate twice (Hessian-vector products), or `e`."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "not implemented" not in text and "does not support" not in text:
        return e
    return NotImplementedError(
        f"this estimator needs second derivatives of the model, which torch does not have for one of its "
        f"operations ({text}). Use a first-order estimator (DataValueEmbedding, tracin, grad_dot) or "
        "exact_loo, or run it under `with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):` "
        "when the model uses attention (the fused kernels have no second derivatives)")


def resolve_loss(loss: LossLike) -> LossFn:
    """``"cross_entropy"``, ``"mse"`` or a callable ``loss(outputs, targets) -> Tensor[n]``."""
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss in _LOSSES:
        return _LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}: use 'cross_entropy', 'mse' or a callable "
                     "loss(outputs, targets) -> Tensor[n] of per-example losses")
