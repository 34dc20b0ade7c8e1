"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium per run.

These tests need Debian's Chromium and the `browser` extra (Playwright); `make test-browser`
installs both and sets DLCOURSE_BROWSER_TESTS=1. Without it (as in `make test`) every test in
this folder is skipped.
"""

import os
import shutil
from pathlib import Path

import pytest
from lab_harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FIXTURES,
    HERE,
    NOTEBOOKS,
    SCREENSHOTS,
    JupyterLab,
    NotebookView,
    copy_notebooks,
)

ENABLED = os.environ.get("DLCOURSE_BROWSER_TESTS") == "1"


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="browser test: run it with `make test-browser`")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the lecture notebooks and of the fixtures."""
    root = tmp_path_factory.mktemp("lab-root")
    copy_notebooks(NOTEBOOKS, root, "notebooks")
    copy_notebooks(FIXTURES, root, "fixtures")
    server = JupyterLab(root, tmp_path_factory.mktemp("lab-state"))
    server.start()
    try:
        yield server
    finally:
        log = server.log()
        server.stop()
        shutil.copyfile(server.log_path, tmp_path_factory.getbasetemp() / "jupyterlab.log")
        if "Traceback" in log:
            print(f"JupyterLab's log ends with:\n{log}")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """Debian's Chromium, driven by Playwright, with a fresh profile."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def lab_tab(chromium, lab):
    """One browser tab with JupyterLab loaded."""
    tab = chromium.new_page()
    tab.set_default_timeout(30_000)
    yield NotebookView(tab, lab).load()
    tab.close()


@pytest.fixture
def view(lab_tab):
    """JupyterLab with nothing open; notebooks the test opens are closed, kernels shut down."""
    del lab_tab.errors[:]
    yield lab_tab
    lab_tab.close_all()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
