"""`dt.config`: fast mode, sizes and the lesson seed read from the environment."""
from __future__ import annotations

import pytest

import dve_teach as dt


def test_seed_defaults_to_zero_and_adds_offsets(monkeypatch):
    monkeypatch.delenv("DVE_TEACH_SEED", raising=False)
    assert dt.config.seed() == 0 and dt.config.seed(3) == 3
    monkeypatch.setenv("DVE_TEACH_SEED", " 2 ")
    assert dt.config.seed() == 2 and dt.config.seed(5) == 7


@pytest.mark.parametrize("raw, match", [("x", "not an integer"), ("1.5", "not an integer"), ("-1", "negative")])
def test_bad_seed_names_the_fix(monkeypatch, raw, match):
    monkeypatch.setenv("DVE_TEACH_SEED", raw)
    with pytest.raises(ValueError, match=match):
        dt.config.seed()


@pytest.mark.parametrize("offset", [-1, 1.0, True, "1"])
def test_bad_offset(monkeypatch, offset):
    monkeypatch.delenv("DVE_TEACH_SEED", raising=False)
    with pytest.raises(ValueError, match="non-negative int"):
        dt.config.seed(offset)


def test_sized_follows_fast_mode(monkeypatch):
    monkeypatch.setenv("DVE_TEACH_FAST", "1")
    assert dt.config.fast_mode() and dt.config.sized(10, 2) == 2
    monkeypatch.setenv("DVE_TEACH_FAST", "0")
    assert not dt.config.fast_mode() and dt.config.sized(10, 2) == 10
