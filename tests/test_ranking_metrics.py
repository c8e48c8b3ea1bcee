"""`dt.metrics.roc_auc` against scikit-learn and the pairwise definition; `precision_at_k` against
brute force; their errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import dve_teach as dt


def _pairs_auc(s, y):
    pos, neg = s[y == 1], s[y == 0]
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg)]
    return float(np.mean(wins))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_against_sklearn_and_pairs(seed):
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=40) + y, 1)                    # rounded: ties happen
    assert dt.metrics.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-15)
    assert dt.metrics.roc_auc(torch.tensor(s), torch.tensor(y.astype(bool))) == pytest.approx(_pairs_auc(s, y))


def test_roc_auc_extremes():
    y = np.array([0, 0, 1, 1])
    assert dt.metrics.roc_auc([0.1, 0.2, 0.8, 0.9], y) == 1.0
    assert dt.metrics.roc_auc([0.9, 0.8, 0.2, 0.1], y) == 0.0
    assert dt.metrics.roc_auc([1, 1, 1, 1], y) == 0.5


def test_precision_at_k_brute_force():
    rng = np.random.default_rng(3)
    s, y = rng.normal(size=30), rng.integers(0, 2, 30)
    order = sorted(range(30), key=lambda i: (-s[i], i))
    for k in [1, 5, 17, 30]:
        assert dt.metrics.precision_at_k(s, y, k) == pytest.approx(np.mean([y[i] for i in order[:k]]))
    # ties: the lower index first
    assert dt.metrics.precision_at_k([1.0, 1.0, 0.0], [0, 1, 1], 1) == 0.0
    assert dt.metrics.precision_at_k([1.0, 1.0, 0.0], [1, 0, 1], 1) == 1.0


@pytest.mark.parametrize("call, exc, match", [
    (lambda: dt.metrics.roc_auc([0.1, 0.2], [1, 1]), ValueError, "only one class"),
    (lambda: dt.metrics.roc_auc([0.1, 0.2, 0.3], [0, 1]), ValueError, "same length"),
    (lambda: dt.metrics.roc_auc([0.1, float("nan")], [0, 1]), ValueError, "NaN or inf"),
    (lambda: dt.metrics.roc_auc([0.1, 0.2], [0, 2]), ValueError, "labels must be 0/1"),
    (lambda: dt.metrics.roc_auc(np.zeros((2, 2)), np.zeros((2, 2))), ValueError, "1-D"),
    (lambda: dt.metrics.precision_at_k([0.1, 0.2], [0, 1], 0), ValueError, "k must be an integer in 1..2"),
    (lambda: dt.metrics.precision_at_k([0.1, 0.2], [0, 1], 3), ValueError, "k must be an integer in 1..2"),
    (lambda: dt.metrics.precision_at_k([0.1, 0.2], [0, 1], 1.0), ValueError, "k must be an integer"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
