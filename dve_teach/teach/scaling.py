"""Lesson 08: projection kind and dimension d -> how faithful the projected data value embedding
stays (Spearman against exact LOO) and what its fit costs (paper §4.2–4.3).

`ScalingModel` trains one small run once (default: 8x8 digits, a 64-16-10 tanh MLP), replays the
exact leave-one-out of every training point (every occurrence removed) and fits the unprojected
Fisher embedding as the reference. Then, for a projection ``kind`` (random: ``"gaussian"``,
``"orthogonal"``, ``"kronecker"``; fitted to the run: ``"pca"``, ``"kronecker_pca"``, see
`dve_teach.influence.pca`) and a dimension ``d`` it fits `DataValueEmbedding(proj_dim=d,
projection=kind)` and reports

    spearman = mean over test points of Spearman(Σ_occurrences DVE · R∇ℓ(θ_T, z_test), exact LOO)

(`dve_teach.influence.metrics.fidelity`), its share of the unprojected Spearman, the fit's seconds
(one run, after an untimed warm-up; shared cores make them noisy) and the numbers the d×d matrix
holds. Results are cached per (kind, d), so moving a slider back costs nothing. No ipywidgets here:
`dve_teach.teach.widgets.ScalingExplorer` is the thin view over it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ..data.config import sized
from . import plots
from .explorers import Problem, _threads, order_for

__all__ = ["ScalingModel", "ScalingResult", "KINDS"]

#: Projection kinds the model compares: three random, two fitted to the run.
KINDS = ("gaussian", "orthogonal", "kronecker", "pca", "kronecker_pca")
RANDOM = ("gaussian", "orthogonal", "kronecker")


@dataclass(frozen=True)
class ScalingResult:
    """One fit: ``kind`` and requested ``d``; ``dim`` the embedding's actual dimension (kronecker
    kinds round d down to products k_o·k_i); ``spearman`` against exact LOO, ``share`` of the
    unprojected Spearman; ``seconds`` of the fit; ``matrix_numbers`` held by the d×d recursion matrix
    (Σ d_l² per layer when layerwise); ``scores`` Tensor[n_train, n_test] (summed over occurrences)."""

    kind: str
    d: Optional[int]
    dim: int
    spearman: float
    share: float
    seconds: float
    matrix_numbers: int
    scores: torch.Tensor


class ScalingModel:
    """Projection kind × d -> fidelity and seconds, against exact LOO, cached (see the module doc).

    problem: default `Problem.digits` with 300 training digits (fast mode 200), 100 test (fast 50),
    hidden width 16 (P = 1210). dims: the d values the slider offers and `sweep` uses. The
    projection seed and pca sample draw derive from ``problem.seed``; ``pca_samples`` = min(256, n)."""

    def __init__(self, problem: Optional[Problem] = None, kind: str = "pca", d: int = 64,
                 dims: Sequence[int] = (16, 32, 64, 128), layerwise: bool = False):
        from ..influence.loo import exact_loo
        self.problem = problem or Problem.digits(n_train=sized(300, 200), n_test=sized(100, 50), hidden=16)
        self.traj = self.problem.fit(order_for(self.problem, "shuffle", self.problem.seed))
        self.test, self.n = self.problem.test, len(self.problem.train)
        self.dims, self.layerwise, self.seed = [int(k) for k in dims], bool(layerwise), int(self.problem.seed)
        self.pca_samples = min(256, self.n)
        self.kind, self.d = kind, int(d)
        self.exact_ = exact_loo(self.traj, self.test, list(range(self.n)), progress=False)   # [n, n_test]
        self._cache: dict = {}
        self._warm_up()
        self.reference_ = self.result(None, None)

    @_threads
    def _warm_up(self) -> None:
        from ..influence.embedding import DataValueEmbedding
        short = self.traj.prefix(min(2, self.traj.T))
        for kind in ("gaussian", "kronecker", "pca"):
            DataValueEmbedding(proj_dim=min(self.dims), projection=kind, pca_samples=self.pca_samples).fit(short)

    def _check(self, kind: Optional[str], d: Optional[int]) -> None:
        if kind is None:
            return
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= min(self.traj.flat.P, self.pca_samples):
            raise ValueError(f"d must be an int in 1..{min(self.traj.flat.P, self.pca_samples)} (at most the "
                             f"parameter count and the pca sample size), got {d!r}")

    @_threads
    def result(self, kind: Optional[str] = "current", d: Optional[int] = -1) -> ScalingResult:
        """The fit for (kind, d) — default the current ``self.kind``, ``self.d``; kind None = the
        unprojected reference — computed once and cached."""
        from ..influence.embedding import DataValueEmbedding
        from ..influence.metrics import fidelity
        kind = self.kind if kind == "current" else kind
        d = (self.d if d == -1 else d) if kind is not None else None
        self._check(kind, d)
        key = (kind, d)
        if key not in self._cache:
            kw = {} if kind is None else dict(proj_dim=d, projection=kind, seed=self.seed,
                                              pca_samples=self.pca_samples)
            start = time.perf_counter()
            dve = DataValueEmbedding(layerwise=self.layerwise, **kw).fit(self.traj)
            seconds = time.perf_counter() - start
            scores = dve.influence(self.test).total()
            rho = float(fidelity(scores, self.exact_)["spearman"])
            blocks = dve.projection_.blocks if self.layerwise else None
            numbers = sum((b.stop - b.start) ** 2 for b in blocks) if blocks else dve.embedding_dim_ ** 2
            ref = self._cache.get((None, None))
            share = rho / ref.spearman if ref is not None else 1.0
            self._cache[key] = ScalingResult(kind, d, dve.embedding_dim_, rho, share, seconds, numbers, scores)
        return self._cache[key]

    def sweep(self, kinds: Sequence[str] = KINDS, dims: Optional[Sequence[int]] = None) -> list[ScalingResult]:
        """`result` for every kind × d (default: every kind, ``self.dims``), kind-major order."""
        return [self.result(k, int(d)) for k in kinds for d in (self.dims if dims is None else dims)]

    def table(self) -> str:
        """The cached results as text rows: kind, d, Spearman, share of unprojected, seconds, MiB of
        the recursion's d×d matrix (in the run's dtype)."""
        size = self.traj.final.element_size()
        rows = [f"{'kind':<14}{'d':>6}{'spearman':>10}{'of unproj.':>12}{'seconds':>9}{'M MiB':>8}"]
        for (k, d), r in sorted(self._cache.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or 0)):
            rows.append(f"{k or 'none':<14}{r.dim:>6}{r.spearman:>10.3f}{r.share:>11.0%} {r.seconds:>9.3f}"
                        f"{r.matrix_numbers * size / 2 ** 20:>8.3f}")
        return "\n".join(rows)

    def summary(self) -> str:
        r, ref = self.result(), self.reference_
        return (f"{r.kind}, d = {r.dim} of P = {self.traj.flat.P}: Spearman {r.spearman:.3f} against exact LOO "
                f"({r.share:.0%} of the unprojected {ref.spearman:.3f}); fit {r.seconds:.3f} s "
                f"(unprojected {ref.seconds:.3f} s)")

    def figure(self):
        """Left: Spearman against d of every cached (kind, d), the unprojected level dashed, the
        current choice starred. Right: fit seconds against d, the same points. One legend, beside
        the right panel, so that it hides no point; the titles name the quantity, the readout and
        the star give the current choice."""
        cur, ref = self.result(), self.reference_
        with plots.style():
            fig, ax = plots.new_figure(2, figsize=(10, 3.2))
            fig.subplots_adjust(right=0.8)                      # room for the legend, beside the panels
            for c, kind in enumerate(KINDS):
                pts = sorted((r.dim, r.spearman, r.seconds) for (k, _), r in self._cache.items() if k == kind)
                if pts:
                    x, s, t = zip(*pts)
                    style = "o-" if kind in RANDOM else "s-"
                    ax[0, 0].plot(x, s, style, color=plots.COLORS[c], label=kind, ms=4)
                    ax[0, 1].plot(x, t, style, color=plots.COLORS[c], label=kind, ms=4)
            ax[0, 0].axhline(ref.spearman, ls="--", color="0.4", lw=1, label="unprojected")
            ax[0, 1].axhline(ref.seconds, ls="--", color="0.4", lw=1, label="unprojected")
            ax[0, 0].plot([cur.dim], [cur.spearman], "*", ms=13, color="0.15", ls="none", zorder=3,
                          label=f"current: {cur.kind}, d = {cur.dim}")
            ax[0, 1].plot([cur.dim], [cur.seconds], "*", ms=13, color="0.15", zorder=3)
            for a in ax[0]:
                a.set_xscale("log", base=2)
                a.set_xlabel("projected dimension d")
            ax[0, 0].set(ylabel="Spearman vs exact LOO", title="fidelity against d")
            ax[0, 1].set(ylabel="fit seconds (this machine)", title="cost of the fit")
            ax[0, 1].legend(*ax[0, 0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                            fontsize=7, title="○ random, □ fitted", title_fontsize=7)
        return fig
