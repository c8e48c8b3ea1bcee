"""Every estimator of the library as ``name -> f(traj, test) -> Tensor``, shared by the float32 and
the GPU tests (not collected by pytest: the file name does not start with ``test_``)."""
from __future__ import annotations

import dve_teach as dt

ESTIMATORS = {
    "exact_loo": lambda traj, test: dt.exact_loo(traj, test, [0, 3, 7], progress=False),
    "exact_loo_single_step": lambda traj, test: dt.exact_loo(traj, test, traj.schedule.occurrence_pairs()[0][:3],
                                                             traj.schedule.occurrence_pairs()[1][:3], progress=False),
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
}
for _kind in ("gaussian", "orthogonal", "kronecker", "pca", "kronecker_pca"):
    ESTIMATORS[f"dve_{_kind}"] = (lambda kind: lambda traj, test: dt.DataValueEmbedding(
        proj_dim=20, projection=kind, pca_samples=25).fit(traj).influence(test).per_occurrence)(_kind)
