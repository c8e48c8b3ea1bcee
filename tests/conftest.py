"""Shared fixtures: two tiny recorded SGD runs (cheap, module-scoped) and the `gpu` marker skip.

- ``blobs_mlp``: a 2-8-3 tanh MLP on 30 blob points, cross-entropy, b = 8 (last batch of each
  epoch holds 6), 2 epochs (8 steps), lr 0.3, weight decay 0.
- ``linear_lsq``: least squares, a 3-1 linear model on 24 points, b = 5 (last batch 4),
  2 epochs (10 steps), lr 0.05, weight decay 0.01 (SGD is linear in θ here).

Each is a SimpleNamespace with ``traj, train, test, model`` (the untrained model), ``schedule,
lr, weight_decay, loss``. Treat them as read-only: they are shared by the tests of a module.
"""
from __future__ import annotations

import os

os.environ.setdefault("DVE_TEACH_FAST", "1")  # notebook kernels started by nbval inherit it
# The test problems are tiny: one thread avoids oversubscribing 2 cores (kernels inherit it too).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import dve_teach as dt  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _problem(split, model, schedule, lr, weight_decay, loss):
    traj = dt.train(model, split.train, schedule, lr, loss=loss, weight_decay=weight_decay)
    return SimpleNamespace(traj=traj, train=split.train, test=split.test, model=model,
                           schedule=schedule, lr=lr, weight_decay=weight_decay, loss=loss)


@pytest.fixture(scope="module")
def blobs_mlp():
    split = dt.datasets.blobs(n_train=30, n_test=7, seed=1)
    return _problem(split, dt.models.mlp((2, 8, 3), seed=0), dt.Schedule.shuffled(30, 8, epochs=2, seed=0),
                    0.3, 0.0, "cross_entropy")


@pytest.fixture(scope="module")
def linear_lsq():
    split = dt.datasets.linear_regression(n_train=24, n_test=6, dim=3, noise=0.1, seed=0)
    return _problem(split, dt.models.linear(3, 1, seed=0), dt.Schedule.shuffled(24, 5, epochs=2, seed=0),
                    0.05, 0.01, "mse")
