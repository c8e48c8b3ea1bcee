"""Every estimator on CUDA agrees with the same estimator on the CPU (marked ``gpu``: skipped
without CUDA; run with ``python -m pytest -m gpu`` or ``.ci/gpu_check.sh``).

Oracle: the CPU result of the same run. In float64 the two differ only by the order of floating
point operations (cuBLAS vs the CPU BLAS), ~1e-15 relative per operation, so we allow 1e-9 of the
largest |score|; in float32 the float32 tolerance of test_float32.py (1e-4).
"""
from __future__ import annotations

import functools
import warnings

import pytest
import torch

import dve_teach as dt

pytestmark = pytest.mark.gpu

from estimators import ESTIMATORS as _SHARED  # noqa: E402  (tests/estimators.py)

ESTIMATORS = {**_SHARED, "dve_segments_workers": lambda traj, test: dt.DataValueEmbedding(
    segments=3, workers=2).fit(traj).influence(test).per_occurrence}


@functools.lru_cache(maxsize=None)
def _run(device: str, dtype: torch.dtype):
    split = dt.datasets.blobs(n_train=30, n_test=7, seed=1)
    traj = dt.train(dt.models.mlp((2, 8, 3), seed=0), split.train, dt.Schedule.shuffled(30, 8, epochs=2, seed=0),
                    0.3, weight_decay=0.01, dtype=dtype, device=device)
    return traj, split.test.to(device, dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_cuda_matches_cpu(name, dtype, tol):
    f = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gpu = f(*_run("cuda", dtype))
        cpu = f(*_run("cpu", dtype))
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    scale = float(cpu.abs().max())
    err = float((gpu.cpu().double() - cpu.double()).abs().max())
    assert err <= tol * scale, f"{name}: CUDA differs by {err:.2e} (scale {scale:.2e})"


def test_cuda_fork_workers_are_refused():
    traj, _ = _run("cuda", torch.float64)
    with pytest.raises(ValueError, match="spawn"):
        dt.DataValueEmbedding(segments=2, workers=2, start_method="fork").fit(traj)
