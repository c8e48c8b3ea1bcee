"""Lesson 05's ReorderExplorer in a real browser: JupyterLab 4 + headless Debian Chromium.

Starts JupyterLab on 127.0.0.1 (free port, token disabled, a temporary root holding a copy of the
lesson with its outputs cleared, temporary config/settings/workspace dirs), opens lesson 05 in
headless Chromium driven by Playwright (the system /usr/bin/chromium; `playwright install` is never
needed), runs the cells up to the widget cell, picks a point and moves it with the buttons, checks that the
readout predicts the change and the best-step curve is redrawn before any Retrain, presses Retrain and
checks that the readout text and the plot image change and report that prediction. Screenshots go to the test's
tmp_path (printed; also copied to $DVE_TEACH_SCREENSHOT_DIR when set). Every wait is bounded and
the server (its whole process group, kernels included) is stopped in teardown.

Skipped, with the reason, when chromium or playwright is missing, unless
DVE_TEACH_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "lessons" / "05_reorder_and_watch.ipynb"
WIDGET_TAG = "widget"            # the lesson's cell that displays the explorer carries this tag
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90
CELLS_RUN_S = 240                # kernel start + the lesson's cells up to the widget, fast mode
RETRAIN_S = 120


def _chromium() -> str | None:
    return shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None


def _unavailable(reason: str):
    if os.environ.get("DVE_TEACH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DVE_TEACH_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_root(tmp: Path, notebooks: list[Path]) -> Path:
    """A throwaway JupyterLab root with the notebooks (outputs cleared) and their solutions folder."""
    import nbformat
    root = tmp / "lab-root"
    root.mkdir()
    for notebook in notebooks:
        nb = nbformat.read(notebook, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, root / notebook.name)
    solutions = notebooks[0].parent / "solutions"
    if solutions.is_dir():
        shutil.copytree(solutions, root / "solutions")
    return root


def _lab_env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.setdefault("DVE_TEACH_FAST", "1")
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("IPYTHONDIR", "ipython")]:
        (tmp / sub).mkdir(exist_ok=True)
        env[var] = str(tmp / sub)
    # no "get Jupyter news?" toast over the notebook
    notif = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    # every cell stays in the page (JupyterLab 4 may otherwise leave off-screen cells unrendered,
    # and a layout measured there would be empty)
    tracker = tmp / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return env


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (server + kernels), then SIGKILL after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # kernels left behind in the group, if any
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@contextlib.contextmanager
def _serve(tmp_path: Path, notebooks: list[Path]):
    """Yield (base_url, root) of a JupyterLab serving copies of `notebooks`; stop it afterwards."""
    for nb in notebooks:
        if not nb.exists():
            pytest.fail(f"{nb} is missing")
    root = _prepare_root(tmp_path, notebooks)
    port = _free_port()
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", "--allow-root", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=_lab_env(tmp_path), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/api/status", proc, log, SERVER_START_S)
        yield base, root
    finally:
        _stop(proc)


@pytest.fixture
def jupyterlab(tmp_path):
    """Yield (base_url, root) of a JupyterLab serving a copy of lesson 05; stop it afterwards."""
    with _serve(tmp_path, [LESSON]) as served:
        yield served


@pytest.fixture
def page(tmp_path):
    """A Playwright page in headless system Chromium with a fresh profile; closed afterwards."""
    chromium = _chromium()
    if chromium is None:
        _unavailable("Debian chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    errors: list[str] = []
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1400})
        ctx.set_default_timeout(30_000)
        ctx.set_default_navigation_timeout(60_000)
        try:
            pg = ctx.pages[0] if ctx.pages else ctx.new_page()
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.errors = errors
            yield pg
        finally:
            ctx.close()


def _shot(page, tmp_path: Path, name: str, element=None) -> Path:
    """Screenshot of the page (or of one element) into tmp_path, and $DVE_TEACH_SCREENSHOT_DIR if set."""
    path = tmp_path / name
    (element or page).screenshot(path=str(path), **({} if element else {"full_page": True}))
    keep = os.environ.get("DVE_TEACH_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    print(f"screenshot: {path}")
    return path


# JS run in the page. `window.jupyterapp` exists because of --LabApp.expose_app_in_browser.
_RUN_TO_TAGGED_CELL = """(tag) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const nb = panel.content;
  const tags = (c) => (c.model.getMetadata ? c.model.getMetadata('tags') : undefined) || [];
  const idx = nb.widgets.findIndex((c) => tags(c).includes(tag));
  if (idx < 0) { return -1; }
  nb.activeCellIndex = idx;
  // run every cell above, then the tagged one (not awaited here: Python waits with a timeout)
  panel.sessionContext.ready
    .then(() => app.commands.execute('notebook:run-all-above'))
    .then(() => app.commands.execute('notebook:run-cell'));
  return idx;
}"""

_NOTEBOOK_READY = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  return !!(w && w.content && w.content.widgets && w.content.widgets.length > 0 && w.sessionContext
            && w.sessionContext.session && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.status === 'idle');
}"""


def _open_and_run_widget_cell(page, base: str, name: str):
    page.goto(f"{base}/lab/tree/{name}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(_NOTEBOOK_READY, timeout=90_000)
    idx = page.evaluate(_RUN_TO_TAGGED_CELL, WIDGET_TAG)
    assert idx >= 0, f"{name} has no cell tagged {WIDGET_TAG!r}"
    cell = page.locator(".jp-Notebook .jp-Cell").nth(idx)
    return cell


_TEXT_CHANGED = "([el, old]) => el.innerText.trim() !== '' && el.innerText !== old"
_IMG_CHANGED = "([el, old]) => !el.isConnected || el.getAttribute('src') !== old"
_PREDICTED = r"(el) => /no retraining\): [+-]\d\.\d\de[+-]\d\d/.test(el.innerText) && !/no retraining\): \+0\.00e\+00/.test(el.innerText)"


def test_lesson05_reorder_explorer_in_chromium(page, jupyterlab, tmp_path):
    base, _ = jupyterlab
    try:
        cell = _open_and_run_widget_cell(page, base, LESSON.name)
        widget = cell.locator(".jp-OutputArea-output .widget-vbox").first
        retrain = widget.locator(".widget-button", has_text="Retrain")
        retrain.wait_for(timeout=CELLS_RUN_S * 1000)           # the explorer rendered as a widget
        readout = widget.locator(".widget-html-content", has_text="Removing it everywhere").first
        readout.wait_for(timeout=60_000)
        plot = widget.locator(".dve-main-figure img").first          # the main figure (PNG)
        plot.wait_for(timeout=60_000)
        curve = widget.locator(".dve-prediction-figure img").first   # the best-step curve under the slider
        curve.wait_for(timeout=60_000)
        _shot(page, tmp_path, "lesson05-before.png")
        text0, src0, curve0 = readout.inner_text(), plot.get_attribute("src"), curve.get_attribute("src")

        # move the chosen point's first occurrence one step later, with the controls
        occurrence = widget.locator(".widget-dropdown select").first
        labels = [t.replace("\xa0", " ") for t in occurrence.locator("option").all_inner_texts()]
        at = [(i, int(t.rsplit(" ", 1)[1])) for i, t in enumerate(labels) if t.startswith("the one at step")]
        assert at, f"no occurrences listed in the 'move' dropdown: {labels}"
        steps = [t for _, t in at]
        occurrence.select_option(index=at[0][0])
        widget.locator(".widget-button", has_text="later").click()
        widget.locator(".widget-html-content", has_text="press Retrain").wait_for(timeout=30_000)
        # before any Retrain: the readout predicts the change and the curve under the slider is redrawn
        page.wait_for_function(_PREDICTED, arg=readout.element_handle(), timeout=30_000)
        page.wait_for_function(_IMG_CHANGED, arg=[curve.element_handle(), curve0], timeout=30_000)
        predicted = readout.inner_text()
        _shot(page, tmp_path, "lesson05-predicted.png", element=cell)

        retrain.click()
        page.wait_for_function(_TEXT_CHANGED, arg=[readout.element_handle(), text0], timeout=RETRAIN_S * 1000)
        page.wait_for_function(_IMG_CHANGED, arg=[plot.element_handle(), src0], timeout=RETRAIN_S * 1000)
        widget.locator(".widget-html-content", has_text="up to date").wait_for(timeout=30_000)
        page.wait_for_function("(el) => !el.disabled", arg=retrain.element_handle(), timeout=30_000)
        text1, src1 = readout.inner_text(), widget.locator(".dve-main-figure img").first.get_attribute("src")
        _shot(page, tmp_path, "lesson05-after.png")
        _shot(page, tmp_path, "lesson05-widget.png", element=cell)

        # the to-step slider from the keyboard: the prediction follows at once, the curve once it rests
        curve1 = widget.locator(".dve-prediction-figure img").first.get_attribute("src")
        handle = widget.locator(".widget-slider .noUi-handle").first
        handle.focus()
        handle.press("ArrowLeft")
        page.wait_for_function(_PREDICTED, arg=readout.element_handle(), timeout=30_000)
        page.wait_for_function(_IMG_CHANGED, arg=[widget.locator(".dve-prediction-figure img").first.element_handle(),
                                                  curve1], timeout=30_000)
        slid = readout.inner_text()
    except Exception:
        with contextlib.suppress(Exception):
            _shot(page, tmp_path, "lesson05-failure.png")
        print("page errors:", page.errors, "\nJupyterLab log:", (tmp_path / "jupyterlab.log").read_text()[-2000:])
        raise
    assert text1 != text0 and src1 != src0, "Retrain should change both the readout and the plot"
    listed = re.search(r"at steps ([\d, ]+)", text1)
    new_steps = [int(t) for t in listed.group(1).split(",")] if listed else []
    assert steps[0] + 1 in new_steps and steps[0] not in new_steps, (
        f"after moving the occurrence at step {steps[0]} one step later the readout should list step "
        f"{steps[0] + 1} instead: {text1!r}")
    assert "⚠" not in text1, f"the widget reported an error: {text1!r}"
    assert "⚠" not in slid and "cannot move" not in slid, f"the slider step failed: {slid!r}"
    shown = re.search(r"no retraining\): ([+-][\d.]+e[+-]\d+)", predicted)
    assert shown and f"last Retrain: predicted {shown.group(1)}" in text1, (
        f"the Retrain should report the prediction shown before it: {predicted!r} -> {text1!r}")


# ---- every widget fits its figures ------------------------------------------------------------------
LAYOUT_LESSONS = ["00", "05", "06", "07", "08", "09", "10"]   # the lessons with a widget cell (tag "widget")
LESSON_RUN_S = 300               # one lesson, top to bottom, fast mode, on busy cores

_RUN_ALL = """() => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  panel.sessionContext.ready.then(() => app.commands.execute('notebook:run-all-cells'));
  return panel.content.widgets.length;
}"""

_RUN_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const code = w.content.widgets.filter((c) => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
  const queued = code.filter((c) => (c.node.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText.includes('*'));
  return [queued.length ? 'busy' : 'idle', code.filter((c) => c.model.executionCount === null).length];
}"""


def _run_all(page, timeout: float) -> None:
    """Run every cell; return once all have run, fail early once the kernel stays idle with cells
    left (a cell raised: run-all stops there)."""
    page.evaluate(_RUN_ALL)
    deadline, idle_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status, left = page.evaluate(_RUN_STATE)
        if status == "idle" and left == 0:
            return
        idle_since = (idle_since or time.monotonic()) if status == "idle" else None
        if idle_since and time.monotonic() - idle_since > 8:
            raise AssertionError(f"{left} cells did not run (a cell failed?): {page.evaluate(_ERRORS)[:6]}")
        time.sleep(0.5)
    raise AssertionError(f"the lesson did not finish within {timeout:.0f} s")

# Within one widget cell's output: every visible control against every figure image (intersection
# larger than 4 px²), and every image against each ancestor that clips it (overflow not visible).
_LAYOUT = """(cell) => {
  const CONTROLS = ['.widget-button', '.widget-slider', '.widget-dropdown', '.widget-text', '.widget-checkbox',
                    '.widget-play', '.widget-html', '.widget-label', '.widget-toggle-buttons', '.widget-select',
                    '.widget-radio-box', '.lm-AccordionPanel-title', '.widget-readout'].join(', ');
  const box = (e) => e.getBoundingClientRect();
  const shown = (r) => r.width > 1 && r.height > 1;
  const label = (e) => (e.className.split(' ')[0] + ' "' + (e.innerText || '').trim().slice(0, 30) + '"');
  const root = cell.querySelector('.jp-OutputArea-output .jupyter-widgets');
  if (!root) { return {images: 0, controls: 0, problems: ['no widget rendered']}; }
  const images = [...root.querySelectorAll('img')].filter((i) => shown(box(i)));
  const controls = [...root.querySelectorAll(CONTROLS)].filter((c) => shown(box(c)));
  const problems = [];
  images.forEach((img, k) => {
    const r = box(img);
    controls.forEach((c) => {
      const q = box(c);
      const w = Math.min(r.right, q.right) - Math.max(r.left, q.left);
      const h = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
      if (w > 2 && h > 2) {
        problems.push(`figure ${k} (${Math.round(r.height)} px high) overlaps ${label(c)} by ${Math.round(w)}x${Math.round(h)} px`);
      }
    });
    for (let a = img.parentElement; a && a !== cell; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') { continue; }
      const q = box(a);
      if (r.bottom > q.bottom + 2 || r.right > q.right + 2 || r.top < q.top - 2 || r.left < q.left - 2) {
        problems.push(`figure ${k} (${Math.round(r.height)} px high) is clipped by a ${Math.round(q.height)} px ` +
                      `${a.className.split(' ')[0] || a.tagName} (overflow ${s.overflowY})`);
        break;
      }
    }
  });
  return {images: images.length, controls: controls.length, problems: problems};
}"""

_READY_FOR = """(name) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.context && w.context.path.endsWith(name) && w.content && w.content.widgets
            && w.content.widgets.length > 0 && w.sessionContext && w.sessionContext.session
            && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle');
}"""

_CLOSE_ALL = """async () => {
  const app = window.jupyterapp;
  await app.commands.execute('application:close-all');
  await app.serviceManager.sessions.refreshRunning();
  for (const s of [...app.serviceManager.sessions.running()]) {
    await app.serviceManager.sessions.shutdown(s.id);
  }
  return true;
}"""

_ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .map((c, i) => [i, c.model.type, c.model.type === 'code' ? c.model.executionCount : '',
                  [...c.node.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')]
                    .map((e) => e.innerText.slice(-400)).join(' | ')])
  .filter((r) => r[1] === 'code' && (r[2] === null || r[3]))"""

_IMAGES_LOADED = """(cell) => [...cell.querySelectorAll('.jp-OutputArea-output .jupyter-widgets img')]
  .every((i) => i.complete && i.naturalHeight > 0)"""


def test_widgets_fit_their_figures(page, tmp_path):
    """In lessons 00 and 05-10, run top to bottom in JupyterLab (fast mode): no control of a widget
    overlaps one of its figure images, and no image is clipped by its own output area. Each widget
    cell is screenshotted (`widget-NN.png`)."""
    lessons = [next((ROOT / "lessons").glob(f"{nn}_*.ipynb")) for nn in LAYOUT_LESSONS]
    found: dict[str, dict] = {}
    with _serve(tmp_path, lessons) as (base, _):
        for nb in lessons:
            nn = nb.name[:2]
            try:
                page.goto(f"{base}/lab/tree/{nb.name}?reset")     # a fresh workspace: this lesson only
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
                page.wait_for_function(_READY_FOR, arg=nb.name, timeout=90_000)
                _run_all(page, LESSON_RUN_S)
                cells = page.locator(".jp-Notebook .jp-CodeCell").filter(
                    has=page.locator(".jp-OutputArea-output .jupyter-widgets img"))
                assert cells.count() >= 1, f"lesson {nn}: no widget with a figure was rendered"
                for k in range(cells.count()):
                    cell = cells.nth(k)
                    cell.scroll_into_view_if_needed()
                    page.wait_for_function(_IMAGES_LOADED, arg=cell.element_handle(), timeout=30_000)
                    page.wait_for_timeout(300)     # let the layout settle after the images decode
                    found[f"{nn}.{k}"] = cell.evaluate(_LAYOUT)
                    _shot(page, tmp_path, f"widget-{nn}-{k}.png", element=cell)
                page.evaluate(_CLOSE_ALL)         # its kernel stops before the next lesson starts
            except Exception:
                with contextlib.suppress(Exception):
                    _shot(page, tmp_path, f"widget-{nn}-failure.png")
                print("page errors:", page.errors)
                with contextlib.suppress(Exception):
                    print("cells not run or with stderr:", page.evaluate(_ERRORS)[:6])
                raise
    print({k: (v["images"], v["controls"], len(v["problems"])) for k, v in found.items()})
    assert {k.split(".")[0] for k in found} == set(LAYOUT_LESSONS)
    assert all(v["images"] >= 1 and v["controls"] >= 1 for v in found.values()), found
    bad = {k: v["problems"] for k, v in found.items() if v["problems"]}
    assert not bad, "widget controls overlap or clip their figures:\n" + "\n".join(
        f"lesson {k}: {p}" for k, ps in bad.items() for p in ps)
