"""Offline data sets: shapes, dtypes, standardisation with training statistics, seeds, errors."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt


def test_digits_standardised_with_train_statistics_and_raw_images_match():
    s = dt.datasets.digits(n_train=300, n_test=50, seed=1)
    assert s.train.X.shape == (300, 64) and s.test.X.shape == (50, 64)
    assert s.train.X.dtype == torch.float64 and s.train.y.dtype == torch.int64
    raw_tr, raw_te = s.images
    assert float(raw_tr.min()) >= 0 and float(raw_tr.max()) <= 16   # sklearn's 0..16 pixel counts
    mean, std = raw_tr.mean(0), raw_tr.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    assert torch.allclose((raw_tr - mean) / std, s.train.X)
    assert torch.allclose((raw_te - mean) / std, s.test.X)        # test uses the *train* statistics
    assert torch.equal(dt.datasets.digits(300, 50, seed=1).train.X, s.train.X)
    assert not torch.equal(dt.datasets.digits(300, 50, seed=2).train.X, s.train.X)


@pytest.mark.parametrize("make, shape", [(dt.datasets.moons, (2,)), (dt.datasets.blobs, (2,)),
                                         (lambda **k: dt.datasets.linear_regression(dim=4, **k), (4,))])
def test_generated_sets(make, shape):
    s = make(n_train=40, n_test=10, seed=0)
    assert tuple(s.train.X.shape) == (40, *shape) and len(s.test) == 10
    assert s.images is None


def test_dataset_errors():
    with pytest.raises(ValueError, match="too many"):
        dt.datasets.digits(n_train=1700, n_test=200)
    with pytest.raises(ValueError, match="n_train"):
        dt.datasets.moons(n_train=0)
