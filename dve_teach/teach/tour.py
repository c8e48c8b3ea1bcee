"""Lesson 00's model: pick one training point of a recorded run and read what it was worth.

`PointModel` holds a run, its data value embedding and the exact leave-one-out of every training
point (removed at every step where it was used), so choosing a point costs only the replays of its
single occurrences. No ipywidgets here; `dve_teach.teach.widgets.PointExplorer` is the view.

Sign convention (DEVELOPERS.md): a score is measure(θ'_T) − measure(θ_T), θ' the run without the
point; with the test loss as the measure, positive = the point helped.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from . import plots
from ..data.container import DataLike
from ..influence.embedding import DataValueEmbedding
from ..influence.loo import exact_loo
from ..training.trajectory import Trajectory

__all__ = ["PointModel", "sign_reading", "tour_runs"]


def sign_reading(value: float, scale: float) -> str:
    """One line reading the sign of a TSLOO value (mean Δ test loss if the point is removed).
    Values below 1% of `scale` (e.g. the largest |value| among all points) read as "barely mattered"."""
    if abs(value) < 0.01 * scale:
        return "barely mattered: removing it leaves the test loss almost unchanged"
    if value > 0:
        return "helped: without it the test loss would be higher"
    return "hurt: without it the test loss would be lower"


class PointModel:
    """Lesson 00: choose a training point (`point`) -> the steps where it was used, its exact TSLOO
    against its data value embedding estimate (removed everywhere and per occurrence), and a reading
    of the sign.

    traj: the recorded run; test: the test data (mean test loss is the measure); dve: a fitted
    `DataValueEmbedding` (fitted here, Fisher, unprojected, when None); point: the starting point
    (default: the training point the final model fits worst).

    Fitted state: ``exact_`` and ``estimate_``, Tensor[n_train], the mean over the test set of the
    exact all-occurrence TSLOO and of its DVE estimate (paper §3.2: DVE · ∇ℓ(θ_T, z_test)).
    """

    def __init__(self, traj: Trajectory, test: DataLike, dve: Optional[DataValueEmbedding] = None,
                 point: Optional[int] = None):
        if not isinstance(traj, Trajectory):
            raise TypeError(f"traj must be a dt.Trajectory (the result of dt.train), got {type(traj).__name__}")
        self.traj, self.test = traj, traj.check_data(test)
        if dve is not None and getattr(dve, "trajectory_", None) is not traj:
            raise ValueError("dve must be a DataValueEmbedding fitted on this run (dve.fit(traj)); one fitted on "
                             "another run would show that run's numbers")
        self.dve = dve if dve is not None else DataValueEmbedding().fit(traj)
        self.influence_ = self.dve.influence(self.test)
        n = traj.schedule.n
        self.exact_ = exact_loo(traj, self.test, range(n)).mean(1)
        self.estimate_ = self.influence_.total().mean(1)
        self.scale_ = float(self.exact_.abs().max())
        self._cache: dict[int, tuple] = {}
        self.point = int(traj.test_losses(traj.data).argmax()) if point is None else point

    @property
    def point(self) -> int:
        return self._point

    @point.setter
    def point(self, value: int) -> None:
        n = self.traj.schedule.n
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < n:
            raise ValueError(f"point must be a training index in 0..{n - 1}, got {value!r}")
        self._point = int(value)

    def occurrences(self) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(steps where the point was used, DVE estimate per step [k], exact one-step TSLOO [k]),
        each the mean over the test set; cached per point."""
        p = self.point
        if p not in self._cache:
            steps = self.traj.schedule.occurrences(p)
            est = self.influence_.at([p] * len(steps), steps).mean(1)
            exact = exact_loo(self.traj, self.test, [p] * len(steps), steps).mean(1) if steps else torch.zeros(0)
            self._cache[p] = (steps, est, exact)
        return self._cache[p]

    def summary(self) -> str:
        p, steps = self.point, self.occurrences()[0]
        e, d = float(self.exact_[p]), float(self.estimate_[p])
        label = int(self.traj.data.y[p]) if not self.traj.data.y.is_floating_point() else None
        cls = f" (class {label})" if label is not None else ""
        return (f"point {p}{cls}, used at steps {', '.join(map(str, steps)) or 'none'}: exact TSLOO {e:+.4f}, "
                f"DVE {d:+.4f} (error {d - e:+.4f}). It {sign_reading(e, self.scale_)}.")

    def figure(self):
        """Decision boundary with the point circled | its influence per step (DVE vs exact) |
        DVE against exact for every training point, the chosen one starred."""
        p = self.point
        steps, est, exact = self.occurrences()
        with plots.style():
            fig, ax = plots.new_figure(3, figsize=(10.5, 3.3))
            plots.decision_boundary(ax[0, 0], self.traj, highlight=[p], title=f"trained model, point {p} circled")
            plots.per_step_influence(ax[0, 1], steps, est, exact, len(self.traj.schedule))
            ax[0, 1].set_title(f"point {p}: removed at one step only")
            plots.legend_on_top(ax[0, 1])
            plots.fidelity_scatter(ax[0, 2], self.estimate_, self.exact_, "DVE")
            plots.star_point(ax[0, 2], self.exact_[p], self.estimate_[p], f"point {p}")
            ax[0, 2].set_xlabel("exact TSLOO (removed everywhere)")
            ax[0, 2].set_ylabel("DVE estimate, every training point")
        return fig


def tour_runs(seeds, n_train: int, n_test: int, *, batch_size: int = 16, epochs: int = 3, lr: float = 0.2,
              worst: int = 10) -> list[dict]:
    """Lesson 00's tour repeated for several runs, one per seed (data, θ_0 and order all from it).

    For each run: the share of training points whose exact every-occurrence TSLOO (mean test loss) is
    negative (they hurt), the same share among the `worst` worst-fit points (highest training loss at
    θ_T), the DVE's Spearman against the exact values over the training points, and its largest error
    as a fraction of the largest exact effect. A list of dicts, one per seed, in order."""
    from ..data import datasets, models
    from ..influence.metrics import fidelity
    from ..training.loop import train
    from ..training.schedule import Schedule

    out = []
    for seed in seeds:
        split = datasets.moons(n_train=n_train, n_test=n_test, seed=int(seed))
        traj = train(models.mlp((2, 16, 2), seed=int(seed)), split.train,
                     Schedule.shuffled(n_train, batch_size=batch_size, epochs=epochs, seed=int(seed)), lr=lr)
        exact = exact_loo(traj, split.test, range(n_train)).mean(1)
        estimate = DataValueEmbedding().fit(traj).influence(split.test).total().mean(1)
        worst_fit = traj.test_losses(split.train).argsort(descending=True)[:worst]
        out.append(dict(seed=int(seed), share_hurt=float((exact < 0).double().mean()),
                        share_worst_hurt=float((exact[worst_fit] < 0).double().mean()),
                        spearman=float(fidelity(estimate, exact)["spearman"]),
                        largest_error=float((estimate - exact).abs().max() / exact.abs().max())))
    return out
