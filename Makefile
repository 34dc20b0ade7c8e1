# The course's commands. Each one does its own set-up: on a fresh clone with Python 3.11 and
# make, `make lab` and `make test` create .venv, install the project into it, then run.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when the lock or the project's dependencies change.
STAMP  := $(VENV)/.installed
# The course environment at exact versions (pip-compile; `make lock` regenerates it).
LOCK   := requirements/lock.txt

# JupyterLab refuses to run as root without --allow-root (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help install lab working-copies first-run-note test test-browser lint bench assignments \
	grade clean lock notebooks test-lowest site test-site

help:
	@echo "The course's commands (each one sets up .venv on first use):"
	@echo "  make lab            open the course in JupyterLab, on your own copies of the notebooks"
	@echo "                      in $(WORK)/ (git-ignored; new notebooks after a git pull are added,"
	@echo "                      yours are never overwritten)"
	@echo "  make test           lint, unit tests and every notebook (strict nbval)"
	@echo "  make test-browser   the course in JupyterLab in headless Chromium"
	@echo "  make lint           ruff"
	@echo "  make bench          benchmarks; writes bench/RESULTS.md"
	@echo "  make assignments    regenerate the students' versions in assignments/release/"
	@echo "  make grade          autograde assignments/submitted/ into assignments/grades.csv"
	@echo "  make release ASSIGNMENT=a1_... [DUE=\"2026-12-04 17:00 UTC\"]   a class on JupyterHub:"
	@echo "                      hand out through nbgrader's exchange; then make collect ASSIGNMENT=...,"
	@echo "                      make grade, make late, make return-feedback ASSIGNMENT=..."
	@echo "  make lab-instructor JupyterLab in assignments/ with nbgrader's formgrader"
	@echo "  make test-classroom the class on a real JupyterHub with Unix users (as root)"
	@echo "  make site           the course as a static website in build/site/ (make test-site checks it)"
	@echo "  make install        only create .venv and install the course into it"
	@echo "  make lock           re-pin requirements/lock.txt (and environment.yml) after a change"
	@echo "                      to pyproject.toml's dependencies"
	@echo "  make test-lowest    the unit tests at the lowest versions pyproject.toml allows"
	@echo "  make notebooks      re-execute the lecture notebooks in place (NB=one notebook)"
	@echo "  make clean          delete .venv and build outputs (not $(WORK)/)"
	@echo "JupyterLab options go in LAB_ARGS, for example:"
	@echo '  make lab LAB_ARGS="--no-browser --port=8899"'

install: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-pin the course environment after a change to pyproject.toml's dependencies (pins that still
# fit are kept; `make lock LOCK_ARGS=--upgrade` moves every package to its newest allowed release),
# then write environment.yml from it. pip-compile runs pip's resolver with pip's own settings, so
# torch==2.13.0 resolves to the CPU build pip finds on this machine; the lock then keeps torch's
# public version (`+cpu` dropped): PyPI has no `+cpu` build, so `torch==2.13.0` installs the CPU
# build where the machine has it, and PyPI's own build elsewhere (macOS, Windows, other Linux).
LOCK_ARGS ?=

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.6,<8'
	$(BIN)/pip-compile --quiet --all-extras --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links $(LOCK_ARGS) --output-file=$(LOCK) pyproject.toml
	sed -i 's/^torch==\([^+]*\)+cpu$$/torch==\1/' $(LOCK)
	$(BIN)/python requirements/environment_yml.py

# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port=8899"
LAB_ARGS ?=
# The student's own copies of the notebooks: git ignores them, so `git pull` never conflicts
# with their edits, and the tracked notebooks stay pristine for nbval.
WORK := work

# The server's root is the course folder, so the assignments (assignments/submitted/<you>/)
# are in the same file browser; it opens on work/. A setuptools notice about editable
# installs, printed on the first install, is only noise: it is filtered out.
lab: export PYTHONWARNINGS := ignore:Editable installation:UserWarning
# The students' JupyterLab: assignments/student-config/ switches nbgrader's authoring tools off
# (`make lab-instructor` has them) and names the course and its exchange.
lab: export JUPYTER_CONFIG_PATH := $(CURDIR)/assignments/student-config
lab: first-run-note $(STAMP) working-copies
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/$(WORK) \
		$(ROOT_FLAG) $(LAB_ARGS)

first-run-note:
	@test -e $(STAMP) || echo "First run: installing the course into .venv (Python packages:" \
		"JupyterLab, PyTorch for CPU, numpy, matplotlib, scikit-learn, nbgrader, test tools)." \
		"About 1.7 GB on disk; 1 to 2 minutes, longer on a slow connection. Later runs start" \
		"at once."

# Copies each notebook that work/ lacks (written to a temporary name, then renamed); an
# existing copy, edited or not, is left alone.
working-copies:
	@mkdir -p $(WORK)
	@added=""; kept=0; \
	for notebook in notebooks/[0-9][0-9]_*.ipynb; do \
		copy=$(WORK)/$${notebook##*/}; \
		if [ -e "$$copy" ]; then kept=$$((kept + 1)); \
		else cp "$$notebook" "$$copy.tmp" && mv "$$copy.tmp" "$$copy" && added="$$added $${copy##*/}"; fi; \
	done; \
	echo "Your notebooks are in $(WORK)/ (git ignores it). Added:$${added:- none}." \
		"Kept as they are: $$kept."

lint: $(STAMP)
	$(BIN)/ruff check .

# Unit tests and every lecture notebook, strictly (stored outputs must match).
# --dist loadfile keeps each notebook's cells on one worker. Two workers on two cores: one
# thread each for numpy's BLAS and torch, or their thread pools fight over the cores.
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

NBVAL := --nbval --nbval-current-env notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg

# The notebooks twice: with torch's best kernels for this CPU, then with its plain ones
# (ATEN_CPU_CAPABILITY=default), so that a printed digit that depends on the kernel fails here
# and not on a student's machine.
test: lint $(STAMP)
	$(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist loadfile tests
	$(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist loadfile $(NBVAL)
	ATEN_CPU_CAPABILITY=default $(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist loadfile $(NBVAL)

# Re-execute the lecture notebooks in place, each in a fresh kernel, one thread (as nbval runs
# them), so their committed outputs are current. One notebook: make notebooks NB=notebooks/06_*.ipynb
NB ?= notebooks/[0-9][0-9]_*.ipynb

notebooks: $(STAMP)
	for notebook in $(NB); do \
		$(ONE_THREAD) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False "$$notebook" || exit 1; \
	done

# dlhelpers' unit tests at the lower bounds of its dependencies (requirements/lowest.py turns each
# `>=low` of pyproject.toml into `==low`), in a venv of their own. The tests of the course
# environment (JupyterLab, nbgrader, the lock, the notebooks) need the lock and are left out.
LOWEST := .venv-lowest
COURSE_TESTS := test_make_lab.py test_assignments.py test_environment.py test_light_install.py \
	test_setup_cell.py test_printed_digits.py test_exchange.py test_kernels.py browser classroom

test-lowest: $(STAMP)
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet $$($(BIN)/python requirements/lowest.py)
	$(LOWEST)/bin/python -m pip install --quiet --no-deps -e .
	$(ONE_THREAD) $(LOWEST)/bin/python -m pytest -p no:cacheprovider -q -n 2 --dist loadfile tests \
		$(addprefix --ignore=tests/,$(COURSE_TESTS))

# The course in a real browser: JupyterLab on a free loopback port, driven by Debian's Chromium
# (headless) through Playwright; runs every notebook, moves a slider, opens the slides. Chromium
# comes from apt (no browser download); screenshots go to build/browser/.

test-browser: $(STAMP)
	test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	DLCOURSE_BROWSER_TESTS=1 $(BIN)/python -m pytest -ra tests/browser

# The course as a static website (site/conf.py): the committed notebooks with their stored
# outputs (nothing is executed), the syllabus from this README, the assignments' student
# versions to download. Output: build/site/, for any static host. Sphinx and its theme come
# from the `site` extra (in the lock); MathJax from npm (site/package-lock.json), copied into the site.
SITE_SRC   := build/site-src
MATHJAX    := site/node_modules/mathjax/es5/tex-svg-full.js

$(MATHJAX): site/package.json site/package-lock.json
	cd site && npm ci --ignore-scripts --no-audit --no-fund
	touch $(MATHJAX)

site: $(STAMP) $(MATHJAX)
	rm -rf $(SITE_SRC) build/site build/site-doctrees
	mkdir -p $(SITE_SRC)/notebooks
	cp site/*.md README.md $(SITE_SRC)/
	cp notebooks/[0-9][0-9]_*.ipynb $(SITE_SRC)/notebooks/
	$(BIN)/sphinx-build -b html -W --keep-going -q -c site -d build/site-doctrees $(SITE_SRC) build/site
	@echo "The website is in build/site/ (open build/site/index.html)"

# The website in headless Chromium (see test-browser): served on a loopback port, every
# request recorded; math, images, navigation, search, phone width.
test-site: site $(STAMP)
	test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	DLCOURSE_BROWSER_TESTS=1 DLCOURSE_SITE_TESTS=1 $(BIN)/python -m pytest -ra tests/browser/test_site.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Graded assignments (nbgrader; see the README, "Teaching with this course"). `assignments` writes the
# student versions, assignments/release/ (committed), from assignments/source/; `grade`
# autogrades assignments/submitted/<student>/<assignment>/ into assignments/grades.csv,
# assignments/grades/ and assignments/feedback/, in parallel; e.g. GRADE_ARGS="--jobs 4 --force".
GRADE_ARGS ?=
assignments: $(STAMP)
	$(BIN)/python assignments/course.py release

grade: $(STAMP)
	$(BIN)/python assignments/course.py grade $(GRADE_ARGS)

# A class on JupyterHub, through nbgrader's exchange (README: "Running a class on JupyterHub").
# make release ASSIGNMENT=a1_perceptron_activations DUE="2026-12-04 17:00 UTC"
# (students fetch and submit), make collect ASSIGNMENT=..., make grade, make late,
# make return-feedback ASSIGNMENT=...
.PHONY: release collect late return-feedback lab-instructor test-classroom
ASSIGNMENT ?=
DUE ?=

release: $(STAMP)
	$(BIN)/python assignments/exchange.py release $(ASSIGNMENT) $(if $(DUE),--due "$(DUE)")

collect: $(STAMP)
	$(BIN)/python assignments/exchange.py collect $(ASSIGNMENT)

late: $(STAMP)
	$(BIN)/python assignments/exchange.py late

return-feedback: $(STAMP)
	$(BIN)/python assignments/exchange.py return $(ASSIGNMENT)

# The instructor's JupyterLab: in the course directory, with nbgrader's formgrader and Create
# Assignment (`make lab` is the students' JupyterLab, without them).
lab-instructor: $(STAMP)
	@test -d /srv/nbgrader/exchange || echo "no exchange folder: Formgrader's release and collect need one (sudo mkdir -p /srv/nbgrader/exchange && sudo chmod 777 /srv/nbgrader/exchange)"
	cd assignments && ../$(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS)

# JupyterHub (PyPI) with configurable-http-proxy (npm, installed under build/classroom/) on
# 127.0.0.1, three students and a grader as Unix users (needs root); and a PostgreSQL gradebook.
CHP := build/classroom/node_modules/.bin/configurable-http-proxy

$(CHP):
	command -v npm || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm; }
	npm install --no-audit --no-fund --prefix build/classroom 'configurable-http-proxy@^4.6'

test-classroom: $(STAMP) $(CHP)
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }
	DLCOURSE_CLASSROOM_TESTS=1 $(ONE_THREAD) $(BIN)/python -m pytest -ra -s tests/classroom

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build site/node_modules
