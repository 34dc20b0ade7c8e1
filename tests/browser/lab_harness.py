"""Drive the course's JupyterLab in headless Chromium: start a server, run a notebook, inspect it.

Used by the browser tests (`make test-browser`). Three pieces:

- `JupyterLab`: a JupyterLab server from the project's environment on a free loopback port, with
  its own token and throw-away config, data, runtime, settings and workspace folders, so the test
  depends on none of the user's settings. `stop()` ends that server (and its kernels) only.
- `NotebookView`: one notebook open in a browser page: run all cells, read every cell's outputs
  from JupyterLab's model and from the page (what the student sees), move a slider.
- `find_problems`: what a student would see as broken: errors, warnings on stderr, figures that
  are not images, `ipywidgets` controls shown as their text fallback, cells that did not run.

Playwright is imported lazily, so `make test` can import this folder without it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # the lecture series
FIXTURES = sorted((HERE / "fixtures").glob("*.ipynb"))
SCREENSHOTS = ROOT / "build" / "browser"  # for people to look at; build/ is not committed

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")
# A matplotlib figure that reached the page as its repr instead of as a picture.
FIGURE_AS_TEXT = re.compile(r"^<Figure size \d+x\d+ with \d+ Axes>$")

# Flags for Debian's Chromium as root in a container; Playwright adds its own automation flags.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# User settings for the throw-away settings folder: no news or update pop-ups over the
# notebook, and every cell attached to the page so each output can be inspected (JupyterLab's
# default attaches off-screen cells lazily; what is rendered is the same).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """A JupyterLab server serving `root_dir`, with all of its state under `work_dir`.

    >>> lab = JupyterLab(root_dir, work_dir).start()   # doctest: +SKIP
    >>> lab.url("lab/tree/notebooks/00_why_deep_learning.ipynb")   # doctest: +SKIP
    >>> lab.stop()   # doctest: +SKIP
    """

    def __init__(self, root_dir: Path, work_dir: Path):
        self.root_dir = Path(root_dir)
        self.work_dir = Path(work_dir)
        self.token = secrets.token_hex(16)
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = self.work_dir / "jupyterlab.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str, **query: str) -> str:
        """The address of `path` on this server, with the token (and `query`) attached."""
        params = "&".join([f"token={self.token}", *(f"{k}={v}" for k, v in query.items())])
        return f"{self.base_url}{path}?{params}"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        for name in ("config", "data", "runtime", "settings", "workspaces"):
            (self.work_dir / name).mkdir(parents=True, exist_ok=True)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.work_dir / "config"),
            JUPYTER_DATA_DIR=str(self.work_dir / "data"),
            JUPYTER_RUNTIME_DIR=str(self.work_dir / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(self.work_dir / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.work_dir / "workspaces"),
            # Kernels are started from this environment's python, whatever the caller's PATH.
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        )
        for relative, values in LAB_SETTINGS.items():
            target = self.work_dir / "settings" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        return env

    def start(self, timeout: float = 90.0) -> JupyterLab:
        self.port = free_port()
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            # window.jupyterapp: the test reads the notebook model and runs JupyterLab's commands.
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        env = self._environment()
        with open(self.log_path, "wb") as log:
            # A session of its own: stop() can end the server's kernels without touching others.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.work_dir, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"JupyterLab exited with {code}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log()}")

    def log(self, last: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-last:] if self.log_path.exists() else ""

    def api(self, method: str, path: str) -> object:
        """Call the server's REST API, e.g. api("GET", "api/sessions")."""
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Ask this server to shut down all its kernels (between notebooks, to keep memory flat).

        Each DELETE returns once the shutdown is under way, so this takes no kernel-exit time.
        """
        for kernel in self.api("GET", "api/kernels"):
            self.api("DELETE", f"api/kernels/{kernel['id']}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop this server: SIGTERM (it shuts its kernels down), SIGKILL to its group if stuck."""
        if self.process is None:
            return
        process, self.process = self.process, None
        group = process.pid  # start_new_session: the server leads a process group of its own
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        try:  # kernels the server left behind are in its group, and only they are
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def copy_notebooks(sources: list[Path], root_dir: Path, folder: str) -> list[str]:
    """Copy notebooks into root_dir/folder (runs there leave the repository untouched).

    Returns their paths as the server names them, e.g. "notebooks/01_perceptron.ipynb".
    """
    target = root_dir / folder
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copy2(source, target / source.name)
    return [f"{folder}/{source.name}" for source in sources]


@dataclass
class Output:
    """One output of a code cell: from the notebook model and as rendered in the page."""

    output_type: str
    mime_types: list[str]
    name: str | None = None  # stream name: stdout / stderr
    ename: str | None = None
    evalue: str | None = None
    rendered_mime: str | None = None
    text: str = ""
    images: list[dict] = field(default_factory=list)  # every <img>: complete, width, height
    widget_views: int = 0  # rendered ipywidgets views inside this output
    shown: bool = False  # an element for this output exists in the page


@dataclass
class Cell:
    index: int
    cell_type: str
    execution_count: int | None
    outputs: list[Output]


# Reads the open notebook: JupyterLab's model (what ran) and each output's element (what shows).
_INSPECT_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => {
    const model = cell.model;
    if (model.type !== 'code') {
      return {index, cell_type: model.type, execution_count: null, outputs: []};
    }
    const children = cell.outputArea.widgets;
    const outputs = model.outputs.toJSON().map((output, j) => {
      const node = children[j] ? children[j].node : null;
      const rendered = node ? node.querySelector('.jp-OutputArea-output') : null;
      return {
        output_type: output.output_type,
        mime_types: Object.keys(output.data || {}),
        name: output.name || null,
        ename: output.ename || null,
        evalue: output.evalue || null,
        rendered_mime: rendered ? rendered.getAttribute('data-mime-type') : null,
        text: rendered ? rendered.innerText.slice(0, 2000) : '',
        images: node ? Array.from(node.querySelectorAll('img')).map(img => ({
          complete: img.complete, width: img.naturalWidth, height: img.naturalHeight})) : [],
        widget_views: node ?
          node.querySelectorAll('.jupyter-widgets:not(.jp-OutputArea-output)').length : 0,
        shown: rendered !== null,
      };
    });
    return {index, cell_type: model.type, execution_count: model.executionCount, outputs};
  });
}
"""


@dataclass
class SliderMove:
    """A slider dragged by the test: its readout and its figure before and after."""

    readout_before: str
    readout_after: str
    figure_changed: bool
    errors_after: list[str]


class NotebookView:
    """Notebooks opened one at a time in one JupyterLab browser tab.

    JupyterLab itself loads once (`load`); each notebook is then opened as a person would from
    the file browser (`open`) and closed with its kernel shut down (`close`).
    """

    def __init__(self, page, lab: JupyterLab):
        self.page = page
        self.lab = lab
        self.errors: list[str] = []  # uncaught JavaScript errors in the page
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def load(self, timeout_ms: float = 90_000) -> NotebookView:
        """Load JupyterLab in a fresh workspace (nothing restored from an earlier session)."""
        self.page.goto(self.lab.url("lab/workspaces/browser-test", reset=""))
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout_ms)
        self.page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        # The notebook gets the whole width: close the Launcher, fold the file browser away.
        self.page.evaluate(
            """() => {
                const app = window.jupyterapp;
                for (const widget of Array.from(app.shell.widgets('main'))) widget.dispose();
                app.shell.collapseLeft();
            }"""
        )
        return self

    def open(self, path: str, timeout_ms: float = 90_000) -> NotebookView:
        """Open the notebook at `path` (server path) and wait until its kernel is idle."""
        self.page.evaluate(
            "(path) => { window.jupyterapp.commands.execute('docmanager:open', {path}); }", path
        )
        self.page.wait_for_function(
            """(path) => {
                const panel = window.jupyterapp.shell.currentWidget;
                return panel && panel.context && panel.context.path === path
                    && panel.context.isReady
                    && panel.sessionContext.session?.kernel?.status === 'idle';
            }""",
            arg=path, timeout=timeout_ms,
        )
        return self

    def close_all(self) -> None:
        """Close every tab of the main area, unsaved, and shut down every kernel of the server.

        The kernels shut down in the background while the next notebook opens.
        """
        self.page.evaluate(
            """() => {
                for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
                    widget.dispose();
                }
            }"""
        )
        self.lab.shutdown_kernels()

    def run_all(self, timeout_ms: float = 240_000) -> bool:
        """Clear every output, then Run > Run All Cells and wait until it is done.

        Returns JupyterLab's answer: False when a cell raised (the run stops there).
        """
        self.page.evaluate(
            """async () => {
                const app = window.jupyterapp;
                await app.commands.execute('notebook:clear-all-cell-outputs');
                window.__dlcourseRunAll = null;
                app.commands.execute('notebook:run-all-cells').then(
                    (ok) => { window.__dlcourseRunAll = {ok: ok === true}; },
                    (err) => { window.__dlcourseRunAll = {ok: false, error: String(err)}; });
            }"""
        )
        handle = self.page.wait_for_function(
            "() => window.__dlcourseRunAll", timeout=timeout_ms, polling=250
        )
        result = handle.json_value()
        self.wait_for_images()
        return bool(result["ok"])

    def wait_for_images(self, timeout_ms: float = 30_000) -> None:
        """Wait until the page has decoded every image in the outputs (or give up quietly)."""
        try:
            self.page.wait_for_function(
                """() => Array.from(document.querySelectorAll('.jp-OutputArea-output img'))
                        .every(img => img.complete)""",
                timeout=timeout_ms,
            )
        except Exception:  # an image that never loads is reported by find_problems
            pass

    def cells(self) -> list[Cell]:
        raw = self.page.evaluate(_INSPECT_JS)
        return [
            Cell(c["index"], c["cell_type"], c["execution_count"],
                 [Output(**o) for o in c["outputs"]])
            for c in raw
        ]

    def has_slider(self) -> bool:
        return self.page.locator(".jp-OutputArea-output .widget-slider .noUi-handle").count() > 0

    def move_first_slider(self, fraction: float = 0.3, timeout_ms: float = 30_000) -> SliderMove:
        """Drag the notebook's first slider by `fraction` of its track, as a person would.

        Compares the figure in the same widget (e.g. an `interact` output) before and after.
        """
        handle = self.page.locator(".jp-OutputArea-output .widget-slider .noUi-handle").first
        widget = handle.locator(
            "xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-OutputArea-output ')][1]"
        )
        slider = handle.locator("xpath=ancestor::div[contains(@class, 'widget-slider')][1]")
        readout = slider.locator(".widget-readout")
        handle.scroll_into_view_if_needed()
        before_readout = readout.inner_text()
        before_images = widget.evaluate(
            "(el) => Array.from(el.querySelectorAll('img')).map(img => img.src)"
        )
        box = handle.bounding_box()
        track = slider.locator(".noUi-target").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        # Towards the side with more room, so the value changes.
        step = fraction * track["width"] * (1 if x < track["x"] + track["width"] / 2 else -1)
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x + step, y, steps=8)
        self.page.mouse.up()
        # Each value the drag passed through is drawn in turn: wait for the kernel to be idle
        # (for 1 s) and the figure loaded, then compare the last figure with the first.
        after_images = widget.evaluate(
            """(el, timeout) => new Promise((resolve) => {
                const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                const t0 = Date.now();
                let idleSince = null;
                const check = () => {
                    const imgs = Array.from(el.querySelectorAll('img'));
                    const loaded = imgs.every(img => img.complete && img.naturalWidth > 0);
                    idleSince = kernel.status === 'idle' ? (idleSince ?? Date.now()) : null;
                    const settled = loaded && idleSince !== null && Date.now() - idleSince > 1000;
                    if (settled || Date.now() - t0 > timeout) resolve(imgs.map(img => img.src));
                    else setTimeout(check, 100);
                };
                check();
            })""",
            timeout_ms,
        )
        changed = bool(after_images) and after_images != before_images
        errors = widget.evaluate(
            """(el) => Array.from(el.querySelectorAll(
                    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
                .map(e => e.innerText.slice(0, 500))"""
        )
        return SliderMove(before_readout, readout.inner_text(), changed, errors)

    def scroll_to_first(self, selector: str) -> bool:
        """Scroll the notebook so the first element matching `selector` is in view."""
        target = self.page.locator(selector).first
        if target.count() == 0:
            return False
        target.scroll_into_view_if_needed()
        return True

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path


def _stored_summary(notebook: dict) -> tuple[set[int], int, int]:
    """From a committed notebook: cells with stderr output, top-level figures, widget views."""
    stderr_cells, figures, widgets = set(), 0, 0
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                stderr_cells.add(index)
            figures += any(mime in data for mime in IMAGE_MIMES)
            widgets += WIDGET_MIME in data
    return stderr_cells, figures, widgets


def find_problems(cells: list[Cell], stored: dict | None = None) -> list[str]:
    """Everything a student would see as broken in the notebook, one line each.

    `stored` is the committed notebook (nbformat dict, executed by nbval's rules): when given,
    the browser must show as many figures and widgets as the committed outputs hold, and
    stderr output is accepted only in cells whose committed output has stderr too.
    """
    problems = []
    stderr_ok, stored_figures, stored_widgets = _stored_summary(stored) if stored else (set(), 0, 0)
    figures = widgets = 0
    for cell in cells:
        if cell.cell_type != "code":
            continue
        where = f"cell {cell.index}"
        if cell.execution_count is None:
            problems.append(f"{where}: did not run")
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{where}: error {out.ename}: {out.evalue}")
                continue
            if out.output_type == "stream":
                if out.name == "stderr" and cell.index not in stderr_ok:
                    problems.append(f"{where}: wrote to stderr: {out.text[:300]!r}")
                continue
            if not out.shown:
                problems.append(f"{where}: an output of type {out.mime_types} is not on the page")
                continue
            if any(mime in out.mime_types for mime in IMAGE_MIMES):
                figures += 1
                if not out.images:
                    problems.append(f"{where}: figure not shown as an image ({out.rendered_mime})")
            if WIDGET_MIME in out.mime_types:
                widgets += 1
                if out.rendered_mime == "text/plain" or out.widget_views == 0:
                    problems.append(f"{where}: widget shown as text, not as a control: "
                                    f"{out.text[:200]!r}")
            if out.mime_types == ["text/plain"] and FIGURE_AS_TEXT.match(out.text.strip()):
                problems.append(f"{where}: figure shown as text: {out.text.strip()!r}")
            broken = [img for img in out.images if not img["complete"] or img["width"] == 0]
            if broken:
                problems.append(f"{where}: {len(broken)} image(s) did not load")
    unexecuted = stored is not None and sum(
        cell["cell_type"] == "code" and cell.get("execution_count") is None
        for cell in stored["cells"]
    )
    if unexecuted:
        problems.append(f"the committed notebook is not executed ({unexecuted} code cells never "
                        "ran), so there is nothing to compare with")
    elif stored is not None:
        if figures != stored_figures:
            problems.append(f"{figures} figures in the browser, {stored_figures} in the committed "
                            "notebook")
        if widgets != stored_widgets:
            problems.append(f"{widgets} widgets in the browser, {stored_widgets} in the committed "
                            "notebook")
    return problems


def slide_structure(notebook: dict) -> dict[str, int]:
    """Slides, subslides and fragments a notebook's `slideshow` metadata asks for.

    "skip" and "notes" cells are not shown; the first shown cell starts a slide whatever its type.
    """
    counts = {"slides": 0, "subslides": 0, "fragments": 0}
    started = False
    for cell in notebook["cells"]:
        kind = cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")
        if kind in ("skip", "notes"):
            continue
        if kind == "slide" or not started:
            counts["slides"] += 1
        elif kind == "subslide":
            counts["subslides"] += 1
        if kind == "fragment":
            counts["fragments"] += 1
        started = True
    return counts
