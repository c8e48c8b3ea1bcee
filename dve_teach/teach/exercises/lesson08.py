"""Checks for the exercises inside lesson 08 (scaling up)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, right, whole, wrong

__all__ = ["check_matrix_numbers", "check_composed"]


@exercise
def check_matrix_numbers(answer, dve):
    """answer: how many numbers the recursion's matrix (M, or P = I − M) holds for the fitted
    `DataValueEmbedding` `dve`: Σ_l d_l² over its layer blocks when ``layerwise``, else d²."""
    name = "the size of a per-layer M"
    if answer is None:
        return not_yet(name, "dve.projection_.blocks lists one slice of the d dimensions per layer.")
    if whole(answer) is None:
        return wrong(name, f"{answer!r} is not a whole number.", "count the entries of the matrices: an int.")
    answer = whole(answer)
    d, answer = dve.embedding_dim_, int(answer)
    blocks = dve.projection_.blocks if dve.layerwise else None
    sizes = [b.stop - b.start for b in blocks] if blocks else [d]
    truth = sum(k * k for k in sizes)
    if answer == truth:
        return right(name, f"{truth} numbers: {'one block per layer' if blocks else 'one d×d matrix'}.")
    if blocks and answer == d * d:
        return wrong(name, "that is the size of one full d×d matrix.", "layer-wise keeps one square block per layer: add their sizes.")
    if answer == dve.trajectory_.flat.P ** 2:
        return wrong(name, "that is the unprojected P×P matrix.", "the recursion runs in the projected space R^d.")
    if answer == sum(sizes):
        return wrong(name, "that counts dimensions, not matrix entries.", "a block of k dimensions holds k·k numbers.")
    return wrong(name, f"{answer} is not the count.", "square each block's size (b.stop - b.start) and add.")


@exercise
def check_composed(answer, seg, traj):
    """answer: Tensor [n_0, d], the final-model embeddings of the occurrences in segment 0 of the
    segmented fit `seg` (steps [0, s_1)), composed from that segment's local embeddings and the later
    segments' propagation matrices. Truth: the sequential `DataValueEmbedding` fit of `traj`."""
    from ...influence.embedding import DataValueEmbedding
    name = "composing segments by hand"
    if answer is None:
        return not_yet(name, "local @ (Π_{K-1} ··· Π_1)ᵀ: later segments on the left.")
    answer = torch.as_tensor(answer)
    cuts = seg.segment_bounds_
    rows = int((seg.steps_ < cuts[1]).sum())
    seq = DataValueEmbedding(hessian=seg.hessian, layerwise=seg.layerwise).fit(traj).embeddings_[:rows]
    if tuple(answer.shape) != tuple(seq.shape):
        return wrong(name, f"expected shape {tuple(seq.shape)} (one row per occurrence in segment 0), got "
                           f"{tuple(answer.shape)}.", "take the embeddings of traj.prefix(s_1), before composing.")
    answer = answer.to(seq.dtype)
    scale = float(seq.abs().max())
    if torch.allclose(answer, seq, atol=1e-9 * scale, rtol=0):
        return right(name, "equal to the sequential recursion: checkpointing is exact, not an approximation.")
    local = DataValueEmbedding(hessian=seg.hessian, layerwise=seg.layerwise).fit(traj.prefix(cuts[1])).embeddings_
    if torch.allclose(answer, local, atol=1e-9 * scale, rtol=0):
        return wrong(name, "those are the local embeddings, relative to θ at the end of segment 0.",
                     "carry them to θ_T with the propagation matrices of every later segment.")
    return wrong(name, "not equal to the sequential embeddings.",
                 "the rows are row vectors: multiply by the transposed product, later segments on the left.")
