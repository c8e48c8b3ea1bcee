"""The one projection factory (issue 13): a projection object — built earlier, or any object with
project/dim/in_dim — gives exactly the embeddings of its matrix; names, matrices and objects are
checked in one place with errors that name the fix."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.influence.pca import pca_projection
from dve_teach.influence.projection import Projection, make_projection
from dve_teach.influence.projection_factory import build_projection


@pytest.fixture(scope="module")
def run():
    split = dt.datasets.blobs(n_train=16, n_test=4, seed=2)
    traj = dt.train(dt.models.mlp((2, 4, 3), seed=0), split.train, dt.Schedule.shuffled(16, 4, epochs=2, seed=1),
                    0.05, optimizer="adam")
    return traj, split.test


class MatrixOnly:
    """Only the documented interface: project, dim, in_dim."""

    def __init__(self, R):
        self.R, self.dim, self.in_dim = R, R.shape[0], R.shape[1]

    def project(self, V):
        return V @ self.R.T


def test_objects_give_the_embeddings_of_their_matrix(run):
    traj, test = run
    proj = build_projection(traj, 6, "orthogonal", seed=4)
    R = proj.matrix()
    want = dt.DataValueEmbedding(projection=R).fit(traj).influence(test).per_occurrence
    for obj in (proj, MatrixOnly(R)):
        dve = dt.DataValueEmbedding(projection=obj).fit(traj)
        assert isinstance(dve.projection_, Projection) and dve.embedding_dim_ == 6
        assert torch.allclose(dve.influence(test).per_occurrence, want, rtol=1e-12, atol=1e-15)
    assert "orthogonal6" in dt.DataValueEmbedding(projection=proj).fit(traj).method_name
    fitted = build_projection(traj, 5, "pca", samples=8, step=2, seed=1)
    assert torch.equal(fitted.matrix(), pca_projection(traj, 5, 8, 2, 1).matrix())
    assert torch.equal(make_projection(traj.flat, 5, "gaussian", seed=3).matrix(),
                       build_projection(traj, 5, "gaussian", seed=3).matrix())


class BadShape(MatrixOnly):
    def project(self, V):
        return V[..., :2]


def test_objects_and_kinds_are_checked_in_one_place(run):
    traj, _ = run
    R = torch.randn(4, traj.flat.P, dtype=torch.float64)
    with pytest.raises(ValueError, match="model has P"):
        build_projection(traj, None, MatrixOnly(torch.randn(4, traj.flat.P + 1, dtype=torch.float64)))
    with pytest.raises(ValueError, match="disagrees"):
        build_projection(traj, 3, MatrixOnly(R))
    with pytest.raises(ValueError, match=r"not a Tensor \[1, 4\]"):
        build_projection(traj, None, BadShape(R))
    with pytest.raises(ValueError, match="layerwise=True needs"):
        dt.DataValueEmbedding(projection=MatrixOnly(R), layerwise=True).fit(traj)
    with pytest.raises(TypeError, match="project"):
        build_projection(traj, 3, object())
    with pytest.raises(ValueError, match="from the Trajectory"):
        make_projection(traj.flat, 3, "pca")
    with pytest.raises(ValueError, match="unknown projection"):
        dt.DataValueEmbedding(proj_dim=3, projection="sparse").fit(traj)


def test_dense_matrix_is_assembled_from_its_blocks(run):
    traj, _ = run
    for layerwise in (False, True):
        proj = build_projection(traj, 7, "gaussian", layerwise=layerwise, seed=2)
        assert torch.equal(proj.matrix(), proj.project(torch.eye(traj.flat.P, dtype=torch.float64)).T)
