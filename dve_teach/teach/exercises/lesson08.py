"""Checks for the exercises inside lesson 08 (scaling up)."""
from __future__ import annotations

import torch

from . import exercise, not_yet, right, whole, wrong

__all__ = ["check_layer_split", "check_composed"]


@exercise
def check_layer_split(answer, traj, d: int, samples: int):
    """answer: a tuple of ints, the per-layer dimensions d_l that ``DataValueEmbedding(proj_dim=d,
    projection="pca", layerwise=True, pca_samples=samples)`` gives `traj`'s layers. The rule (stated
    in lesson 08): each layer's share of d is proportional to min(its parameter count, the number of
    sampled points), rounded by largest remainders so that the shares sum to d
    (`dve_teach.influence.projection.allocate_dims`)."""
    from ...influence.projection import allocate_dims
    name = "predict the per-layer split"
    if answer is None:
        return not_yet(name, "one int per layer, in the order of traj.flat.layers; they sum to d.")
    try:
        dims = tuple(whole(v) for v in answer)
    except TypeError:
        return wrong(name, f"{answer!r} is not a tuple of numbers.", "answer one whole number per layer: (d_1, d_2, ...).")
    if any(v is None for v in dims):
        return wrong(name, f"{answer!r} holds something that is not a whole number.", "dimensions are whole numbers.")
    dims = tuple(int(v) for v in dims)
    sizes = [sl.stop - sl.start for _, sl in traj.flat.layers]
    seen = min(max(int(samples), d), len(traj.data))             # pca draws at least d points, at most n
    caps = [min(k, seen) for k in sizes]
    truth = tuple(allocate_dims(d, caps))
    if len(dims) != len(sizes):
        return wrong(name, f"this model has {len(sizes)} layers with parameters, the answer has {len(dims)} entries.",
                     "one entry per Linear layer (weight and bias together): traj.flat.layers.")
    if dims == truth:
        return right(name, f"{truth}: M then holds {sum(k * k for k in truth)} numbers instead of {d * d}.")
    if sum(dims) != d:
        return wrong(name, f"the entries sum to {sum(dims)}, not d = {d}.", "the split shares out all d dimensions.")
    if caps != sizes and dims == tuple(allocate_dims(d, sizes)):
        return wrong(name, "that split is proportional to the layers' parameter counts.",
                     "a PCA of s sampled gradients finds at most s directions per layer: cap each size first.")
    if max(dims) - min(dims) <= 1:
        return wrong(name, "that is an (almost) equal split.", "the shares are proportional to the capped layer sizes.")
    return wrong(name, f"{dims} is not the split.", "d · cap_l / Σ caps per layer, floored, then the leftover "
                                                    "dimensions to the largest remainders.")


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
