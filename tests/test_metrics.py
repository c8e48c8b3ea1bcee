"""`dt.metrics.fidelity` against scipy directly, and its edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import dve_teach as dt
from dve_teach.influence.metrics import fidelity


def _table(seed=0, shape=(25, 4)):
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal(shape)
    return truth, truth + 0.7 * rng.standard_normal(shape)


def test_matches_scipy_column_means():
    truth, est = _table()
    out = fidelity(est, truth)
    sp = np.mean([stats.spearmanr(est[:, j], truth[:, j])[0] for j in range(truth.shape[1])])
    pe = np.mean([stats.pearsonr(est[:, j], truth[:, j])[0] for j in range(truth.shape[1])])
    assert out["spearman"] == pytest.approx(sp, abs=1e-12)
    assert out["pearson"] == pytest.approx(pe, abs=1e-12)
    assert out["sign_agreement"] == pytest.approx(np.mean(np.sign(est) == np.sign(truth)), abs=0)
    assert out["n_test_used"] == truth.shape[1]
    assert 0.3 < out["spearman"] < 0.99  # a noisy estimate: neither perfect nor unrelated


def test_perfect_negated_and_monotone():
    truth, _ = _table(1)
    assert fidelity(truth, truth) == {"spearman": pytest.approx(1.0), "pearson": pytest.approx(1.0),
                                      "sign_agreement": 1.0, "n_test_used": 4}
    neg = fidelity(-truth, truth)
    assert neg["spearman"] == pytest.approx(-1.0) and neg["pearson"] == pytest.approx(-1.0)
    assert neg["sign_agreement"] == 0.0
    mono = fidelity(np.exp(truth), truth)  # same ranks, not linear, all positive
    assert mono["spearman"] == pytest.approx(1.0) and mono["pearson"] < 0.99
    assert mono["sign_agreement"] == pytest.approx(np.mean(truth > 0))


def test_constant_columns_are_skipped():
    truth, est = _table(2)
    truth[:, 1] = 0.0  # e.g. a test point nothing influences
    est[:, 3] = 5.0
    out = fidelity(est, truth)
    keep = [0, 2]
    assert out["n_test_used"] == 2
    assert out["spearman"] == pytest.approx(np.mean([stats.spearmanr(est[:, j], truth[:, j])[0] for j in keep]))
    assert out["pearson"] == pytest.approx(np.mean([stats.pearsonr(est[:, j], truth[:, j])[0] for j in keep]))
    assert out["sign_agreement"] == pytest.approx(np.mean(np.sign(est) == np.sign(truth)))
    allconst = fidelity(np.ones((5, 2)), np.zeros((5, 2)))
    assert math.isnan(allconst["spearman"]) and math.isnan(allconst["pearson"])
    assert allconst["n_test_used"] == 0 and allconst["sign_agreement"] == 0.0


def test_tensors_1d_and_numpy_agree():
    truth, est = _table(3, (30, 1))
    a = fidelity(torch.from_numpy(est), torch.from_numpy(truth))
    b = fidelity(est[:, 0], truth[:, 0])
    assert a == b and a["n_test_used"] == 1
    assert a["spearman"] == pytest.approx(stats.spearmanr(est[:, 0], truth[:, 0])[0])


def test_errors_are_clear():
    truth, est = _table(4)
    with pytest.raises(ValueError, match="same points"):
        fidelity(est[:-1], truth)
    with pytest.raises(ValueError, match="n_points, n_test"):
        fidelity(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    bad = est.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fidelity(bad, truth)
    inf = dt.Influence(torch.zeros(3, 2), [0, 1, 2], [0, 0, 1], n_train=3)
    with pytest.raises(TypeError, match=r"\.total\(\)\[points\]"):
        fidelity(inf, torch.zeros(3, 2))
