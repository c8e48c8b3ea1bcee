"""Fidelity against exact replay on the issue's reference problem (issue 2, "Tests").

Digits, MLP 64-32-10 tanh, lr 0.05, b 32, 3 epochs, 1000 train / 200 test, 60 LOO points removed
at every occurrence. Mean-over-test-points Spearman of each first-order estimate against exact
`exact_loo`. The thresholds are the issue's targets, not numbers copied from a run.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import dve_teach as dt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_run():
    split = dt.datasets.digits(n_train=1000, n_test=200, seed=0)
    schedule = dt.Schedule.shuffled(1000, 32, epochs=3, seed=0)
    traj = dt.train(dt.models.mlp((64, 32, 10), "tanh", seed=0), split.train, schedule, 0.05)
    points = np.random.default_rng(0).choice(1000, size=60, replace=False).tolist()
    exact = dt.exact_loo(traj, split.test, points)
    return SimpleNamespace(traj=traj, test=split.test, points=points, exact=exact)


def _spearman(influence: dt.Influence, run) -> float:
    return dt.metrics.fidelity(influence.total()[run.points], run.exact)["spearman"]


def test_sgd_influence_tracks_exact_loo(digits_run):
    assert _spearman(dt.sgd_influence(digits_run.traj, digits_run.test), digits_run) >= 0.98


def test_embeddings_fisher_and_ggn(digits_run):
    run = digits_run
    fisher = _spearman(dt.DataValueEmbedding(hessian="fisher").fit(run.traj).influence(run.test), run)
    ggn = _spearman(dt.DataValueEmbedding(hessian="ggn").fit(run.traj).influence(run.test), run)
    assert fisher >= 0.70
    assert ggn > fisher


def test_renormalized_pair(digits_run):
    run = digits_run
    exact = dt.exact_loo(run.traj, run.test, run.points, renormalize=True)
    est = dt.sgd_influence(run.traj, run.test, renormalize=True).total()[run.points]
    assert dt.metrics.fidelity(est, exact)["spearman"] >= 0.98
    # the two conventions are different quantities: renormalizing really changes the truth
    assert (exact - run.exact).abs().max() > 1e-3 * run.exact.abs().max()
