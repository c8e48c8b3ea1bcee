"""Figures for the lessons and their widgets: pure functions that draw on an `Axes` or return a `Figure`.

Figures are built with `matplotlib.figure.Figure` directly (not pyplot), so nothing is registered
with pyplot: a notebook shows a figure only when a cell returns it, and widget callbacks cannot
pile figures up. Colours: seaborn's colour-blind-safe "colorblind" palette, with marker shapes as
a second encoding of class. Readable and small: ``figsize=(9, 3.5)``, ``dpi=110``; every panel has
axis labels, classes a legend, shaded probabilities a colourbar.
"""
from __future__ import annotations

import contextlib
import io
from typing import Optional, Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["COLORS", "MARKERS", "STYLE", "style", "new_figure", "to_png", "image_array", "pca_basis", "project",
           "decision_boundary", "divergence_curve", "fidelity_scatter", "digit_grid", "embedding_map",
           "per_step_influence", "totals_bars", "loss_curve", "spread_histogram", "order_figure",
           "removal_figure", "lr_figure", "digit_figure", "reorder_figure", "reorder_frame", "best_step_panel",
           "prediction_scatter", "prediction_figure", "probability_difference", "star_point", "legend_on_top"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
FIGSIZE, DPI = (9.0, 3.5), 110
#: seaborn's colour-blind-safe palette, ``sns.color_palette("colorblind").as_hex()`` (a test checks
#: it against seaborn); written out so that drawing needs no seaborn/pandas import (seconds per kernel).
COLORS = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494",
          "#ece133", "#56b4e9"]
#: seaborn's ``axes_style("whitegrid")`` (without its colormap), plus small fonts.
STYLE = {"figure.facecolor": "white", "axes.labelcolor": ".15", "xtick.direction": "out",
         "ytick.direction": "out", "xtick.color": ".15", "ytick.color": ".15", "axes.axisbelow": True,
         "grid.linestyle": "-", "text.color": ".15", "font.family": ["sans-serif"],
         "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
         "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True,
         "xtick.top": False, "ytick.right": False, "axes.grid": True, "axes.facecolor": "white",
         "axes.edgecolor": ".8", "grid.color": ".8", "axes.spines.left": True, "axes.spines.bottom": True,
         "axes.spines.right": True, "axes.spines.top": True, "xtick.bottom": False, "ytick.left": False,
         "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7,
         "xtick.labelsize": 7, "ytick.labelsize": 7}


@contextlib.contextmanager
def style():
    """The "whitegrid" look, small fonts and the colour-blind palette, for figures made in the block."""
    with matplotlib.rc_context({**STYLE, "axes.prop_cycle": matplotlib.cycler(color=COLORS)}):
        yield


def new_figure(ncols: int = 1, nrows: int = 1, figsize=FIGSIZE, dpi: int = DPI, **kw):
    """(Figure, axes array [nrows, ncols]) outside pyplot; call inside `style()`. Fixed margins
    (a constrained layout would double the drawing time of a widget redraw)."""
    fig = Figure(figsize=figsize, dpi=dpi)
    fig.subplots_adjust(left=0.075, right=0.985, bottom=0.15, top=0.88, wspace=0.32 + 0.05 * (ncols > 2),
                        hspace=0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def to_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes (at its own dpi)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def image_array(fig: Figure) -> np.ndarray:
    """The rendered RGBA pixels, uint8 [H, W, 4] (tests compare these to see a figure change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


# ---- projection of embeddings ---------------------------------------------------------------
def pca_basis(E, k: int = 2) -> np.ndarray:
    """Top-k right singular vectors of E [n, P] (uncentred, so a zero embedding — "no influence
    yet" — maps to the origin): [P, k]. Fit once on the baseline run and reuse it, so positions of
    different runs are comparable and arrows between them mean something."""
    E = _np(E)
    _, _, Vt = np.linalg.svd(E, full_matrices=False)
    V = Vt[:k].T
    if V.shape[1] < k:
        V = np.pad(V, ((0, 0), (0, k - V.shape[1])))
    signs = np.sign(V[np.abs(V).argmax(0), range(k)])  # a fixed sign per axis
    return V * np.where(signs == 0, 1.0, signs)


def project(E, basis: np.ndarray) -> np.ndarray:
    """E [n, P] in the basis [P, k]: [n, k]."""
    return _np(E) @ basis


def _legend(ax: Axes, x, y, avoid=(), **kw) -> None:
    """A legend in the corner of the axes holding the fewest of the points (x, y) and none of the
    `avoid` points [(x, y), ...] (a cheap stand-in for loc="best", slow with many points)."""
    if len(avoid):
        a = np.asarray(avoid, float).reshape(-1, 2)
        x = np.concatenate([np.asarray(x, float)] + [a[:, 0]] * 1000)
        y = np.concatenate([np.asarray(y, float)] + [a[:, 1]] * 1000)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    u = (np.asarray(x, float) - x0) / ((x1 - x0) or 1)
    v = (np.asarray(y, float) - y0) / ((y1 - y0) or 1)
    corners = {"upper right": (u > .55) & (v > .55), "upper left": (u < .45) & (v > .55),
               "lower left": (u < .45) & (v < .45), "lower right": (u > .55) & (v < .45)}
    ax.legend(loc=min(corners, key=lambda c: int(corners[c].sum())), **kw)


# ---- single panels --------------------------------------------------------------------------
def _class_scatter(ax: Axes, X: np.ndarray, y: np.ndarray, s: float = 12, alpha: float = 0.8) -> None:
    for c in np.unique(y):
        m = y == c
        ax.scatter(X[m, 0], X[m, 1], s=s, c=[COLORS[int(c) % 10]], marker=MARKERS[int(c) % 10],
                   alpha=alpha, linewidths=0.3, edgecolors="white", label=f"class {int(c)}")


def decision_boundary(ax: Axes, source, data=None, *, step: Optional[int] = None,
                      theta: Optional[torch.Tensor] = None, grid: int = 100,
                      highlight: Sequence[int] = (), left_out: Sequence[int] = (),
                      title: Optional[str] = None, colorbar: bool = True, legend: bool = True) -> Axes:
    """Shade P(class 1) (two classes) or the predicted class over the plane of 2-D inputs.

    source: a `Trajectory` (drawn at θ_step, θ_T by default, or at the flat `theta` [P]) or a
    callable ``X [m, 2] -> logits [m, k]``. data: the points to scatter (`Data`; default the
    trajectory's training data). highlight: indices circled in black; left_out: crossed out.
    colorbar: a colourbar for the shaded P(class 1) (two classes); legend: the classes' legend,
    in the corner holding the fewest points.
    """
    if data is None:
        data = source.data
    X, y = _np(data.X), _np(data.y).astype(int)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2-D inputs, got X of shape {X.shape}")
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    G = torch.as_tensor(np.c_[gx.ravel(), gy.ravel()], dtype=torch.float64)
    with torch.no_grad():
        if callable(source) and not hasattr(source, "flat"):
            out = source(G)
        else:
            G = G.to(source.device, source.dtype)
            th = theta if theta is not None else source.params(source.T if step is None else step)
            out = source.flat.forward(th.to(source.device, source.dtype), G)
    out = _np(out)
    if out.shape[1] == 2:
        z = np.exp(out - out.max(1, keepdims=True))
        z = (z[:, 1] / z.sum(1)).reshape(gx.shape)
        shade = ax.contourf(gx, gy, z, levels=np.linspace(0, 1, 11), cmap="cividis", alpha=0.35)
        ax.contour(gx, gy, z, levels=[0.5], colors="k", linewidths=1.0)
        if colorbar:
            bar = ax.figure.colorbar(shade, ax=ax, fraction=0.05, pad=0.02, ticks=[0, 0.5, 1])
            bar.ax.set_title("P(class 1)", fontsize=7, loc="left")
            bar.ax.tick_params(labelsize=6)
    else:
        ax.contourf(gx, gy, out.argmax(1).reshape(gx.shape), alpha=0.25, cmap="cividis")
    _class_scatter(ax, X, y)
    hl = [int(i) for i in highlight]
    if hl:
        ax.scatter(X[hl, 0], X[hl, 1], s=90, facecolors="none", edgecolors="k", linewidths=1.5)
    lo_idx = [int(i) for i in left_out]
    if lo_idx:
        ax.scatter(X[lo_idx, 0], X[lo_idx, 1], s=60, marker="x", c="k", linewidths=1.5, label="left out")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("input $x_1$")
    ax.set_ylabel("input $x_2$")
    if legend:
        _legend(ax, X[:, 0], X[:, 1], fontsize=6, markerscale=0.8, framealpha=0.8)
    if title:
        ax.set_title(title)
    return ax


def _probability_grid(source, X: np.ndarray, grid: int = 100):
    """(gx, gy, P(class 1) on the grid) over the box of the 2-D inputs X (margin 0.5), for a
    two-class `Trajectory` at θ_T."""
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    G = torch.as_tensor(np.c_[gx.ravel(), gy.ravel()], dtype=source.dtype, device=source.device)
    with torch.no_grad():
        out = _np(source.flat.forward(source.params(source.T), G))
    if out.shape[1] != 2:
        raise ValueError(f"a probability difference needs a two-class model, got {out.shape[1]} outputs")
    z = np.exp(out - out.max(1, keepdims=True))
    return gx, gy, (z[:, 1] / z.sum(1)).reshape(gx.shape)


def probability_difference(ax: Axes, a, b, data, title: Optional[str] = None) -> Axes:
    """Where two runs (`Trajectory`, two classes, 2-D inputs) differ: P_b(class 1) − P_a(class 1)
    shaded with a diverging map (0 = white, symmetric range), their 0.5 boundaries (a solid, b
    dashed) and the points of `data` in grey. Shows differences in confidence that two nearly equal
    boundaries hide."""
    X = _np(data.X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"probability_difference needs 2-D inputs, got X of shape {X.shape}")
    gx, gy, pa = _probability_grid(a, X)
    _, _, pb = _probability_grid(b, X)
    d = pb - pa
    top = max(float(np.abs(d).max()), 1e-6)
    shade = ax.contourf(gx, gy, d, levels=np.linspace(-top, top, 11), cmap="PuOr_r")
    ax.contour(gx, gy, pa, levels=[0.5], colors="k", linewidths=1.0)
    ax.contour(gx, gy, pb, levels=[0.5], colors="k", linewidths=1.0, linestyles="--")
    ax.scatter(X[:, 0], X[:, 1], s=5, c="0.35", linewidths=0)
    bar = ax.figure.colorbar(shade, ax=ax, fraction=0.05, pad=0.02, ticks=[-top, 0, top], format="%+.2f")
    bar.ax.tick_params(labelsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("input $x_1$")
    ax.set_ylabel("input $x_2$")
    if title:
        ax.set_title(title)
    return ax


@matplotlib.ticker.FuncFormatter
def _plain_log_labels(v, _pos=None) -> str:
    """Log-axis tick labels as plain numbers at 1, 2 and 5 times a power of ten, none elsewhere."""
    if v <= 0:
        return ""
    lead = v / 10 ** np.floor(np.log10(v) + 1e-9)
    return f"{v:.3g}" if min(abs(lead - k) for k in (1, 2, 5)) < 1e-6 else ""


def divergence_curve(ax: Axes, divergence, removal_steps: Sequence[int] = (), label: Optional[str] = None,
                     color=None, log: bool = True) -> Axes:
    """‖θ'_t − θ_t‖ against t = 0..T (Tensor[T+1]); dashed lines at the removal steps.
    Log scale: the zeros before the removal are left out of the line."""
    d = _np(divergence)
    t = np.arange(len(d))
    color = color if color is not None else COLORS[0]
    m = d > 0 if log else np.ones_like(d, bool)
    ax.plot(t[m], d[m], marker=".", ms=4, lw=1.2, color=color, label=label)
    for s in removal_steps:
        ax.axvline(s, color="0.4", ls="--", lw=0.8)
    if log and m.any():
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_plain_log_labels)   # plain numbers (0.2, 0.05), not "2×10⁻¹"
        ax.yaxis.set_minor_formatter(_plain_log_labels)
    ax.set_xlim(0, max(len(d) - 1, 1))
    ax.set_xlabel("step t")
    ax.set_ylabel("‖θ′_t − θ_t‖")
    if label:
        ax.legend(loc="lower right")
    return ax


def fidelity_scatter(ax: Axes, estimate, exact, label: str = "estimate") -> Axes:
    """Estimate against exact LOO (any equal shapes, flattened), the line y = x, and the
    Spearman / sign agreement of `dt.metrics.fidelity` in the title."""
    from ..influence.metrics import fidelity
    e, x = _np(estimate).ravel(), _np(exact).ravel()
    if e.shape != x.shape:
        raise ValueError(f"estimate has {e.size} values but exact {x.size}: pass matching arrays")
    ax.scatter(x, e, s=12, alpha=0.7, color=COLORS[0], linewidths=0)
    lim = [min(x.min(), e.min()), max(x.max(), e.max())]
    ax.plot(lim, lim, color="0.5", lw=0.8, ls="--", label="y = x")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.axvline(0, color="0.7", lw=0.5)
    f = {k: float(v) for k, v in fidelity(torch.as_tensor(e), torch.as_tensor(x)).items()}
    ax.set_title(f"{label}: spearman {f['spearman']:.2f}, sign agr. {f['sign_agreement']:.2f}")
    ax.set_xlabel("exact LOO")
    ax.set_ylabel(label)
    return ax


def star_point(ax: Axes, x: float, y: float, label: str) -> Axes:
    """Mark one (x, y) of a scatter with a large star and name it in a legend (e.g. the point a
    lesson follows, among every training point of a `fidelity_scatter`)."""
    ax.scatter([float(x)], [float(y)], s=160, marker="*", c=[COLORS[3]], edgecolors="k", zorder=5, label=label)
    ax.legend(loc="upper left")
    return ax


def legend_on_top(ax: Axes, ncol: int = 2, room: float = 0.4) -> Axes:
    """Move the axes' legend into an empty band at the top: the y-range grows by `room` (a fraction
    of the data range, above the larger of the data and 0) so that the legend covers no data."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + room * (hi - lo))
    ax.legend(loc="upper center", ncol=ncol, framealpha=0.9)
    return ax


def digit_grid(ax: Axes, images, captions: Sequence[str], ncols: int, shape=(8, 8),
               colors: Optional[Sequence] = None, pad: int = 2, row_labels: Optional[Sequence[str]] = None) -> Axes:
    """Images (rows of `images` reshaped to `shape`) tiled row by row, `ncols` per row, in ONE axes
    (fast to draw), each with its caption below, an optional frame colour and an optional label
    left of each row."""
    imgs = _np(images).reshape(-1, *shape)
    h, w = shape
    nrows = -(-len(imgs) // ncols)
    H, Wd = h + pad + 7, w + pad  # room for a two-line caption below each tile
    canvas = np.full((nrows * H, ncols * Wd), np.nan)
    for k, im in enumerate(imgs):
        r, c = divmod(k, ncols)
        canvas[r * H:r * H + h, c * Wd:c * Wd + w] = (im - im.min()) / ((im.max() - im.min()) or 1)
    ax.imshow(canvas, cmap="gray_r", interpolation="nearest", vmin=0, vmax=1)
    from matplotlib.patches import Rectangle
    for k in range(len(imgs)):
        r, c = divmod(k, ncols)
        ax.text(c * Wd + w / 2 - 0.5, r * H + h + 0.2, captions[k], ha="center", va="top", fontsize=7.5)
        if colors is not None:
            ax.add_patch(Rectangle((c * Wd - 0.9, r * H - 0.9), w + 0.8, h + 0.8, fill=False,
                                   edgecolor=colors[k], lw=2.5))
    for r, label in enumerate(row_labels or ()):
        ax.text(-2.5, r * H + h / 2, label, ha="right", va="center", fontsize=7.5)
    ax.set_xlim(-1.5, ncols * Wd - pad + 0.5)
    ax.set_ylim(nrows * H - pad, -1.5)
    ax.set_axis_off()
    return ax


def embedding_map(ax: Axes, xy, labels=None, *, point: Optional[int] = None, old_xy=None,
                  left_out: Sequence[int] = (), seen=None, title: Optional[str] = None) -> Axes:
    """Per-point embeddings in 2-D (rows of xy [n, 2], e.g. `project(E, pca_basis(E0))`).

    labels: class per point (colour + marker); point: the chosen one (a star); old_xy: positions
    in the previous run — an arrow goes from the chosen point's old position to its new one;
    left_out: crossed out; seen: bool [n], points not yet visited are drawn faintly.
    """
    xy = _np(xy)
    lab = np.zeros(len(xy), int) if labels is None else _np(labels).astype(int)
    alive = np.ones(len(xy), bool) if seen is None else np.asarray(seen, bool)
    if (~alive).any():
        ax.scatter(xy[~alive, 0], xy[~alive, 1], s=8, c="0.8", marker=".", label="not seen yet")
    _class_scatter(ax, xy[alive], lab[alive], s=10, alpha=0.6)
    lo_idx = [int(i) for i in left_out]
    if lo_idx:
        ax.scatter(xy[lo_idx, 0], xy[lo_idx, 1], s=50, marker="x", c="k", label="left out")
    if point is not None:
        p = xy[int(point)]
        if old_xy is not None:
            q = _np(old_xy)[int(point)]
            ax.scatter([q[0]], [q[1]], s=110, marker="*", facecolors="none", edgecolors="k", lw=0.8,
                       label="before")
            if np.linalg.norm(p - q) > 0:
                ax.annotate("", xy=p, xytext=q, zorder=6,
                            arrowprops=dict(arrowstyle="-|>", color="k", lw=2.0, mutation_scale=14,
                                            shrinkA=4, shrinkB=6))
        ax.scatter([p[0]], [p[1]], s=220, marker="*", c=[COLORS[3]], edgecolors="k", lw=1.0,
                   zorder=7, label=f"point {int(point)}")
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set_xlabel("PC 1 of the embeddings")
    ax.set_ylabel("PC 2")
    avoid = [xy[int(point)]] + ([_np(old_xy)[int(point)]] if old_xy is not None else []) if point is not None else []
    _legend(ax, xy[:, 0], xy[:, 1], avoid, fontsize=6, markerscale=0.7, framealpha=0.7)
    if title:
        ax.set_title(title)
    return ax


def per_step_influence(ax: Axes, steps: Sequence[int], estimate, exact=None, T: Optional[int] = None,
                       old_steps: Sequence[int] = (), old_estimate=None, label: str = "DVE") -> Axes:
    """One point's influence at each step where it was used, as stems: the estimate (circles)
    beside the exact one-step TSLOO (diamonds), and the previous run's estimate (hollow, grey)."""
    st = np.asarray(list(steps), float)
    off = 0.012 * (T or (st.max() + 1 if len(st) else 1))

    def stems(x, v, color, marker, lab, hollow=False):
        v = _np(v)
        ax.vlines(x, 0, v, color=color, lw=1.5, ls="--" if hollow else "-")
        ax.scatter(x, v, s=36, marker=marker, label=lab, zorder=3, color=color,
                   facecolors="white" if hollow else color)

    if len(old_steps) and old_estimate is not None:
        stems(np.asarray(list(old_steps), float), old_estimate, "0.55", "o", f"{label}, previous order", True)
    stems(st - (off if exact is not None else 0), estimate, COLORS[0], "o", label)
    if exact is not None:
        stems(st + off, exact, COLORS[1], "D", "exact (that step only)")
    ax.axhline(0, color="0.5", lw=0.6)
    if T is not None:
        ax.set_xlim(-1, T + 0.5)
    ax.set_xlabel("step t (where the point was used)")
    ax.set_ylabel("Δ mean test loss if removed")
    xs = [st, np.asarray(list(old_steps), float)] + ([st] if exact is not None else [])
    vs = [_np(estimate), _np(old_estimate) if old_estimate is not None and len(old_steps) else np.zeros(0)]
    vs += [_np(exact)] if exact is not None else []
    _legend(ax, np.concatenate([x[:len(v)] for x, v in zip(xs, vs)]), np.concatenate(vs))
    return ax


def totals_bars(ax: Axes, values: dict, groups: Sequence[str] = ("previous", "now")) -> Axes:
    """Bars of several methods (colour, name under the bar) for each group (name below):
    values = {method: [value per group]}; None = not available (no bar)."""
    names = [n for n in values if any(v is not None for v in values[n])]
    for g, group in enumerate(groups):
        x0 = g * (len(names) + 1)
        for k, name in enumerate(names):
            v = values[name][g]
            if v is not None:
                ax.bar(x0 + k, float(v), width=0.9, color=COLORS[k % 10])
        ax.text(x0 + (len(names) - 1) / 2, -0.16, group, transform=ax.get_xaxis_transform(), ha="center",
                fontsize=8, fontweight="bold")
    ax.set_xticks([g * (len(names) + 1) + k for g in range(len(groups)) for k in range(len(names))],
                  names * len(groups), fontsize=7)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("Δ mean test loss if removed")
    return ax


def loss_curve(ax: Axes, losses, step: Optional[int] = None) -> Axes:
    """Batch loss per step with a marker at `step` (the Play position)."""
    v = _np(losses)
    ax.plot(np.arange(len(v)), v, color=COLORS[0], lw=1.2)
    if step is not None:
        ax.axvline(step, color=COLORS[3], lw=1.5)
    ax.set_xlabel("step t")
    ax.set_ylabel("batch loss")
    return ax


def spread_histogram(ax: Axes, values, current: Optional[float] = None, label: str = "this order") -> Axes:
    """Histogram of one number per order (e.g. final test loss) with the current order marked."""
    v = _np(values).ravel()
    ax.hist(v, bins=min(20, max(5, len(v) // 3)), color=COLORS[0], alpha=0.7)
    if current is not None:
        ax.axvline(current, color=COLORS[3], lw=2, label=label)
        ax.legend(loc="upper right")
    ax.set_xlabel("final mean test loss")
    ax.set_ylabel("orders")
    return ax



# ---- the widgets' figures (each widget model's `figure()` calls one of these) --------------------------
def order_figure(traj, data, spread, test_loss: float, title: str) -> Figure:
    """Lesson 01: decision boundary of one order | its test loss among many shuffles."""
    with style():
        fig, ax = new_figure(2)
        decision_boundary(ax[0, 0], traj, data, title=title)
        spread_histogram(ax[0, 1], spread, test_loss)
        ax[0, 1].set_title(f"test loss {test_loss:.3f} vs {len(spread)} shuffles")
    return fig


def removal_figure(divergence, removal_steps: Sequence[int], tsloo, title: str) -> Figure:
    """Lesson 02: ‖θ'_t − θ_t‖ over the run | the exact TSLOO on each test point (sorted)."""
    v = np.sort(_np(tsloo))
    with style():
        fig, ax = new_figure(2)
        divergence_curve(ax[0, 0], divergence, removal_steps)
        ax[0, 0].set_title(title)
        ax[0, 1].bar(np.arange(len(v)), v, color=[COLORS[0] if x >= 0 else COLORS[3] for x in v])
        ax[0, 1].set(xlabel="test points (sorted)", ylabel="TSLOO = Δ test loss",
                     title=f"mean TSLOO {v.mean():+.2e} (> 0: the point helped)")
    return fig


def lr_figure(estimate, exact, lrs: Sequence[float], spearmans: Sequence[float], lr: float,
              spearman: float) -> Figure:
    """Lesson 03: SGD-influence against exact LOO | Spearman of every learning rate tried."""
    with style():
        fig, ax = new_figure(2)
        fidelity_scatter(ax[0, 0], estimate, exact, "SGD-influence")
        ax[0, 0].set(xlabel=f"exact LOO at lr {lr:.3g}", ylabel=f"SGD-influence at lr {lr:.3g}")
        ax[0, 1].semilogx(lrs, spearmans, "o-", color=COLORS[0], label="each learning rate run")
        ax[0, 1].plot([lr], [spearman], "*", ms=14, color=COLORS[3], label=f"lr {lr:.3g} (left panel)")
        ax[0, 1].set(xlabel="learning rate", ylabel="spearman(estimate, exact)",
                     title="rank agreement with the exact LOO, per learning rate")
        ax[0, 1].legend(loc="lower left")
    return fig


def digit_figure(test_image, test_caption: str, images, captions: Sequence[str], k: int,
                 shape=(8, 8), row_labels: Optional[Sequence[str]] = None,
                 colors: Optional[Sequence] = None, title: Optional[str] = None) -> Figure:
    """Lesson 04: the test digit | training digits, `k` per row, each captioned (e.g. label and the
    steps where it was seen). Default: 2 rows, the k most helpful (top, green frames) and the k
    most harmful (bottom, vermilion). `row_labels` name the rows (e.g. the method that chose them) and
    `colors` give one frame colour per image; the figure grows with the number of rows."""
    nrows = -(-len(_np(images).reshape(-1, *shape)) // k)
    if colors is None:
        colors = [COLORS[2]] * k + [COLORS[3]] * k
    with style():
        if not row_labels:  # the two-row layout
            fig = Figure(figsize=FIGSIZE, dpi=DPI)
            ax0 = fig.add_axes((0.01, 0.12, 0.17, 0.72))
            ax = fig.add_axes((0.21, 0.02, 0.78, 0.86))
            digit_grid(ax, images, captions, k, shape, colors=colors)
        else:  # one labelled row per method and side, wide gaps for the captions
            height = 0.95 * nrows + 0.5
            fig = Figure(figsize=(2.4 + 0.75 * k, height), dpi=DPI)
            ax0 = fig.add_axes((0.01, 0.5 - 0.9 / height, 1.3 / fig.get_figwidth(), 1.8 / height))
            left = 2.45 / fig.get_figwidth()
            ax = fig.add_axes((left, 0.01, 0.99 - left, 1 - 0.55 / height))
            digit_grid(ax, images, captions, k, shape, colors=colors, pad=4, row_labels=row_labels)
            ax.set_anchor("W")
        digit_grid(ax0, _np(test_image)[None], [test_caption], 1, shape)
        ax.set_title(title or "most helpful (green frames) and most harmful (vermilion frames) training digits")
        if row_labels:
            fig.suptitle("most helpful (green) and most harmful (vermilion) training digits; grey: not in exact LOO's top "
                         f"{k}", fontsize=9, x=0.01, ha="left", y=1 - 0.08 / height, va="top")
    return fig


def reorder_figure(r, q=None, labels=None, stale: bool = False) -> Figure:
    """Lesson 05: the chosen point's embedding (arrow from the previous run `q`) | its influence
    per step | exact vs DVE vs SGD-influence for removing it everywhere (previous and now).
    r, q: `widgets.ReorderResult`s."""
    same = q is not None and q.point == r.point
    runs = (q, r) if same else (r,)
    with style():
        fig, ax = new_figure(3)
        embedding_map(ax[0, 0], r.xy, labels, point=r.point, old_xy=None if q is None else q.xy,
                      left_out=sorted(r.left_out), title="data value embeddings (PCA)")
        per_step_influence(ax[0, 1], r.steps, r.per_step_estimate, r.per_step_exact, len(r.schedule),
                           q.steps if same else (), q.per_step_estimate if same else None)
        ax[0, 1].set_title(f"point {r.point}: influence per step")
        # DVE first, so that DVE is blue and exact orange as in the middle panel (and lesson 00)
        totals_bars(ax[0, 2], {"DVE": [x.estimate for x in runs], "exact": [x.exact for x in runs],
                               "SGD-infl.": [x.sgd_influence for x in runs]},
                    ("previous", "now") if same else ("now",))
        ax[0, 2].set_title("removed at every step")
        if stale:
            fig.suptitle("order changed: press Retrain", color=COLORS[3], fontsize=9)
    return fig


def reorder_frame(xy, labels, point: int, left_out: Sequence[int], seen, batch_losses, s: int,
                  limits=None) -> Figure:
    """Lesson 05's Play frame: embeddings relative to the checkpoint at step s | the loss curve.
    limits: ((x0, x1), (y0, y1)) shared by every frame, so the frames are on one scale."""
    with style():
        fig, ax = new_figure(2, figsize=(9, 3))
        if limits is not None:
            ax[0, 0].set_xlim(*limits[0])
            ax[0, 0].set_ylim(*limits[1])
            ax[0, 0].set_autoscale_on(False)
        embedding_map(ax[0, 0], xy, labels, point=point, left_out=left_out, seen=seen,
                      title=f"embeddings relative to the checkpoint at step {s}")
        loss_curve(ax[0, 1], batch_losses, s)
    return fig


# ---- lesson 05: predictions before retraining (`teach.order_prediction`) ----------------------------
#: edit sizes of the prediction scatter: (largest number of changed (point, step) pairs, label)
EDIT_SIZES = ((4, "one move (≤ 4 pairs)"), (32, "5–32 pairs"), (float("inf"), "> 32 pairs (e.g. reverse)"))


def best_step_panel(ax: Axes, own, slider=None, at: Optional[int] = None, current: Optional[float] = None,
                    point: Optional[int] = None, every: bool = False) -> Axes:
    """The predicted Δ mean test loss if the point is moved to step t (`own` [T], NaN = impossible): the
    point alone (line), the slider's move with its swapped partners (`slider` [T], hollow dots), the
    current step `at` (dashed) and the current prediction `current` (star)."""
    own = _np(own)
    t = np.arange(len(own))
    ax.axhline(0, color="0.5", lw=0.6)
    ax.plot(t, own, "o-", ms=3, lw=1.2, color=COLORS[0], label="the point alone (removal + insertion terms)")
    if slider is not None:
        ax.scatter(t, _np(slider), s=16, facecolors="white", edgecolors=COLORS[1], lw=1.0, zorder=3,
                   label="the slider's move (with the points it swaps with)")
    if at is not None:
        ax.axvline(at, color="0.4", ls="--", lw=0.8)
        if current is not None:
            ax.scatter([at], [current], s=90, marker="*", color=COLORS[3], edgecolors="k", lw=0.6, zorder=4,
                       label="the current order")
    ax.set_xlim(-0.5, len(own) - 0.5)
    ax.set_xlabel(f"step t its {'earliest occurrence' if every else 'selected occurrence'} is moved to")
    ax.set_ylabel("predicted Δ mean test loss")
    ok = np.isfinite(own)
    name = f"point {point}" if point is not None else "the point"
    best = f" (lowest: step {int(t[ok][own[ok].argmin()])})" if ok.any() else ""
    ax.set_title(f"{name}: predicted change if moved to step t{best}")
    ys = [v for v in (own, _np(slider) if slider is not None else np.zeros(0)) if len(v)]
    y = np.concatenate(ys)
    _legend(ax, np.concatenate([t] * len(ys)), np.where(np.isfinite(y), y, 0.0), fontsize=6, framealpha=0.8)
    return ax


def prediction_scatter(ax: Axes, predicted, exact, changes=None) -> Axes:
    """Predicted against exact Δ mean test loss (one dot per edit), the line y = x, and the edits'
    sizes (`changes`: (point, step) pairs changed) as colours (`EDIT_SIZES`)."""
    pr, ex = _np(predicted).ravel(), _np(exact).ravel()
    ax.axhline(0, color="0.7", lw=0.5)
    ax.axvline(0, color="0.7", lw=0.5)
    if len(pr):
        lim = [min(pr.min(), ex.min()), max(pr.max(), ex.max())]
        ax.plot(lim, lim, color="0.5", lw=0.8, ls="--", label="y = x")
        size = np.zeros(len(pr)) if changes is None else np.asarray(changes, float)
        lo = 0
        for k, (hi, label) in enumerate(EDIT_SIZES):
            m = (size > lo) & (size <= hi) if changes is not None else np.arange(len(pr)) >= 0
            if m.any():
                ax.scatter(ex[m], pr[m], s=18, color=COLORS[k], alpha=0.8, linewidths=0,
                           label=label if changes is not None else "edits", zorder=3)
            if changes is None:
                break
            lo = hi
        _legend(ax, ex, pr, fontsize=6, framealpha=0.8)
    else:
        ax.text(0.5, 0.5, "edit the order, then Retrain:\neach Retrain adds a dot", ha="center", va="center",
                transform=ax.transAxes, fontsize=8, color="0.4")
    ax.set_xlabel("exact Δ mean test loss (retrained)")
    ax.set_ylabel("predicted (first order)")
    ax.set_title(f"predicted vs exact, {len(pr)} edit{'s' * (len(pr) != 1)}")
    return ax


def prediction_figure(own, slider, at: int, current: Optional[float], history: Sequence, point: int,
                      every: bool = False) -> Figure:
    """Lesson 05, under the order slider: the "best step" curve (`best_step_panel`) | every Retrain so far,
    predicted vs exact (`prediction_scatter`; history: `PredictionCheck`s)."""
    with style():
        fig, ax = new_figure(2, figsize=PREDICTION_FIGSIZE, gridspec_kw={"width_ratios": [1.7, 1]})
        fig.subplots_adjust(bottom=0.2, top=0.87, left=0.08, wspace=0.25)
        best_step_panel(ax[0, 0], own, slider, at, current, point, every)
        prediction_scatter(ax[0, 1], [h.predicted for h in history], [h.exact for h in history],
                           [h.changes for h in history])
    return fig


PREDICTION_FIGSIZE = (9.0, 2.6)
