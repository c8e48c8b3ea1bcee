"""Lesson 04's DigitModel compares the Fisher and GGN embeddings with exact LOO: its scores equal
fresh fits and replays, its top-k lists and confirmed counts equal a brute-force recount, and its
figure draws one labelled row per method and side."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt
from dve_teach.teach.explorers import DigitModel


@pytest.fixture(scope="module")
def run():
    s = dt.datasets.digits(n_train=40, n_test=4, seed=5)
    traj = dt.train(dt.models.mlp((64, 4, 10), seed=5), s.train, dt.Schedule.shuffled(40, 8, epochs=2, seed=5), lr=0.3)
    return traj, s


def test_methods_are_the_library_estimates(run):
    traj, s = run
    m = DigitModel(traj, s.test, k=3)
    torch.testing.assert_close(m.methods["DVE (Fisher)"], dt.DataValueEmbedding().fit(traj).influence(s.test).total())
    torch.testing.assert_close(m.methods["DVE (GGN)"], dt.DataValueEmbedding(hessian="ggn").fit(traj).influence(s.test).total())
    one = dt.exact_loo(traj, s.test, [7])[0]                       # point 7 removed from every step
    torch.testing.assert_close(m.methods["exact LOO"][7], one)


def test_confirmed_and_agreement_by_brute_force(run):
    traj, s = run
    m = DigitModel(traj, s.test, k=3)
    total = {n: [0.0, 0.0] for n in m.ESTIMATES}
    fewest = {n: 3 for n in m.ESTIMATES}
    for j in range(len(s.test)):
        m.test_index = j
        r = m.update()
        for n in m.ESTIMATES:
            for side, sign in ((0, 1), (1, -1)):
                pick = lambda x: {i for i in range(len(x)) if sum(float(sign * v) > float(sign * x[i]) for v in x) < 3}  # noqa: E731
                count = len(pick(m.methods[n][:, j]) & pick(m.methods["exact LOO"][:, j]))
                assert r["confirmed"][n][side] == count
                total[n][side] += count / len(s.test)
                fewest[n] = min(fewest[n], count)
    m.test_index = 1
    agree = m.agreement()
    assert m.test_index == 1
    for n in m.ESTIMATES:
        assert agree[n]["helpful"] == pytest.approx(total[n][0]) and agree[n]["harmful"] == pytest.approx(total[n][1])
        assert -1 <= agree[n]["spearman"] <= 1 and agree[n]["fewest"] == fewest[n]


def test_figure_has_a_labelled_row_per_method_and_side(run):
    traj, s = run
    m = DigitModel(traj, s.test, k=4)
    fig = m.figure()
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum(t.startswith("helpful\n") for t in texts) == 3 and sum(t.startswith("harmful\n") for t in texts) == 3
    r = m.update()
    assert any(t.startswith("helpful\nDVE (GGN)") and f"{r['confirmed']['DVE (GGN)'][0]}/4" in t for t in texts)
    assert "exact LOO" in m.summary()


def test_compare_false_keeps_only_fisher_and_refuses_agreement(run):
    traj, s = run
    m = DigitModel(traj, s.test, compare=False)
    assert list(m.methods) == ["DVE (Fisher)"] and "confirmed" not in m.update()
    m.figure()
    with pytest.raises(ValueError, match="compare=True"):
        m.agreement()
    with pytest.raises(ValueError, match="hessian"):
        DigitModel(traj, s.test, hessian="ggn")
