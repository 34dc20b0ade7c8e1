"""The course as a static website: Sphinx + MyST-NB + sphinx-book-theme (`make site`).

The pages are the committed, executed lecture notebooks, rendered with their stored outputs:
nothing is executed. `make site` gathers the sources in build/site-src/ (this folder's pages,
README.md, whose intro, commands and syllabus the pages include, and notebooks/) and builds
them with this configuration (`sphinx-build -c site`).
Everything a page loads is in the site itself: the theme's assets, the search index and MathJax
(from the npm package pinned in `package.json`, which `make site` installs into
`site/node_modules`). Output: build/site/, ready for any static host (GitHub Pages: see README).
"""

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "Introduction to Deep Learning"
author = "the course's authors"
copyright = "the course's authors, MIT licence"

extensions = ["myst_nb", "sphinx.ext.mathjax", "sphinx.ext.githubpages"]

# The site's own pages and the lecture series, nothing else.
root_doc = "index"
include_patterns = ["*.md", "notebooks/[0-9][0-9]_*.ipynb"]
exclude_patterns = ["README.md"]  # included in parts by the pages, not a page of its own

# The notebooks are committed executed: show their stored outputs, never run them.
nb_execution_mode = "off"
# No ipywidgets JavaScript (it would come from a CDN, and without a kernel a slider does
# nothing): a widget's output is left as its inert view reference, which the page does not
# show; static/course.css puts a one-line note in its place. Each notebook draws the
# widget's default figure in the cell before it.
nb_ipywidgets_js = {}
# Markdown as Jupyter reads it: $...$ and $$...$$ math, bare \begin{align} blocks, <img> tags.
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
# Headings get anchors, so a lecturer can link to a section.
myst_heading_anchors = 3

# MathJax 3 from site/node_modules, copied into _static: the SVG build with every TeX
# extension, a single file that loads nothing else.
MATHJAX = HERE / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"
if not MATHJAX.is_file():
    raise FileNotFoundError(f"{MATHJAX} is missing: `make site` installs it (npm ci in site/)")
mathjax_path = MATHJAX.name

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["static", str(MATHJAX)]
html_css_files = ["course.css"]
html_show_sourcelink = False
html_theme_options = {
    "repository_url": "https://github.com/dl-course/intro-deep-learning",
    "use_repository_button": True,
    "use_download_button": True,  # the page's .ipynb, to run it yourself
    "show_toc_level": 2,
    "navigation_with_keys": True,
}


def _assignment_links(app, docname, source):
    """Fill `<!-- assignment downloads -->` on the assignments page: one link per student
    version in assignments/release/."""
    if docname != "assignments":
        return
    notebooks = sorted((ROOT / "assignments" / "release").glob("*/*.ipynb"))
    if not notebooks:
        raise FileNotFoundError("assignments/release/ holds no student notebooks")
    links = "\n".join(
        f"- {{download}}`{nb.stem} <{os.path.relpath(nb, app.srcdir)}>`" for nb in notebooks
    )
    source[0] = source[0].replace("<!-- assignment downloads -->", links)


def _leave_out_skipped_cells(app, docname, source):
    """Leave out of a lecture's page the cells its slides skip (slide type Skip: the set-up
    cell that makes `dlhelpers` importable); the downloadable notebook keeps them."""
    if not docname.startswith("notebooks/"):
        return
    notebook = json.loads(source[0])
    for cell in notebook["cells"]:
        if cell["metadata"].get("slideshow", {}).get("slide_type") == "skip":
            tags = cell["metadata"].setdefault("tags", [])
            tags.append("remove-cell")
    source[0] = json.dumps(notebook)


def setup(app):
    app.connect("source-read", _assignment_links)
    app.connect("source-read", _leave_out_skipped_cells)
