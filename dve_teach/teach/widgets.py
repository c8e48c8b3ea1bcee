"""Teaching widgets of lessons 01-07: thin ipywidgets 8 views that only wire controls to a plain
model class (a model + view split, as in the jupyter-widgets tutorial). The problems and models live in `dve_teach.teach.explorers` (lessons
01-04), `dve_teach.teach.reorder` (lesson 05), `dve_teach.teach.phases` (lesson 06) and
`dve_teach.teach.selection` (lesson 07), which need no ipywidgets; their names are re-exported here (``from dve_teach.teach.widgets import ReorderModel`` works).

Without a kernel every model and view works from plain Python: set a control's ``.value``,
``.click()`` a button, or call the model (``ReorderExplorer().set_order(...)``, ``.retrain()``,
``.result``, ``.figure()``). Figures come from `dve_teach.teach.plots` (the same ``figure()`` makes the
static key figure above each widget). A view replaces its Output's content in one step (the
effect of ``clear_output(wait=True)`` + display, no flicker) with the PNG of a non-pyplot figure
that is then closed; a callback that fails writes its error to the view's log pane.
"""
from __future__ import annotations

import asyncio
import base64
import html
from typing import Callable, Optional, Sequence

import ipywidgets as W
import numpy as np

from . import plots
from .explorers import (PRESETS, DigitModel, LearningRateModel, OrderModel, Problem, RemovalModel,
                        order_for)
from .optimizers import DEFAULT_LR as _DEFAULT_LR, OPTIMIZERS as _OPTIMIZERS, OptimizerModel
from .phases import SCHEDULES, PhaseModel
from .reorder import ReorderModel, ReorderResult
from .scaling import KINDS as _SCALING_KINDS, ScalingModel
from .selection import SelectionModel
from .tour import PointModel
from ..training.trajectory import Trajectory

__all__ = ["Problem", "PRESETS", "order_for", "OrderModel", "RemovalModel", "LearningRateModel", "DigitModel",
           "ReorderModel", "ReorderResult", "PointModel", "PhaseModel", "SelectionModel", "PointExplorer",
           "OrderExplorer", "RemovalExplorer", "LearningRateExplorer", "DigitExplorer", "ReorderExplorer",
           "PhaseExplorer", "SelectionExplorer",
           "ScalingModel", "ScalingExplorer", "OptimizerModel", "OptimizerExplorer"]


# ---- views: thin ipywidgets 8 wiring ---------------------------------------------------------------
_WIDE = {"style": {"description_width": "initial"}}
#: what a readout shows while its model computes
COMPUTING = "<i>⏳ computing: a new setting trains and replays (a setting seen before comes from the cache)…</i>"


class _View(W.VBox):
    """Control rows, a text readout, the figure Output (at least `height` high, growing to its
    figure) and a collapsible log pane. Each control in
    `controls` (name -> widget) sets ``model.<name>`` and redraws; callbacks run through `_call`
    (the `busy` controls are disabled meanwhile, errors go to the log pane, never lost)."""

    def __init__(self, model, controls: dict, rows: Optional[list] = None, extra: Sequence = (),
                 height: str = "290px"):
        self.model, self.controls, self._syncing, self.last_figure = model, controls, False, None
        self.readout = W.HTML(layout=W.Layout(min_height="1.6em"))
        # min_height, never height: the Output grows to its figure (a fixed height clipped figures
        # taller than it, or let the controls below cover them); the minimum keeps the layout from
        # jumping while a figure is replaced
        self.out = W.Output(layout=W.Layout(min_height=height))
        self.log_out = W.Output(layout=W.Layout(max_height="8em", overflow="auto"))
        self.log_pane = W.Accordion(children=[self.log_out], titles=("log",))
        self.busy = list(controls.values())
        for name, w in controls.items():
            w.observe(lambda ch, name=name: self._syncing or self._call(self._set, name, ch["new"]), names="value")
        super().__init__((rows or [W.HBox(list(controls.values()))]) + [self.readout, self.out, *extra, self.log_pane])

    def __repr__(self) -> str:
        """What a notebook shows where the live widget is not (before the cell runs, after a reload,
        on GitHub): a sentence, not the widget tree."""
        return (f"{type(self).__name__}: an interactive explorer. Run this cell (with a running kernel) to "
                "open it; its controls redraw the figure below them.")

    def _set(self, name: str, value) -> None:
        setattr(self.model, name, value)
        self.refresh()

    def _call(self, fn: Callable, *args) -> bool:
        states = [(w, w.disabled) for w in self.busy]
        for w, _ in states:
            w.disabled = True
        try:
            fn(*args)
            return True
        except Exception as e:  # shown in the log pane (JupyterLab shows callback errors nowhere)
            self.log_out.append_stderr(f"{type(e).__name__}: {e}\n")
            self.log_pane.selected_index = 0
            self.readout.value = f"<span style='color:#D55E00'>⚠ {html.escape(str(e))}</span>"
            return False
        finally:
            for w, d in states:
                w.disabled = d
            self._enable()

    def _enable(self) -> None:
        """Disable the controls that do not apply in the current state (after every callback)."""

    def _show(self, fig, out: Optional[W.Output] = None) -> None:
        """Replace the Output's content by the figure's PNG in one step, then close the figure."""
        import matplotlib.pyplot as plt
        png = base64.b64encode(plots.to_png(fig)).decode("ascii")
        (out or self.out).outputs = ({"output_type": "display_data", "metadata": {},
                                      "data": {"image/png": png, "text/plain": "<Figure>"}},)
        plt.close(fig)
        if out is None:
            self.last_figure = fig

    def _button(self, description: str, tooltip: str, fn: Callable, *args, **kw) -> W.Button:
        b = W.Button(description=description, tooltip=tooltip, layout=W.Layout(width="auto"), **kw)
        b.on_click(lambda _: self._call(fn, *args))
        return b

    def refresh(self) -> None:
        """Redraw: the readout says it is computing first (a new setting trains and replays; the
        message reaches the browser at once), then the figure and the summary replace it."""
        self.readout.value = COMPUTING
        self._show(self.model.figure())
        self.readout.value = html.escape(self.model.summary())


class PointExplorer(_View):
    """Lesson 00: pick a training point -> when it was used, exact TSLOO vs DVE, a reading of the sign.
    Buttons jump to the worst-fit point and to the most helpful / most harmful by the exact replay."""

    def __init__(self, traj: Trajectory, test, **kw):
        m = PointModel(traj, test, **kw)
        point = W.IntSlider(m.point, min=0, max=m.traj.schedule.n - 1, description="training point",
                            continuous_update=False, tooltip="the training point to read", **_WIDE)
        jumps = [("worst fit", "the point the final model fits worst",
                  lambda: int(m.traj.test_losses(m.traj.data).argmax())),
                 ("most helpful", "largest exact TSLOO", lambda: int(m.exact_.argmax())),
                 ("most harmful", "smallest (most negative) exact TSLOO", lambda: int(m.exact_.argmin()))]
        buttons = [self._button(d, t, lambda f=f: setattr(point, "value", f())) for d, t, f in jumps]
        super().__init__(m, dict(point=point), rows=[W.HBox([point, *buttons])], height="370px")
        self.busy += buttons
        self._call(self.refresh)


class OrderExplorer(_View):
    """Lesson 01: shuffle seed and curriculum preset -> decision boundary and test-loss readout."""

    def __init__(self, problem: Optional[Problem] = None, **kw):
        m = OrderModel(problem, **kw)
        super().__init__(m, dict(
            preset=W.Dropdown(options=PRESETS, value=m.preset, description="order", **_WIDE,
                              tooltip="a random shuffle, or a curriculum (easy/hard first, sorted by class)"),
            seed=W.IntSlider(m.seed, min=0, max=99, description="shuffle seed", continuous_update=False,
                             tooltip="which random order (for the shuffle)", **_WIDE)))
        self._call(self.refresh)

    def _enable(self) -> None:
        self.controls["seed"].disabled = self.model.preset != "shuffle"


class RemovalExplorer(_View):
    """Lesson 02: training point x removal step -> divergence curve and TSLOO readout."""

    def __init__(self, traj: Optional[Trajectory] = None, test=None, **kw):
        m = RemovalModel(traj, test, **kw)
        super().__init__(m, dict(
            point=W.IntSlider(m.point, min=0, max=m.traj.schedule.n - 1, description="training point",
                              continuous_update=False, tooltip="the point to remove", **_WIDE),
            step=W.Dropdown(description="removed at", tooltip="one step where it was used, or all", **_WIDE),
            renormalize=W.Checkbox(m.renormalize, description="renormalize (divide by |B|−1)", **_WIDE,
                                   tooltip="DataLoader-style: the mean over the batch's remaining points")))
        self._steps()
        self._call(self.refresh)

    def _steps(self) -> None:
        self._syncing = True  # new options reset the value: not the learner's choice
        try:
            w = self.controls["step"]
            w.options = [("every occurrence", -1)] + [(f"step {t}", t) for t in self.model.steps()]
            w.value = -1 if self.model.step is None else self.model.step
        finally:
            self._syncing = False

    def _set(self, name: str, value) -> None:
        setattr(self.model, name, None if name == "step" and value == -1 else value)
        if name == "point":
            self._steps()
        self.refresh()


class LearningRateExplorer(_View):
    """Lesson 03: learning rate -> fidelity scatter of SGD-influence against exact LOO."""

    def __init__(self, problem: Optional[Problem] = None, **kw):
        m = LearningRateModel(problem, **kw)
        lo, hi = m.lr_range
        super().__init__(m, dict(lr=W.FloatLogSlider(
            m.lr, base=10, min=np.log10(lo), max=np.log10(hi), step=0.05, description="learning rate",
            continuous_update=False, readout_format=".3g", tooltip="the step size η of every SGD step", **_WIDE)))
        self._call(self.refresh)


class DigitExplorer(_View):
    """Lesson 04: pick a test digit -> its most helpful and harmful training digits and when seen,
    chosen by exact LOO, the Fisher and the GGN embedding side by side (`DigitModel`)."""

    def __init__(self, traj: Optional[Trajectory] = None, test=None, **kw):
        m = DigitModel(traj, test, **kw)
        super().__init__(m, dict(
            test_index=W.IntSlider(m.test_index, min=0, max=len(m.test) - 1, description="test digit",
                                   continuous_update=False, tooltip="the test image to explain", **_WIDE),
            k=W.IntSlider(m.k, min=1, max=8, description="how many", continuous_update=False,
                          tooltip="training digits shown per row", **_WIDE)),
            height="700px" if "exact LOO" in m.methods else "290px")
        self._call(self.refresh)


def _px(figsize, dpi: int = plots.DPI, pad: int = 12) -> str:
    """An Output height that holds a figure of `figsize` inches at `dpi` (images only ever shrink)."""
    return f"{int(figsize[1] * dpi) + pad}px"


class ReorderExplorer(_View):
    """Lesson 05, the centrepiece: reorder the training data, Retrain, and watch the chosen point's
    embedding move, its per-step influence and exact vs DVE; Play runs over the training steps.
    Every edit shows at once the first-order predicted change of the mean test loss (readout) and,
    under the slider, the "best step" curve and every Retrain's (predicted, exact) pair.

    ``ReorderExplorer()`` builds the default moons problem; it also takes a `Problem`, or a
    `Trajectory` with `test` (see `ReorderModel`). Without a kernel: ``set_order(seq)``,
    ``retrain()``, ``result``, ``figure()``; ``buttons[name].click()`` presses a button.
    """

    def __init__(self, source=None, test=None, **kw):
        m = ReorderModel(source, test, **kw)
        T, box = len(m.result.schedule), W.Layout(width="170px")
        self.point = W.BoundedIntText(m.point, min=0, max=m.n - 1, description="point", layout=box, **_WIDE,
                                      tooltip="the training point to follow and move")
        self.occurrence = W.Dropdown(description="move", layout=W.Layout(width="220px"), **_WIDE,
                                     tooltip="which of its occurrences the arrow buttons and the slider move")
        self.to_step = W.IntSlider(0, min=0, max=T - 1, description="to step", continuous_update=True, **_WIDE,
                                   tooltip="move the selected occurrence (every occurrence: the earliest, the "
                                           "others by the same shift) to this step; the prediction follows "
                                           "while you drag")
        self.seed = W.BoundedIntText(0, min=0, max=10**6, description="seed", layout=box, **_WIDE,
                                     tooltip="seed of the shuffle")
        self.preset = W.Dropdown(options=PRESETS[1:], description="curriculum", **_WIDE, tooltip="a curriculum")
        self.drop = W.BoundedIntText(0, min=0, max=m.n - 1, description="leave out", layout=box, **_WIDE,
                                     tooltip="a training point to leave out")
        self.play = W.Play(value=T, min=1, max=T, interval=700, description="play", tooltip="play the steps")
        self.step = W.IntSlider(T, min=1, max=T, description="step s", continuous_update=False, **_WIDE,
                                tooltip="embeddings relative to the checkpoint at step s")
        W.link((self.play, "value"), (self.step, "value"))
        self.status, self.frame_out = W.HTML(), W.Output(layout=W.Layout(min_height=_px((9, 3))))
        self.predict_out, self._pending = W.Output(layout=W.Layout(min_height=_px(plots.PREDICTION_FIGSIZE))), None
        b, occ = self._button, lambda: None if self.occurrence.value == -1 else self.occurrence.value
        self.buttons = {
            "first": b("first", "move it to the first step", lambda: self._edit(m.move_to, "first", occ()),
                       icon="fast-backward"),
            "earlier": b("earlier", "move it one step earlier", lambda: self._edit(m.move, -1, occ()),
                         icon="chevron-left"),
            "later": b("later", "move it one step later", lambda: self._edit(m.move, 1, occ()), icon="chevron-right"),
            "last": b("last", "move it to the last step", lambda: self._edit(m.move_to, "last", occ()),
                      icon="fast-forward"),
            "shuffle": b("shuffle", "a random order from the seed", lambda: self._edit(m.shuffle, self.seed.value)),
            "reverse": b("reverse", "visit the batches last to first", self._edit, m.reverse),
            "curriculum": b("apply", "order by the curriculum", lambda: self._edit(m.curriculum, self.preset.value)),
            "leave_out": b("leave out", "leave that point out", lambda: self._edit(m.leave_out, self.drop.value)),
            "put_back": b("put all back", "put every left-out point back", self._edit, m.put_back),
            "reset": b("reset", "back to the first order", self._edit, m.reset),
            "retrain": b("Retrain", "train on this order and recompute (about a second)", self.retrain,
                         button_style="primary", icon="refresh")}
        self.retrain_button, bt = self.buttons["retrain"], self.buttons
        rows = [W.HBox([self.point, self.occurrence] + [bt[k] for k in ("first", "earlier", "later", "last")]),
                W.HBox([self.to_step]), self.predict_out,
                W.HBox([self.seed, bt["shuffle"], bt["reverse"], self.preset, bt["curriculum"]]),
                W.HBox([self.drop, bt["leave_out"], bt["put_back"], bt["reset"], self.retrain_button, self.status])]
        super().__init__(m, dict(point=self.point, step=self.step), rows, [W.HBox([self.play, self.step]),
                                                                            self.frame_out], height=_px(plots.FIGSIZE))
        self.busy = [self.retrain_button, self.play, self.step]
        for w, name in [(self.out, "main"), (self.predict_out, "prediction"), (self.frame_out, "frame")]:
            w.add_class(f"dve-{name}-figure")   # names for the browser test
        self.to_step.observe(lambda ch: self._syncing or self._call(self._slide, ch["new"]), names="value")
        self.occurrence.observe(lambda ch: self._syncing or self._call(self._edit, lambda: None), names="value")
        self._occurrences()
        self._call(self.refresh)

    @property
    def result(self) -> ReorderResult:
        return self.model.result

    def set_order(self, seq) -> None:
        self._edit(self.model.set_order, seq)

    def figure(self):
        return self.model.figure()

    def retrain(self) -> Optional[ReorderResult]:
        """What the Retrain button does (disabled while it runs); None if it failed (see the log)."""
        return self.result if self._call(self._retrain) else None

    def _retrain(self) -> None:
        self.status.value = "<b>retraining: train, embeddings, exact replays…</b>"
        self.model.retrain()
        T = len(self.result.schedule)
        self._syncing = True
        try:
            self.play.max = self.step.max = T
            self.play.value = self.step.value = min(self.step.value, T)
        finally:
            self._syncing = False
        self.refresh()

    def _set(self, name: str, value) -> None:
        if name == "point":
            self._syncing = True   # back to "every occurrence" for the new point
            try:
                self.occurrence.value = -1
            finally:
                self._syncing = False
            self._edit(self.model.set_point, value)
        else:
            self._show(self.model.frame_figure(int(value)), self.frame_out)

    def _edit(self, fn: Callable, *args, figure: bool = True) -> None:
        before, k = self.model.order.occurrences(self.model.point), self.occurrence.value
        fn(*args)
        after = self.model.order.occurrences(self.model.point)
        moved = [t for t in after if t not in before]
        if k is not None and k >= 0 and len(after) == len(before) and len(moved) == 1:
            self._syncing = True   # the selection follows the occurrence that moved
            try:
                self.occurrence.value = after.index(moved[0])
            finally:
                self._syncing = False
        self._occurrences()
        self._predict(figure)

    def _selected(self) -> Optional[int]:
        return None if self.occurrence.value in (None, -1) else self.occurrence.value

    def _slide(self, t: int) -> None:
        """The to-step slider (continuous, `ReorderModel.slide_to`): move and show the prediction at
        once, redraw the curve once the slider rests (a drag sends a value per step)."""
        try:
            self._edit(self.model.slide_to, t, self._selected(), figure=False)
        except ValueError as e:   # e.g. the point is already used at that step: not an error, a note
            self.readout.value = self._readout(f"cannot move there: {e}")
            return
        self._soon(self._predict)

    def _soon(self, fn: Callable, delay: float = 0.25) -> None:
        """Run fn once `delay` s pass without another call, on the kernel's event loop; without a
        running loop (plain Python, the tests) run it now."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn()
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.call_later(delay, lambda: self._call(fn))

    def _readout(self, note: Optional[str] = None) -> str:
        m = self.model
        return (html.escape(m.summary()) + "<br><b>" + html.escape(note or m.prediction_summary()) + "</b>")

    def _predict(self, figure: bool = True) -> None:
        """The predicted change of the current order in the readout and, with `figure`, the curve and
        the (predicted, exact) scatter under the slider."""
        self.readout.value = self._readout()
        if figure:
            self._show(self.model.prediction_figure(self._selected()), self.predict_out)

    def _occurrences(self) -> None:
        """Relist the point's occurrences (keeping the selected one) and show whether a Retrain is due."""
        occ, keep = self.model.order.occurrences(self.model.point), self.occurrence.value
        self._syncing = True  # relisting the options and placing the slider are not the learner's edits
        try:
            self.occurrence.options = [("every occurrence", -1)] + [(f"the one at step {t}", k) for k, t in enumerate(occ)]
            self.occurrence.value = keep if keep is not None and keep < len(occ) else -1
            self.to_step.max = len(self.model.order) - 1
            if occ:
                self.to_step.value = occ[0 if self.occurrence.value == -1 else self.occurrence.value]
        finally:
            self._syncing = False
        stale = self.model.stale
        self.status.value = ("<b style='color:#D55E00'>changed since the last Retrain: press Retrain</b>" if stale
                             else "up to date")
        self.retrain_button.button_style = "warning" if stale else "primary"

    def refresh(self) -> None:
        super().refresh()
        self._predict()
        self._occurrences()
        self._set("step", self.step.value)


class PhaseExplorer(_View):
    """Lesson 06: learning-rate schedule, peak η and run length (epochs) -> the per-step influence
    curve (SGD-influence and DVE, divided by η_t) with exact samples marked (`PhaseModel`).
    Pass ``model=`` an existing `PhaseModel` to reuse its cached runs."""

    def __init__(self, model: Optional[PhaseModel] = None, **kw):
        m = model or PhaseModel(**kw)
        super().__init__(m, dict(
            schedule=W.Dropdown(options=SCHEDULES, value=m.schedule, description="schedule", **_WIDE,
                                tooltip="the learning-rate schedule η_t (dt.lr)"),
            peak=W.FloatSlider(m.peak, min=0.05, max=0.8, step=0.05, description="peak η", continuous_update=False,
                               tooltip="the largest learning rate of the schedule", **_WIDE),
            epochs=W.IntSlider(m.epochs, min=1, max=30, description="epochs", continuous_update=False,
                               tooltip="run length: passes over the training data", **_WIDE)),
            height="270px")
        self._call(self.refresh)


class SelectionExplorer(_View):
    """Lesson 07: two range sliders for the selection windows (fractions of the run) -> final test
    loss and gradient cost, beside selecting never and always (`SelectionModel`)."""

    def __init__(self, model: SelectionModel):
        super().__init__(model, dict(
            early=W.FloatRangeSlider(value=model.early, min=0.0, max=1.0, step=0.05, description="early window",
                                     continuous_update=False, tooltip="select batches in this part of the run",
                                     **_WIDE),
            late=W.FloatRangeSlider(value=model.late, min=0.0, max=1.0, step=0.05, description="late window",
                                    continuous_update=False, tooltip="and in this part", **_WIDE)),
            height="250px")
        self._call(self.refresh)


# ---- lesson 08 ---------------------------------------------------------------------------------------


class ScalingExplorer(_View):
    """Lesson 08: projection kind and dimension d -> the projected embedding's Spearman against
    exact LOO and its fit seconds, every (kind, d) tried so far on the figure (`ScalingModel`).
    Pass ``model=`` an existing `ScalingModel` to reuse its run, exact LOO and cached fits."""

    def __init__(self, problem: Optional[Problem] = None, model: Optional[ScalingModel] = None, **kw):
        if model is not None and (problem is not None or kw):
            raise ValueError("ScalingExplorer: pass either model= (an existing ScalingModel) or a problem and "
                             "ScalingModel options, not both")
        m = model if model is not None else ScalingModel(problem, **kw)
        super().__init__(m, dict(
            kind=W.Dropdown(options=_SCALING_KINDS, value=m.kind, description="projection", **_WIDE,
                            tooltip="random (gaussian, orthogonal, kronecker) or fitted to the run (pca, kronecker_pca)"),
            d=W.SelectionSlider(options=m.dims, value=m.d if m.d in m.dims else m.dims[0],
                                description="dimension d", continuous_update=False, **_WIDE,
                                tooltip="the projected dimension (P = parameter count)")))
        self.model.d = self.controls["d"].value
        self._call(self.refresh)


# ---- lesson 09 ---------------------------------------------------------------------------------------

#: the β₂ values the slider offers (Adam's default 0.999 among them)
BETA2_CHOICES = (0.9, 0.99, 0.995, 0.999, 0.9999)


class OptimizerExplorer(_View):
    """Lesson 09: optimizer, learning rate, β₁ (Adam's, or the momentum μ) and β₂ -> the Spearman of
    each estimate with exact LOO and a rank scatter (`OptimizerModel`). Choosing an optimizer resets
    the learning rate to that optimizer's default (`DEFAULT_LR`); β₁ is off for plain SGD, β₂ for
    SGD and momentum. A status line says when it is computing (about a second per new setting; a
    setting seen before comes from the cache). Pass ``model=`` to reuse an `OptimizerModel`."""

    def __init__(self, model: Optional[OptimizerModel] = None, **kw):
        import time
        self._time = time.perf_counter
        m = model or OptimizerModel(**kw)
        opt, lr, b1, b2 = m.settings()
        self.status = W.HTML(layout=W.Layout(min_width="16em"))
        super().__init__(m, dict(
            optimizer=W.Dropdown(options=_OPTIMIZERS, value=opt, description="optimizer", **_WIDE,
                                 tooltip="the update rule (dt.optim): plain SGD, SGD with momentum, Adam, AdamW"),
            lr=W.FloatLogSlider(lr, base=10, min=-3, max=0, step=0.05, description="learning rate η",
                                continuous_update=False, readout_format=".3g", **_WIDE,
                                tooltip="η of every step; choosing an optimizer resets it to that optimizer's default"),
            beta1=W.FloatSlider(b1, min=0.0, max=0.99, step=0.01, description="β₁ (momentum μ)",
                                continuous_update=False, **_WIDE,
                                tooltip="Adam's first-moment decay, or the momentum μ of SGD with momentum"),
            beta2=W.SelectionSlider(options=sorted(set(BETA2_CHOICES) | {b2}), value=b2, description="β₂",
                                    continuous_update=False, **_WIDE, tooltip="Adam's second-moment decay")),
            rows=None, height="340px")
        c = self.controls
        self.children = (W.HBox([c["optimizer"], c["lr"], self.status]), W.HBox([c["beta1"], c["beta2"]]),
                         *self.children[1:])
        self._call(self.refresh)

    def _set(self, name: str, value) -> None:
        setattr(self.model, name, value)
        if name == "optimizer":
            self.model.lr = _DEFAULT_LR[value]
            self._syncing = True       # placing the slider is not the learner's edit
            try:
                self.controls["lr"].value = _DEFAULT_LR[value]
            finally:
                self._syncing = False
        self.refresh()

    def _enable(self) -> None:
        opt = self.model.optimizer
        self.controls["beta1"].disabled = opt == "sgd"
        self.controls["beta2"].disabled = opt not in ("adam", "adamw")

    def refresh(self) -> None:
        self.status.value = "<i>⏳ training, replaying every removal and estimating…</i>"
        start = self._time()
        try:
            super().refresh()
        except Exception:
            self.status.value = "<span style='color:#D55E00'>failed: see the message above</span>"
            raise
        self.status.value = f"done ({self._time() - start:.1f} s)"


# ---- lesson 10 ---------------------------------------------------------------------------------------
from .foundation_model import FoundationModel, FoundationResult  # noqa: E402  (re-exported, as the models above)

__all__ += ["FoundationModel", "FoundationResult", "FoundationExplorer"]


class FoundationExplorer(_View):
    """Lesson 10: pick a held-out sonnet line -> the pretraining passages that most help and most hurt
    its loss by first order (text highlighted, steps seen); a slider moves one passage's first
    occurrence to another pretraining step; Retrain answers both exactly by replay
    (`dve_teach.teach.foundation.FoundationModel`; pass ``model=`` to reuse one)."""

    def __init__(self, model=None, **kw):
        from .foundation import passage
        m = model or FoundationModel(**kw)
        m.update()
        lines = [(f"{j}: {passage(m.sonnets, j, 'test')!r}", j) for j in range(len(m.sonnets.test))]
        self.table = W.HTML(layout=W.Layout(min_height="12em"))
        self.status = W.HTML(layout=W.Layout(min_width="14em"))
        self.retrain_button = self._button("Retrain (exact)", "replay training without each shown passage, and "
                                           "retrain with the moved passage at the chosen step", self._retrain,
                                           button_style="primary")
        super().__init__(m, dict(
            line=W.Dropdown(options=lines, value=m.line, description="held-out line", **_WIDE,
                            tooltip="the held-out sonnet sequence whose loss is the query"),
            position=W.IntSlider(m.result.position, min=0, max=m.stage1_steps - 1, description="move to step",
                                 continuous_update=False, **_WIDE,
                                 tooltip="the pretraining step the passage's first occurrence moves to")),
            rows=None, extra=(self.table,), height="320px")
        c = self.controls
        self.busy.append(self.retrain_button)
        self.children = (W.HBox([c["line"]]), W.HBox([c["position"], self.retrain_button, self.status]),
                         *self.children[1:])
        self._call(self.refresh)

    def _set(self, name: str, value) -> None:
        if name == "line":
            self.model.line, self.model.moved, self.model.position = value, None, None
            self.model.update()
            self._syncing = True     # placing the slider is not the learner's edit
            try:
                self.controls["position"].value = self.model.result.position
            finally:
                self._syncing = False
        else:
            setattr(self.model, name, value)
        self.refresh()

    def _retrain(self) -> None:
        self.status.value = "<i>⏳ replaying without each passage and retraining with the moved one…</i>"
        self.model.retrain()
        self.refresh()

    def refresh(self) -> None:
        super().refresh()
        self.table.value = self.model.passages_html()
        self.status.value = "exact answers shown" if not self.model.stale else "first order only: press Retrain"
