"""Long loops show a bar (`dve_teach.data.progress`): exact replays, embedding fits and the reverse
sweeps count their steps when asked (``progress=True``), stay silent when told not to, and the
results never depend on it."""
from __future__ import annotations

import pytest
import torch

import dve_teach as dt


@pytest.fixture(scope="module")
def run(blobs_mlp):
    p = blobs_mlp
    return dt.train(p.model, p.train, p.schedule, p.lr, optimizer=dt.optim.Adam()), p.test


CALLS = {
    "exact_loo": lambda traj, test, progress: dt.exact_loo(traj, test, [0, 1, 2], progress=progress),
    "unrolled": lambda traj, test, progress: dt.unrolled_influence(traj, test, progress=progress).per_occurrence,
    "fit_state": lambda traj, test, progress: dt.DataValueEmbedding(progress=progress).fit(traj).embeddings_,
    "fit_sgd_proxy": lambda traj, test, progress: dt.DataValueEmbedding(optimizer="sgd_proxy", progress=progress)
    .fit(traj).embeddings_,
}
NAMES = {"exact_loo": "exact LOO replays", "unrolled": "first-order sweep", "fit_state": "embedding fit",
         "fit_sgd_proxy": "embedding fit"}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_bars_count_steps_and_never_change_results(run, name, capsys):
    traj, test = run
    quiet = CALLS[name](traj, test, False)
    assert NAMES[name] not in capsys.readouterr().err
    shown = CALLS[name](traj, test, True)
    err = capsys.readouterr().err
    assert NAMES[name] in err and f"/{traj.T}" in err or name == "exact_loo" and NAMES[name] in err, err[-500:]
    assert torch.equal(quiet, shown)


def test_auto_bars_stay_out_of_pipes(run, capsys, monkeypatch):
    """progress=None (the default) draws only where a bar can redraw: not into a pipe or a log file."""
    from dve_teach.data import progress
    traj, test = run
    monkeypatch.setattr(progress, "live", lambda: False)
    bar = progress.bar(5, "x")
    assert bar.disable
    bar.close()
    monkeypatch.setattr(progress, "live", lambda: True)
    bar = progress.bar(5, "x")
    assert not bar.disable
    bar.close()
    assert progress.bar(5, "x", progress=False).disable and not progress.bar(5, "x", progress=True).disable
