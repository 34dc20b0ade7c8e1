"""The course's website (`make site`, build/site/) in headless Chromium, served on loopback.

What a reader on a desk or on a phone, with no network beyond the site, must get: every request
answered by the site itself, math typeset, figures shown, widgets not shown as their text
fallback, solutions collapsed, previous/next links in lecture order, a working search, and pages
that fit a 375 px screen. The expected counts come from the committed notebooks themselves.
`make test-site` builds the site, then runs this file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lab_harness import IMAGE_MIMES, NOTEBOOKS, ROOT, SCREENSHOTS, WIDGET_MIME, free_port

# `make test-browser` (the course in JupyterLab) leaves these to `make test-site`, which
# builds the site first.
pytestmark = pytest.mark.skipif(
    os.environ.get("DLCOURSE_SITE_TESTS") != "1", reason="site test: run it with `make test-site`"
)

SITE = ROOT / "build" / "site"
RELEASED = sorted((ROOT / "assignments" / "release").glob("*/*.ipynb"))
# Three lectures in detail: the first slider, the most figures and formulas, the last one.
CHECKED = ["01_perceptron", "05_gradient_descent", "09_capstone_digits"]
PHONE = {"width": 375, "height": 812}


def notebook_facts(path: Path) -> dict[str, int]:
    """What the page of a committed notebook must show, counted from the notebook."""
    cells = json.loads(path.read_text())["cells"]
    outputs = [out for cell in cells if cell["cell_type"] == "code" for out in cell["outputs"]]
    markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return {
        # an output with a widget view shows no picture of its own
        "images": sum(
            WIDGET_MIME not in out.get("data", {})
            and any(m in out.get("data", {}) for m in IMAGE_MIMES)
            for out in outputs
        ),
        "widgets": sum(WIDGET_MIME in out.get("data", {}) for out in outputs),
        "details": len(re.findall(r"<details\b", markdown)),
        "math": markdown.count("$"),
    }


@pytest.fixture(scope="module")
def site_url():
    """build/site/ served by Python's http.server on a free loopback port."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"{SITE} has no index.html: build it with `make site`")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(SITE)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"http.server did not answer on {url}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


class Tab:
    """One browser page that records every request: failed ones and any leaving the site."""

    def __init__(self, context, site_url: str, viewport: dict | None = None):
        self.site = urlsplit(site_url).netloc
        self.page = context.new_page()
        self.page.set_default_timeout(60_000)  # generous: a busy 2-core machine
        if viewport:
            self.page.set_viewport_size(viewport)
        self.failures: list[str] = []
        self.page.on("request", self._request)
        self.page.on("requestfailed", lambda r: self.failures.append(f"{r.url}: {r.failure}"))
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda e: self.failures.append(f"JavaScript error: {e}"))

    def _request(self, request):
        if urlsplit(request.url).scheme not in ("data", "blob") and (
            urlsplit(request.url).netloc != self.site
        ):
            self.failures.append(f"{request.url}: leaves the site")

    def _response(self, response):
        if response.status >= 400:
            self.failures.append(f"{response.url}: HTTP {response.status}")

    def open(self, url: str):
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def typeset(self) -> None:
        """Wait until MathJax has typeset the page (Sphinx loads it only where there is math)."""
        if self.page.locator(".math").count() == 0:
            return
        self.page.wait_for_function("window.MathJax && window.MathJax.startup")
        self.page.evaluate("MathJax.startup.promise")

    def close(self):
        self.page.close()


@pytest.fixture
def tab(chromium, site_url):
    tab = Tab(chromium, site_url)
    yield tab
    tab.close()


def page_url(site_url: str, stem: str) -> str:
    return f"{site_url}notebooks/{stem}.html"


# Text of the page a reader sees, without code (a formula in a code cell's string is code).
READ_TEXT = """() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('pre, code, script, mjx-container, .cell_input').forEach(e => e.remove());
  return main.innerText;
}"""

IMAGES = """() => Array.from(document.querySelectorAll('main img')).map(img => ({
  src: img.currentSrc, width: img.naturalWidth, output: !!img.closest('.cell_output')}))"""


# The elements that stick out of a phone's screen without a scroll box of their own.
WIDE_ELEMENTS = """() => Array.from(document.querySelectorAll('main *')).filter(e => {
  if (e.getBoundingClientRect().right <= window.innerWidth + 1) return false;
  for (let box = e.parentElement; box; box = box.parentElement)
    if (getComputedStyle(box).overflowX !== 'visible') return false;
  return true;
}).map(e => e.tagName + ': ' + e.innerText.slice(0, 60))"""


def overflow(page) -> int:
    """How many pixels the page is wider than the screen (0: nothing scrolls sideways)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def save_screenshot(page, name: str) -> None:
    """A small PNG of what is on screen, in build/browser/ (for people to look at)."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)


def test_home_page_is_the_syllabus_with_every_lecture_in_order(tab, site_url):
    page = tab.open(site_url)
    tab.typeset()
    assert page.title().startswith("Introduction to Deep Learning")
    syllabus = page.eval_on_selector_all(
        "main table a.reference.internal", "links => links.map(a => a.getAttribute('href'))"
    )
    assert syllabus == [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
    sidebar = page.eval_on_selector_all(
        "nav.bd-links a.reference.internal", "links => links.map(a => a.getAttribute('href'))"
    )
    assert sidebar[: len(NOTEBOOKS)] == [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
    assert "$" not in page.evaluate(READ_TEXT)
    assert tab.failures == []


def test_the_two_commands_and_the_assignments_to_download(tab, site_url):
    page = tab.open(site_url + "run-locally.html")
    commands = page.inner_text("main")
    assert "make lab" in commands and "make test" in commands

    page = tab.open(site_url + "assignments.html")
    links = page.eval_on_selector_all(
        "main a.download", "links => links.map(a => [a.innerText, a.href])"
    )
    assert sorted(text for text, _ in links) == [nb.stem for nb in RELEASED]
    for nb in RELEASED:
        href = next(h for text, h in links if text == nb.stem)
        response = page.request.get(href)
        assert response.ok, href
        assert response.body() == nb.read_bytes(), f"{href} is not {nb}"
    assert tab.failures == []


@pytest.mark.parametrize("stem", CHECKED)
def test_a_lecture_page_shows_math_figures_and_collapsed_solutions(tab, site_url, stem):
    path = next(nb for nb in NOTEBOOKS if nb.stem == stem)
    facts = notebook_facts(path)
    page = tab.open(page_url(site_url, stem))
    tab.typeset()

    # Math: every formula typeset by MathJax (SVG), none left as TeX source.
    formulas = page.locator("main .math").count()
    assert formulas > 0 and facts["math"] > 0
    assert page.locator("main .math > mjx-container > svg").count() == formulas
    text = page.evaluate(READ_TEXT)
    assert "$$" not in text and "\\(" not in text and "\\[" not in text

    # Figures: one picture per image output, every one loaded.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    images = page.evaluate(IMAGES)
    assert [img for img in images if img["width"] == 0] == []
    assert sum(img["output"] for img in images) == facts["images"]

    # Widgets: no text fallback; a note where each one would be.
    assert "interactive(children=" not in text and "VBox(children=" not in text
    notes = page.eval_on_selector_all(
        f"main .cell_output:has(script[type='{WIDGET_MIME}'])",
        "outputs => outputs.map(o => getComputedStyle(o, '::before').content)",
    )
    assert len(notes) == facts["widgets"]
    assert all("run the notebook in Jupyter" in note for note in notes), notes

    # Solutions: as many <details> as the notebook has, all closed.
    assert page.locator("main details").count() == facts["details"]
    assert page.locator("main details[open]").count() == 0

    if stem == CHECKED[1]:  # on a desk: the first section, its formulas and code
        page.locator("main section section").first.evaluate(
            "s => window.scrollTo(0, s.getBoundingClientRect().top + window.scrollY - 60)"
        )
        save_screenshot(page, "site-desktop.png")

    # The notebook itself, to download and run: the committed file, byte for byte.
    download = page.locator("a[href$='.ipynb']").first
    assert page.request.get(download.evaluate("a => a.href")).body() == path.read_bytes()

    assert tab.failures == []


def test_previous_and_next_follow_the_lecture_order(tab, site_url):
    stems = [nb.stem for nb in NOTEBOOKS]
    middle = stems.index(CHECKED[1])
    page = tab.open(page_url(site_url, stems[middle]))
    assert page.get_attribute("a.left-prev", "href") == f"{stems[middle - 1]}.html"
    page.click("a.right-next")
    page.wait_for_url(page_url(site_url, stems[middle + 1]))
    page.click("a.left-prev")
    page.wait_for_url(page_url(site_url, stems[middle]))

    page = tab.open(site_url)
    page.click("a.right-next")
    page.wait_for_url(page_url(site_url, stems[0]))
    assert tab.failures == []


def test_search_finds_the_lecture(tab, site_url):
    page = tab.open(site_url)
    page.keyboard.press("Control+k")  # the theme's search shortcut opens the search box
    box = page.locator("input[name='q']:visible").first
    box.fill("backpropagation")
    box.press("Enter")
    page.wait_for_url(re.compile(r"search\.html\?q=backpropagation"))
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for()
    hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert any("06_backpropagation" in href for href in hrefs), hrefs
    assert tab.failures == []


def test_every_page_fits_a_phone_screen(chromium, site_url):
    """At 375 px, wide code, formulas and tables scroll inside their own boxes; no page does."""
    pages = ["", "run-locally.html", "assignments.html"]
    pages += [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
    tab = Tab(chromium, site_url, viewport=PHONE)
    try:
        too_wide = {}
        for path in pages:
            page = tab.open(site_url + path)
            tab.typeset()
            if overflow(page) > 0:
                too_wide[path] = page.evaluate(WIDE_ELEMENTS)
            if path == f"notebooks/{CHECKED[1]}.html":
                save_screenshot(page, "site-phone.png")
        assert too_wide == {}
        assert tab.failures == []
    finally:
        tab.close()


def test_no_page_loads_anything_from_elsewhere():
    """Every script, style sheet, image and font of every page comes from the site (no CDN)."""
    loads = re.compile(r"<(?:script|img|link|source|iframe)\b[^>]*?(?:src|href)=\"(//|https?:)")
    pages = sorted(SITE.rglob("*.html"))
    assert len(pages) > len(NOTEBOOKS)
    found = [(str(p.relative_to(SITE)), m.group(0)) for p in pages for m in loads.finditer(
        p.read_text())]
    assert found == []
