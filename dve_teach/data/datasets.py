"""Small offline data sets: scikit-learn's bundled digits, generated 2-D sets, linear regression,
and a character-level Shakespeare text set (`shakespeare`, from `dve_teach.data.text`).

Nothing is downloaded. Every function returns a `Split` with ``.train`` and ``.test`` (`Data`),
float64 inputs, int64 class labels (float64 targets for regression), reproducible from `seed`.
"""
from __future__ import annotations

import numpy as np
import torch

from .checks import as_int
from .container import Data, Split
from .text import VOCAB, TextSplit, Vocab, load_text, sample_text, shakespeare, unigram_loss

__all__ = ["digits", "moons", "blobs", "linear_regression", "shakespeare", "Vocab", "VOCAB", "TextSplit",
           "load_text", "unigram_loss", "sample_text"]


def _sizes(n_train, n_test) -> tuple[int, int]:
    return as_int(n_train, "n_train", 1), as_int(n_test, "n_test", 0)


def _split(X: np.ndarray, y: np.ndarray, n_train: int, n_test: int, seed: int, name: str,
           standardize: bool = True, keep_images: bool = False) -> Split:
    if n_train < 1 or n_test < 0:
        raise ValueError(f"n_train must be >= 1 and n_test >= 0, got {n_train} and {n_test}")
    if n_train + n_test > len(X):
        raise ValueError(f"{name} has {len(X)} examples; n_train + n_test = {n_train + n_test} is too many")
    order = np.random.default_rng(seed).permutation(len(X))
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    Xtr, Xte = X[tr].astype(np.float64), X[te].astype(np.float64)
    images = (torch.from_numpy(Xtr.copy()), torch.from_numpy(Xte.copy())) if keep_images else None
    if standardize:  # statistics of the training part only
        mean, std = Xtr.mean(0), Xtr.std(0)
        std[std == 0] = 1.0
        Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    ytype = torch.int64 if np.issubdtype(y.dtype, np.integer) else torch.float64
    to = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    return Split(Data(to(Xtr, torch.float64), to(y[tr], ytype)),
                 Data(to(Xte, torch.float64), to(y[te], ytype)), name, images)


def digits(n_train: int = 1000, n_test: int = 200, seed: int = 0) -> Split:
    """8x8 handwritten digits (1797 images, 10 classes) bundled with scikit-learn.

    X: Tensor[n, 64] float64, standardised with the training statistics; y: Tensor[n] int64.
    ``split.images`` holds the raw pixels (0..16) of the same rows, for drawing.
    """
    n_train, n_test = _sizes(n_train, n_test)
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split(d.data, d.target.astype(np.int64), n_train, n_test, seed, "digits",
                  keep_images=True)


def moons(n_train: int = 200, n_test: int = 100, noise: float = 0.2, seed: int = 0) -> Split:
    """Two interleaving half-moons in 2-D (for pictures). X: [n, 2] float64, y: [n] int64 in {0, 1}."""
    n_train, n_test = _sizes(n_train, n_test)
    from sklearn.datasets import make_moons

    X, y = make_moons(n_train + n_test, noise=noise, random_state=seed)
    return _split(X, y.astype(np.int64), n_train, n_test, seed, "moons")


def blobs(n_train: int = 200, n_test: int = 100, centers: int = 3, std: float = 1.0, seed: int = 0) -> Split:
    """Gaussian blobs in 2-D. X: [n, 2] float64, y: [n] int64 in {0, ..., centers-1}."""
    n_train, n_test = _sizes(n_train, n_test)
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_train + n_test, centers=centers, cluster_std=std, random_state=seed)
    return _split(X, y.astype(np.int64), n_train, n_test, seed, "blobs")


def linear_regression(n_train: int = 100, n_test: int = 20, dim: int = 5, noise: float = 0.1,
                      seed: int = 0) -> Split:
    """y = X w* + noise with X ~ N(0, I), w* ~ N(0, I). X: [n, dim], y: [n, 1], both float64.

    SGD on the squared loss is linear in θ here, which makes first-order estimates exact for
    predictions (the oracle of the tests and of lesson 03).
    """
    n_train, n_test = _sizes(n_train, n_test)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_train + n_test, dim))
    w = rng.standard_normal((dim, 1))
    y = X @ w + noise * rng.standard_normal((n_train + n_test, 1))
    return _split(X, y, n_train, n_test, seed, "linear_regression", standardize=False)
