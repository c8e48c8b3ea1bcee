"""The shipped character-level text set (issue 13): sequences are windows of the shipped texts,
inputs and next characters line up, held-out windows never overlap training ones, the vocabulary
round-trips, and the unigram baseline is the brute-force average of −log frequencies."""
from __future__ import annotations

import math

import pytest
import torch

import dve_teach as dt
from dve_teach.data.text import HELD_OUT


@pytest.mark.parametrize("stage", ["plays", "sonnets"])
def test_sequences_are_windows_of_the_text(stage):
    s = dt.datasets.shakespeare(stage, n_train=40, n_test=10, context=12, seed=3)
    text, V = dt.datasets.load_text(stage), s.vocab
    assert s.train.X.shape == s.train.y.shape == (40, 12) and s.train.X.dtype == torch.int64
    cut = int(len(text) * (1 - HELD_OUT))
    for part, starts in ((s.train, s.train_starts), (s.test, s.test_starts)):
        for x, y, a in zip(part.X, part.y, starts.tolist()):
            assert V.decode(x) == text[a:a + 12] and V.decode(y) == text[a + 1:a + 13]
    assert int(s.train_starts.max()) + 13 <= cut <= int(s.test_starts.min())
    assert len(set(s.train_starts.tolist())) == 40


def test_same_seed_same_sequences_and_shared_vocabulary():
    a, b = dt.datasets.shakespeare("plays", 20, 5, 8, seed=1), dt.datasets.shakespeare("plays", 20, 5, 8, seed=1)
    assert torch.equal(a.train.X, b.train.X) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.X, dt.datasets.shakespeare("plays", 20, 5, 8, seed=2).train.X)
    assert dt.datasets.shakespeare("sonnets", 4, 1, 8).vocab is a.vocab is dt.datasets.VOCAB
    for stage in ("plays", "sonnets"):
        text = dt.datasets.load_text(stage)
        assert dt.datasets.VOCAB.decode(dt.datasets.VOCAB.encode(text[:5000])) == text[:5000]
        assert "gutenberg" not in text.lower()


def test_bad_requests_are_refused_by_name():
    with pytest.raises(ValueError, match="stage"):
        dt.datasets.shakespeare("novels")
    with pytest.raises(ValueError, match="too many"):
        dt.datasets.shakespeare("sonnets", n_train=10 ** 6)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        dt.datasets.VOCAB.encode("naïve")
    with pytest.raises(ValueError, match="outside"):
        dt.datasets.VOCAB.decode([0, 999])


def test_unigram_loss_is_the_mean_negative_log_frequency():
    s = dt.datasets.shakespeare("sonnets", 30, 6, 10, seed=0)
    V = len(s.vocab)
    counts = [1.0] * V
    for c in s.train.y.reshape(-1).tolist():
        counts[c] += 1
    total = sum(counts)
    want = sum(-math.log(counts[c] / total) for c in s.test.y.reshape(-1).tolist()) / s.test.y.numel()
    assert dt.datasets.unigram_loss(s.train, s.test) == pytest.approx(want, rel=1e-12)


def test_sample_text_is_the_models_own_continuation():
    model = dt.models.char_transformer(dt.datasets.VOCAB, 8, 2, 1, context=6, seed=1)
    V = dt.datasets.VOCAB
    out = dt.datasets.sample_text(model, "To be", 10, temperature=0)
    ids = V.encode("To be").tolist()
    for _ in range(10):      # oracle: argmax of the last position, over the last 6 characters
        ids.append(int(model(torch.tensor([ids[-6:]]))[0, -1].argmax()))
    assert out == V.decode(ids)
    a = dt.datasets.sample_text(model, "To be", 20, temperature=1.0, seed=3)
    assert a == dt.datasets.sample_text(model, "To be", 20, temperature=1.0, seed=3) and a.startswith("To be")
    with pytest.raises(ValueError, match="temperature"):
        dt.datasets.sample_text(model, "To be", 5, temperature=-1)
    with pytest.raises(ValueError, match="prompt"):
        dt.datasets.sample_text(model, "", 5)
