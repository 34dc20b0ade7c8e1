# The course's commands. Each one does its own set-up: on a fresh clone with Python 3.11 and
# make, `make lab` and `make test` create .venv, install the project into it, then run.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when the project's dependencies change.
STAMP  := $(VENV)/.installed

# JupyterLab refuses to run as root without --allow-root (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install lab test test-browser lint bench assignments grade clean site test-site

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port=8899"
LAB_ARGS ?=

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Unit tests and every lecture notebook, strictly (stored outputs must match).
# --dist loadfile keeps each notebook's cells on one worker. Two workers on two cores: one
# thread each for numpy's BLAS and torch, or their thread pools fight over the cores.
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

test: lint $(STAMP)
	$(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist loadfile tests
	$(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist loadfile --nbval --nbval-current-env notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg

# The course in a real browser: JupyterLab on a free loopback port, driven by Debian's Chromium
# (headless) through Playwright; runs every notebook, moves a slider, opens the slides. Chromium
# comes from apt (no browser download); screenshots go to build/browser/.
BROWSER_STAMP := $(VENV)/.installed-browser

$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,browser]'
	touch $(BROWSER_STAMP)

test-browser: $(BROWSER_STAMP)
	test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	DLCOURSE_BROWSER_TESTS=1 $(BIN)/python -m pytest -ra tests/browser

# The course as a static website (site/conf.py): the committed notebooks with their stored
# outputs (nothing is executed), the syllabus from this README, the assignments' student
# versions to download. Output: build/site/, for any static host. Sphinx and its theme come
# from the `site` extra; MathJax from npm (site/package-lock.json), copied into the site.
SITE_STAMP := $(VENV)/.installed-site
SITE_SRC   := build/site-src
MATHJAX    := site/node_modules/mathjax/es5/tex-svg-full.js

$(SITE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,site]'
	touch $(SITE_STAMP)

$(MATHJAX): site/package.json site/package-lock.json
	cd site && npm ci --ignore-scripts --no-audit --no-fund
	touch $(MATHJAX)

site: $(SITE_STAMP) $(MATHJAX)
	rm -rf $(SITE_SRC) build/site build/site-doctrees
	mkdir -p $(SITE_SRC)/notebooks
	cp site/*.md README.md $(SITE_SRC)/
	cp notebooks/[0-9][0-9]_*.ipynb $(SITE_SRC)/notebooks/
	$(BIN)/sphinx-build -b html -W --keep-going -q -c site -d build/site-doctrees $(SITE_SRC) build/site
	@echo "The website is in build/site/ (open build/site/index.html)"

# The website in headless Chromium (see test-browser): served on a loopback port, every
# request recorded; math, images, navigation, search, phone width.
test-site: site $(BROWSER_STAMP)
	test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	DLCOURSE_BROWSER_TESTS=1 DLCOURSE_SITE_TESTS=1 $(BIN)/python -m pytest -ra tests/browser/test_site.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Graded assignments (nbgrader; see assignments/README_SECTION.md). `assignments` writes the
# student versions, assignments/release/ (committed), from assignments/source/; `grade`
# autogrades assignments/submitted/<student>/<assignment>/ into assignments/grades.csv and
# assignments/feedback/.
assignments: $(STAMP)
	$(BIN)/python assignments/course.py release

grade: $(STAMP)
	$(BIN)/python assignments/course.py grade

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build site/node_modules
