"""Every estimator runs in float32 (``dt.train(..., dtype=torch.float32)``) and stays in float32.

Oracle: the same run and estimator in float64. float32 rounds at ~6e-8 relative; over 8 SGD steps,
a d×d recursion, an SVD (pca) or a difference of two nearly equal losses (exact LOO) that grows by
a modest factor, so we allow 1e-4 of the largest |score| — about a thousand float32 ulps, far below
any difference that would change a ranking. (The digits-scale effect on fidelity is measured by
``python -m dve_teach bench``.)
"""
from __future__ import annotations

import functools
import warnings

import pytest
import torch

import dve_teach as dt

TOL = 1e-4

from estimators import ESTIMATORS  # noqa: E402  (tests/estimators.py)


@functools.lru_cache(maxsize=None)
def _run(dtype):
    split = dt.datasets.blobs(n_train=30, n_test=7, seed=1)
    traj = dt.train(dt.models.mlp((2, 8, 3), seed=0), split.train, dt.Schedule.shuffled(30, 8, epochs=2, seed=0),
                    0.3, weight_decay=0.01, dtype=dtype)
    return traj, split.test.to(dtype=dtype)


def test_training_in_float32_records_float32():
    traj, test = _run(torch.float32)
    assert traj.dtype == torch.float32 and traj.final.dtype == torch.float32 and test.X.dtype == torch.float32
    assert traj.data.X.dtype == torch.float32


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_float32_matches_float64(name):
    f = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the influence function's curvature warning
        lo = f(*_run(torch.float32))
        hi = f(*_run(torch.float64))
    assert lo.dtype == torch.float32 and hi.dtype == torch.float64
    scale = float(hi.abs().max())
    assert scale > 0
    err = float((lo.double() - hi).abs().max())
    assert err <= TOL * scale, f"{name}: float32 differs by {err:.2e} (scale {scale:.2e})"
