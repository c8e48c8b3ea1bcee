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


def _prepare_root(tmp: Path, notebook: Path) -> Path:
    """A throwaway JupyterLab root with the notebook (outputs cleared) and its solutions folder."""
    import nbformat
    root = tmp / "lab-root"
    root.mkdir()
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, root / notebook.name)
    if (notebook.parent / "solutions").is_dir():
        shutil.copytree(notebook.parent / "solutions", root / "solutions")
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


@pytest.fixture
def jupyterlab(tmp_path):
    """Yield (base_url, root) of a JupyterLab serving a copy of lesson 05; stop it afterwards."""
    if not LESSON.exists():
        pytest.fail(f"{LESSON} is missing")
    root = _prepare_root(tmp_path, LESSON)
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
        readout = widget.locator(".widget-html-content", has_text="changes the mean test loss").first
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
