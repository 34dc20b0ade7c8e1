"""Remake the README's screenshots (docs/screenshots/) with the browser test's harness.

    .venv/bin/python tests/browser/readme_screenshots.py

Needs what `make test-browser` installs. Takes the shots in a 1280x800 window, then stores them
with a 64-colour palette so the three stay well under 300 KB together.
"""

import sys
import tempfile
from pathlib import Path

from lab_harness import CHROMIUM, CHROMIUM_ARGS, NOTEBOOKS, ROOT, JupyterLab, NotebookView
from lab_harness import copy_notebooks as copy
from PIL import Image
from playwright.sync_api import sync_playwright

OUT = ROOT / "docs" / "screenshots"


def _show_cell(view, index):
    """Make cell `index` of the open notebook the active one and scroll it to the top."""
    view.page.evaluate(
        """(i) => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
                if (widget.title.label === 'Launcher') widget.dispose();
            }
            notebook.activeCellIndex = i;
            notebook.widgets[i].node.scrollIntoView({block: 'start'});
        }""",
        index,
    )
    view.page.wait_for_timeout(800)


def _save(raw: Path, name: str) -> None:
    image = Image.open(raw).convert("RGB")
    image.quantize(colors=64, dither=Image.Dither.NONE).save(OUT / name, optimize=True)
    print(OUT / name, (OUT / name).stat().st_size, "bytes")


def main() -> None:
    by_name = {path.stem: path for path in NOTEBOOKS}
    work = Path(tempfile.mkdtemp())
    copy([by_name["01_perceptron"], by_name["02_activation_functions"]], work / "root", "notebooks")
    lab = JupyterLab(work / "root", work / "state").start()
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(work / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                headless=True, viewport={"width": 1280, "height": 800},
            )
            view = NotebookView(browser.new_page(), lab).load()

            # 1. Math, then the code that computes it (02, section 1).
            view.open("notebooks/02_activation_functions.ipynb")
            view.run_all()
            _show_cell(view, 4)
            _save(view.screenshot(work / "notebook.png"), "lab-notebook.png")
            view.close_all()

            # 2. A slider that drives a figure (01, the perceptron's decision boundary).
            view.open("notebooks/01_perceptron.ipynb")
            view.run_all()
            view.move_first_slider()
            _show_cell(view, 18)
            view.page.locator(".jp-OutputArea-output .widget-slider").first.evaluate(
                "(el) => el.scrollIntoView({block: 'start'})"
            )
            _save(view.screenshot(work / "slider.png"), "lab-slider.png")
            view.close_all()

            # 3. The slides beside the notebook, from the toolbar's slideshow button (RISE).
            view.open("notebooks/01_perceptron.ipynb")
            _show_cell(view, 4)
            view.page.locator(
                ".jp-NotebookPanel-toolbar [data-jp-item-name='RISE-button'] button"
            ).first.click()
            frame = view.page.wait_for_selector("iframe[src*='/rise/']").content_frame()
            frame.wait_for_function(
                "() => document.querySelector('.reveal .slides > section.present') !== null",
                timeout=60_000,
            )
            view.page.wait_for_timeout(1500)
            _save(view.screenshot(work / "slides.png"), "lab-slides.png")
            view.close_all()
            browser.close()
    finally:
        lab.stop()


if __name__ == "__main__":
    sys.exit(main())
