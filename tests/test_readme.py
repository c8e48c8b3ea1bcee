"""The README's "API in ten lines" runs as written and gives what its comments say."""
from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_snippet_runs():
    text = README.read_text()
    block = re.search(r"## The API in ten lines\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 10
    ns: dict = {}
    exec(compile(block.replace("print(", "result = ("), "README.md", "exec"), ns)
    n_test = len(ns["split"].test)
    assert ns["loo"].shape == (2, n_test)
    assert ns["est"].shape == (len(ns["split"].train), n_test)
    assert ns["dve"].embeddings_.shape[0] == len(ns["order"].order)
    assert set(ns["result"]) >= {"spearman", "pearson", "sign_agreement"}
    assert torch.isfinite(torch.tensor(ns["result"]["spearman"]))
