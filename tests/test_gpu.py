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

ESTIMATORS = {
    "exact_loo": lambda traj, test: dt.exact_loo(traj, test, [0, 3, 7], progress=False),
    "sgd_influence": lambda traj, test: dt.sgd_influence(traj, test).per_occurrence,
    "tracin": lambda traj, test: dt.tracin(traj, test).per_occurrence,
    "grad_dot": lambda traj, test: dt.grad_dot(traj, test).per_occurrence,
    "influence_function": lambda traj, test: dt.influence_function(traj, test, damping=1.0),
    "dve_fisher": lambda traj, test: dt.DataValueEmbedding().fit(traj).influence(test).per_occurrence,
    "dve_ggn": lambda traj, test: dt.DataValueEmbedding(hessian="ggn").fit(traj).influence(test).per_occurrence,
    "dve_sampled_fisher": lambda traj, test: dt.DataValueEmbedding(hessian="sampled_fisher", fisher_samples=2)
    .fit(traj).influence(test).per_occurrence,
    "dve_layerwise": lambda traj, test: dt.DataValueEmbedding(layerwise=True).fit(traj).influence(test).per_occurrence,
    "dve_segments": lambda traj, test: dt.DataValueEmbedding(segments=3).fit(traj).influence(test).per_occurrence,
    "dve_segments_workers": lambda traj, test: dt.DataValueEmbedding(segments=3, workers=2).fit(traj)
    .influence(test).per_occurrence,
}
for _kind in ("gaussian", "orthogonal", "kronecker", "pca", "kronecker_pca"):
    ESTIMATORS[f"dve_{_kind}"] = (lambda kind: lambda traj, test: dt.DataValueEmbedding(
        proj_dim=20, projection=kind, pca_samples=25).fit(traj).influence(test).per_occurrence)(_kind)


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
