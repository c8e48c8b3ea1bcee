"""The problems and model classes behind the lesson widgets (lessons 01-04): what to train
(`Problem`), training orders (`order_for`, `PRESETS`), and one plain model class per lesson
(state, cached results, ``summary()``, ``figure()``). No ipywidgets here: the models work and are
tested from plain Python without the lessons extra; `dve_teach.teach.widgets` holds the thin ipywidgets 8
views over them (a model + view split, as in the jupyter-widgets tutorial) and re-exports these names. Lesson 05's model is in
`dve_teach.teach.reorder`. Figures come from `dve_teach.teach.plots`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from . import plots
from ..data.checks import as_flag, as_int
from ..data.config import sized
from ..data.container import Data
from ..training.functional import resolve_loss
from ..training.schedule import Schedule
from ..training.loop import train
from ..training.trajectory import Trajectory

__all__ = ["Problem", "PRESETS", "THREADS", "order_for", "OrderModel", "RemovalModel", "LearningRateModel",
           "DigitModel"]

PRESETS = ("shuffle", "easy→hard (loss at init)", "hard→easy (loss at init)", "easy→hard (margin)",
           "class-sorted")


@dataclass
class Problem:
    """What to train: an untrained `model`, `train`/`test` data, `lr` (float or one per step),
    nominal batch size, epochs, loss, weight decay, seed (of the default shuffled order), the update
    rule (None: plain SGD with `weight_decay`) and the dtype of the runs."""

    model: nn.Module
    train: Data
    test: Data
    lr: Union[float, Sequence[float]]
    batch_size: int
    epochs: int = 3
    loss: Any = "cross_entropy"
    weight_decay: float = 0.0
    seed: int = 0
    images: Optional[tuple] = None  # (train, test) raw images to draw (digits), else None
    optimizer: Any = None
    dtype: torch.dtype = torch.float64

    def fit(self, schedule: Schedule, lr=None) -> Trajectory:
        """Train along `schedule` (with `lr`, default the problem's) and record the run."""
        return train(self.model, self.train, schedule, self.lr if lr is None else lr, loss=self.loss,
                     weight_decay=self.weight_decay, optimizer=self.optimizer, dtype=self.dtype)

    @classmethod
    def moons(cls, n_train: Optional[int] = None, n_test: Optional[int] = None, epochs: Optional[int] = None,
              batch_size: int = 16, lr: float = 0.2, hidden: int = 16, seed: int = 0) -> "Problem":
        """2-D moons (200/100 points, fast mode 100/50), a 2-`hidden`-2 tanh MLP, 3 epochs (fast 2)."""
        from ..data import datasets, models
        s = datasets.moons(n_train or sized(200, 100), n_test or sized(100, 50), seed=seed)
        return cls(models.mlp((2, hidden, 2), seed=seed), s.train, s.test, lr, batch_size,
                   epochs or sized(3, 2), seed=seed)

    @classmethod
    def digits(cls, n_train: Optional[int] = None, n_test: Optional[int] = None, epochs: int = 2,
               batch_size: int = 32, lr: float = 0.1, hidden: int = 16, seed: int = 0) -> "Problem":
        """8x8 digits (600/100 images, fast mode 200/40), a 64-`hidden`-10 tanh MLP, 2 epochs."""
        from ..data import datasets, models
        s = datasets.digits(n_train or sized(600, 200), n_test or sized(100, 40), seed=seed)
        return cls(models.mlp((64, hidden, 10), seed=seed), s.train, s.test, lr, batch_size, epochs, seed=seed,
                   images=s.images)

    @classmethod
    def of(cls, traj: Trajectory, test) -> "Problem":
        """The problem behind a recorded run (θ_0, data, step sizes, loss, update rule, dtype)."""
        lrs = [float(v) for v in traj.lrs]
        lr = lrs[0] if len(set(lrs)) == 1 else lrs
        epochs = max(1, round(len(traj.schedule.order) / traj.schedule.n))
        return cls(traj.model_at(0), traj.data, traj.check_data(test), lr, traj.batch_size, epochs,
                   traj.loss, 0.0, optimizer=traj.optimizer, dtype=traj.dtype)


def order_for(problem: Problem, preset: str = "shuffle", seed: int = 0,
              reference: Optional[Trajectory] = None) -> Schedule:
    """A `Schedule` of `problem.epochs` passes for a preset of `PRESETS`: shuffled by `seed`;
    curricula by the loss at initialisation (easy = low loss), by the margin of a `reference`
    trained run (true-class logit minus the best other; easy = large margin), or sorted by class.
    """
    n, b, e = len(problem.train), problem.batch_size, problem.epochs
    if preset == "shuffle":
        return Schedule.shuffled(n, b, e, seed=seed)
    y = problem.train.y
    if preset == "class-sorted":
        return Schedule.curriculum(y.reshape(n, -1)[:, 0].double().cpu().numpy(), b, e)
    if preset in PRESETS[1:3]:
        with torch.no_grad():
            loss = resolve_loss(problem.loss)(problem.model(problem.train.X), y)
        return Schedule.curriculum(loss.cpu().numpy(), b, e, descending=preset.startswith("hard"))
    if preset == PRESETS[3]:
        if y.is_floating_point():
            raise ValueError("the margin preset needs class labels; use a loss preset for regression")
        if reference is None:
            raise ValueError("the margin preset needs a trained reference run: pass reference=traj")
        out = reference.predict(problem.train.X)
        true = out.gather(1, y[:, None]).squeeze(1)
        other = out.scatter(1, y[:, None], float("-inf")).max(1).values
        return Schedule.curriculum((other - true).cpu().numpy(), b, e)  # ascending difficulty
    raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")


def _mean_test(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().mean(-1).cpu().numpy()


#: torch threads while a model computes (None: leave torch's setting; set it here, on
#: `dve_teach.teach.explorers`, it is read at each call). The lesson problems are tiny
#: (P ~ 100): on 2 cores shared with other work (load ~8), two threads' OpenMP waits made a Retrain
#: ~20x slower than one thread (6-8 s vs 0.3-0.5 s); on idle cores the two are alike.
THREADS: Optional[int] = 1


def _threads(fn: Callable) -> Callable:
    """Run `fn` with `THREADS` torch threads, restoring the setting afterwards."""
    import functools

    @functools.wraps(fn)
    def inner(*args, **kw):
        before = torch.get_num_threads()
        if THREADS:
            torch.set_num_threads(THREADS)
        try:
            return fn(*args, **kw)
        finally:
            torch.set_num_threads(before)
    return inner


# ---- models (no ipywidgets inside: usable and testable from plain Python) --------------------------
class OrderModel:
    """Lesson 01: one order (shuffle `seed` or a curriculum `preset`) -> decision boundary and test
    loss, against the final test loss of `n_orders` shuffles trained at once (`dt.orders`)."""

    def __init__(self, problem: Optional[Problem] = None, seed: int = 0, preset: str = "shuffle",
                 n_orders: Optional[int] = None):
        self.problem = problem or Problem.moons()
        self.seed, self.preset, self.n_orders = int(seed), preset, n_orders or sized(50, 20)
        self._runs: dict = {}
        self._spread: Optional[np.ndarray] = None

    @_threads
    def _train(self, s: Schedule) -> dict:
        if s not in self._runs:
            p, traj = self.problem, self.problem.fit(s)
            with torch.no_grad():
                acc = float((traj.predict(p.test.X).argmax(1) == p.test.y).double().mean())
            self._runs[s] = dict(traj=traj, test_loss=float(traj.test_losses(p.test).mean()), accuracy=acc)
        return self._runs[s]

    @property
    def schedule(self) -> Schedule:
        """The current order (the margin preset measures margins with the seed-0 shuffle's run)."""
        ref = self._train(order_for(self.problem, "shuffle", self.problem.seed))["traj"]
        return order_for(self.problem, self.preset, self.seed, ref)

    def update(self) -> dict:
        """Train on the current order (cached by the order): {"traj", "test_loss", "accuracy"}."""
        return self._train(self.schedule)

    @_threads
    def spread(self) -> np.ndarray:
        """Final mean test loss of the shuffles with seeds 0..n_orders-1: [n_orders]."""
        if self._spread is None:
            from ..training.orders import final_test_losses
            p = self.problem
            orders = [order_for(p, "shuffle", r) for r in range(self.n_orders)]
            self._spread = _mean_test(final_test_losses(p.model, p.train, p.test, orders, p.lr, loss=p.loss,
                                                        weight_decay=p.weight_decay, optimizer=p.optimizer,
                                                        dtype=p.dtype))
        return self._spread

    def summary(self) -> str:
        r, spread = self.update(), self.spread()
        return (f"{self.preset}{', seed %d' % self.seed if self.preset == 'shuffle' else ''}: final test loss "
                f"{r['test_loss']:.3f}, accuracy {r['accuracy']:.1%}; "
                f"{int((spread < r['test_loss']).sum())} of {len(spread)} shuffles end lower")

    def figure(self):
        r = self.update()
        title = f"shuffle, seed {self.seed}" if self.preset == "shuffle" else self.preset
        return plots.order_figure(r["traj"], self.problem.train, self.spread(), r["test_loss"], title)


class RemovalModel:
    """Lesson 02: remove training `point` at `step` (None = every occurrence) -> the divergence
    ‖θ'_t − θ_t‖ (`dt.counterfactual.divergence`) and the exact TSLOO on each test point."""

    def __init__(self, traj: Optional[Trajectory] = None, test=None, point: int = 0,
                 step: Optional[int] = None, renormalize: bool = False):
        if traj is None:
            p = Problem.moons()
            traj, test = p.fit(order_for(p, "shuffle", p.seed)), p.test
        if test is None:
            raise ValueError("pass the test data with the trajectory: RemovalModel(traj, test)")
        self.traj, self.test, self.renormalize, self._cache = traj, traj.check_data(test), renormalize, {}
        self.point, self.step = point, step

    @property
    def point(self) -> int:
        return self._point

    @point.setter
    def point(self, i: int) -> None:
        """Choosing another point resets `step` to None when the new point is not in that step."""
        i = as_int(i, "point")
        if not 0 <= i < self.traj.schedule.n:
            raise IndexError(f"point {i} is outside the training set 0..{self.traj.schedule.n - 1}")
        self._point = i
        if getattr(self, "step", None) not in [None] + self.steps():
            self.step = None

    def steps(self) -> list:
        """The steps whose batch holds the current point."""
        return self.traj.schedule.occurrences(self.point)

    @_threads
    def update(self) -> dict:
        """{"divergence": [T+1], "tsloo": [n_test]} for the current choice (cached)."""
        from ..influence.counterfactual import divergence
        from ..influence.loo import exact_loo
        self.renormalize = as_flag(self.renormalize, "renormalize")
        self.step = None if self.step is None else as_int(self.step, "step")
        key = (self.point, self.step, self.renormalize)
        if key not in self._cache:
            st = None if self.step is None else [self.step]
            self._cache[key] = dict(
                tsloo=exact_loo(self.traj, self.test, [self.point], st, renormalize=self.renormalize,
                                progress=False)[0],
                divergence=divergence(self.traj, self.point, self.step, renormalize=self.renormalize))
        return self._cache[key]

    def summary(self) -> str:
        r = self.update()
        where = "every occurrence" if self.step is None else f"step {self.step}"
        return (f"point {self.point} (steps {self.steps()}) removed at {where}: mean TSLOO "
                f"{float(r['tsloo'].mean()):+.3e}, final divergence {float(r['divergence'][-1]):.3e}")

    def figure(self):
        r = self.update()
        where = "every occurrence" if self.step is None else f"step {self.step}"
        return plots.removal_figure(r["divergence"], self.steps() if self.step is None else [self.step],
                                    r["tsloo"], f"point {self.point} removed at {where}")


class LearningRateModel:
    """Lesson 03: learning rate -> exact LOO (every occurrence, mean test loss) of `points` against
    SGD-influence (`dt.sgd_influence`), and the Spearman of every learning rate tried so far.
    points: default a random sample (drawn from `problem.seed`) of 40 training points (fast mode 20)."""

    def __init__(self, problem: Optional[Problem] = None, lr: Optional[float] = None,
                 points: Optional[Sequence[int]] = None, lr_range=(0.01, 5.0)):
        self.problem = problem or Problem.moons(n_train=sized(100, 60), n_test=sized(50, 30))
        self.lr_range, self.lr = lr_range, float(lr if lr is not None else self.problem.lr)
        self.schedule = order_for(self.problem, "shuffle", self.problem.seed)
        n = len(self.problem.train)
        self.points = list(points) if points is not None else sorted(
            np.random.default_rng(self.problem.seed).choice(n, min(n, sized(40, 20)), replace=False).tolist())
        self._cache: dict = {}

    @_threads
    def update(self) -> dict:
        """{"exact", "estimate": [len(points)], "spearman", "traj"} at the current lr (cached)."""
        from ..influence.loo import exact_loo
        from ..influence.metrics import fidelity
        from ..influence.unroll import sgd_influence
        lo, hi = self.lr_range
        if not lo <= self.lr <= hi:
            raise ValueError(f"lr {self.lr:g} is outside {lo:g}..{hi:g}, the range this problem trains in")
        key = round(self.lr, 10)
        if key not in self._cache:
            traj, test = self.problem.fit(self.schedule, self.lr), self.problem.test
            ex = _mean_test(exact_loo(traj, test, self.points, progress=False))
            est = _mean_test(sgd_influence(traj, test).total()[self.points])
            self._cache[key] = dict(exact=ex, estimate=est, spearman=float(fidelity(est, ex)["spearman"]), traj=traj)
        return self._cache[key]

    def summary(self) -> str:
        return (f"lr {self.lr:.3g}: spearman(SGD-influence, exact LOO) = {self.update()['spearman']:.3f} "
                f"over {len(self.points)} training points")

    def figure(self, rates: bool = True):
        """SGD-influence against the exact LOO at the current lr | the Spearman of every learning rate
        run so far (starred: the current one). rates=False: the left panel only (a figure that does
        not give away how the agreement changes with the learning rate)."""
        r, lrs = self.update(), sorted(self._cache)
        if not rates:
            with plots.style():
                fig, ax = plots.new_figure(1, figsize=(4.6, 3.3))
                plots.fidelity_scatter(ax[0, 0], r["estimate"], r["exact"], f"lr {self.lr:.3g}")
                ax[0, 0].set(xlabel=f"exact LOO at lr {self.lr:.3g}", ylabel=f"SGD-influence at lr {self.lr:.3g}")
            return fig
        return plots.lr_figure(r["estimate"], r["exact"], lrs, [self._cache[k]["spearman"] for k in lrs],
                               self.lr, r["spearman"])


class DigitModel:
    """Lesson 04: pick a test digit -> its `k` most helpful and most harmful training digits, each
    point's influence summed over its occurrences, by three methods side by side:

    * ``"DVE (Fisher)"`` (`scores`, [n_train, n_test]): the data value embedding with the empirical
      Fisher (paper §4.1), fitted once; a test digit is then a dot product;
    * ``"DVE (GGN)"``: the same recursion with the generalised Gauss-Newton matrix;
    * ``"exact LOO"``: the truth, every training point removed from every step where it was seen,
      one replay each (`dt.exact_loo`; about a second for 600 digits).

    ``compare=False`` keeps only the Fisher scores (no GGN fit, no replays). images: (train, test)
    images to draw, rows of 64 pixels (default: the inputs; the default problem passes its raw,
    unstandardised images). dve_kwargs go to both `DataValueEmbedding` fits (not ``hessian``)."""

    ESTIMATES = ("DVE (Fisher)", "DVE (GGN)")

    @_threads
    def __init__(self, traj: Optional[Trajectory] = None, test=None, test_index: int = 0, k: int = 5,
                 images: Optional[tuple] = None, compare: bool = True, **dve_kwargs):
        from ..influence.embedding import DataValueEmbedding
        from ..influence.loo import exact_loo
        if "hessian" in dve_kwargs:
            raise ValueError("DigitModel fits both the Fisher and the GGN embeddings: drop hessian=")
        if traj is None:
            p = Problem.digits()
            traj, test, images = p.fit(order_for(p, "shuffle", p.seed)), p.test, p.images
        if test is None:
            raise ValueError("pass the test data with the trajectory: DigitModel(traj, test)")
        self.traj, self.test, self.test_index, self.k = traj, traj.check_data(test), int(test_index), int(k)
        self.images = (traj.data.X, self.test.X) if images is None else images
        fit = lambda h: DataValueEmbedding(hessian=h, **dve_kwargs).fit(traj).influence(self.test).total()  # noqa: E731
        self.scores = fit("fisher")                                                 # [n_train, n_test]
        self.methods = {"DVE (Fisher)": self.scores}
        if compare:
            self.methods["DVE (GGN)"] = fit("ggn")
            self.methods["exact LOO"] = exact_loo(traj, self.test, list(range(len(traj.data))), progress=False)

    def _top(self, s: torch.Tensor) -> tuple[list, list]:
        order = torch.argsort(s, descending=True).tolist()
        return order[:self.k], order[::-1][:self.k]

    def update(self) -> dict:
        """{"scores": [n_train] (Fisher), "helpful", "harmful": its k training indices, strongest
        first, "top": {method: (helpful, harmful)} and, when compared, "confirmed": {estimate:
        (how many of its k helpful are in exact's k helpful, the same for harmful)} and
        "spearman": {estimate: Spearman with exact over all training points, this test digit}}."""
        from scipy.stats import spearmanr
        if not 0 <= self.test_index < len(self.test):
            raise IndexError(f"test_index {self.test_index} is outside 0..{len(self.test) - 1}")
        j = self.test_index
        top = {name: self._top(s[:, j]) for name, s in self.methods.items()}
        out = dict(scores=self.scores[:, j], helpful=top["DVE (Fisher)"][0], harmful=top["DVE (Fisher)"][1], top=top)
        if "exact LOO" in self.methods:
            (h, x), ex = top["exact LOO"], self.methods["exact LOO"][:, j]
            out["confirmed"] = {n: (len(set(top[n][0]) & set(h)), len(set(top[n][1]) & set(x))) for n in self.ESTIMATES}
            out["spearman"] = {n: float(spearmanr(self.methods[n][:, j], ex)[0]) for n in self.ESTIMATES}
        return out

    def agreement(self) -> dict:
        """Over every test digit: {estimate: {"helpful", "harmful": mean number of its top k that
        are in exact LOO's top k, "spearman": mean Spearman with exact, "fewest": the smallest such
        number, over test digits and both sides}} (needs compare=True)."""
        if "exact LOO" not in self.methods:
            raise ValueError("agreement() compares with exact LOO: build the model with compare=True")
        before = self.test_index
        out = {n: dict(helpful=0.0, harmful=0.0, spearman=0.0, fewest=self.k) for n in self.ESTIMATES}
        try:
            for self.test_index in range(len(self.test)):
                r = self.update()
                for n in self.ESTIMATES:
                    for key, v in zip(("helpful", "harmful", "spearman"), (*r["confirmed"][n], r["spearman"][n])):
                        out[n][key] += v / len(self.test)
                    out[n]["fewest"] = min(out[n]["fewest"], *r["confirmed"][n])
        finally:
            self.test_index = before
        return out

    def caption(self, i: int) -> str:
        steps = self.traj.schedule.occurrences(i)
        return f"#{i}: label {int(self.traj.data.y[i])}\nsteps {','.join(map(str, steps)) or '-'}"

    def summary(self) -> str:
        r, j = self.update(), self.test_index
        h, x = r["helpful"][0], r["harmful"][0]
        text = (f"test digit {j} (label {int(self.test.y[j])}): "
                f"Fisher's most helpful #{h} ({float(r['scores'][h]):+.2e}), "
                f"most harmful #{x} ({float(r['scores'][x]):+.2e})")
        if "confirmed" in r:
            text += "; of exact LOO's top " + f"{self.k} helpful / harmful: " + ", ".join(
                f"{n[5:-1]} has {a} / {b} (Spearman {r['spearman'][n]:.2f})" for n, (a, b) in r["confirmed"].items())
        return text

    def figure(self):
        r, j, k = self.update(), self.test_index, self.k
        names = [n for n in ("exact LOO", *self.ESTIMATES) if n in self.methods]
        idx, captions, colors, labels = [], [], [], []
        for side, colour in ((0, plots.COLORS[2]), (1, plots.COLORS[3])):
            truth = set(r["top"]["exact LOO"][side]) if "exact LOO" in r["top"] else None
            for n in names:
                row = r["top"][n][side]
                ok = [truth is None or n == "exact LOO" or i in truth for i in row]
                idx += row
                captions += [f"#{i} ({int(self.traj.data.y[i])})" + (" ✓" if o and n != "exact LOO" and truth else "")
                             + "\n" + ",".join(map(str, self.traj.schedule.occurrences(i))) for i, o in zip(row, ok)]
                colors += [colour if o else plots.COLORS[7] for o in ok]
                mark = "" if truth is None or n == "exact LOO" else f"\n{sum(ok)}/{k} ✓ by exact"
                labels.append(f"{('helpful', 'harmful')[side]}\n{n}{mark}")
        return plots.digit_figure(self.images[1][j], f"test #{j}, label {int(self.test.y[j])}",
                                  self.images[0][idx], captions, k, row_labels=labels, colors=colors,
                                  title="captions: #index (label), the steps where it was seen" if truth else None)
