"""Every lecture notebook starts with the set-up cell, and the cell does what it says.

The set-up cell makes `dlhelpers` importable when a notebook runs outside the course's
environment (a hosted notebook service, a plain pip environment): it installs the package from
the clone the notebook sits in, or from GitHub when there is no clone, and says so. Inside the
course's environment it prints nothing.

Here: the cell's text, its slide type and its (empty) committed output; that it prints nothing
where dlhelpers is importable; and, with the installer replaced by a recorder, which pip command
it would run in a clone and outside one. The real install into a fresh virtual environment
without dlhelpers is slow (torch) and runs in `make test-browser`
(tests/browser/test_setup_cell_fresh_venv.py).
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
GITHUB_SOURCE = "dlhelpers @ git+https://github.com/dl-course/intro-deep-learning"

SETUP_CELL = "\n".join(
    [
        "# Set-up: make `dlhelpers` importable when this notebook runs outside the course's"
        " environment",
        "# (a hosted notebook service, a plain pip environment). Inside `make lab` this does"
        " nothing.",
        "# Outside, pip installs dlhelpers with what it imports: numpy, matplotlib, scikit-learn,"
        " tqdm,",
        "# ipywidgets, and torch only where none is installed (a torch already there is kept)."
        " Up to",
        "# 5 minutes where torch is present (measured on a busy 2-core machine); more where pip"
        " must",
        "# download torch.",
        "import importlib.util, pathlib, subprocess, sys",
        'if importlib.util.find_spec("dlhelpers") is None:',
        "    _root = pathlib.Path.cwd().resolve().parent",
        '    _source = str(_root) if (_root / "dlhelpers").is_dir() else "dlhelpers @ git+" +'
        ' "https://github.com/dl-course/intro-deep-learning"',
        '    print(f"dlhelpers is not installed here: installing it from {_source} ...")',
        '    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", _source])',
        '    print("done.")',
    ]
)


def _first_cell(notebook: Path) -> dict:
    return json.loads(notebook.read_text())["cells"][0]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_starts_with_the_setup_cell(notebook):
    cell = _first_cell(notebook)
    assert cell["cell_type"] == "code"
    assert "".join(cell["source"]) == SETUP_CELL
    assert cell["outputs"] == [], "the set-up cell printed something in the course's environment"
    assert cell["metadata"].get("slideshow", {}).get("slide_type") == "skip", "not on a slide"


def test_setup_cell_prints_nothing_where_dlhelpers_is_importable():
    assert importlib.util.find_spec("dlhelpers") is not None
    result = subprocess.run(
        [sys.executable, "-c", SETUP_CELL], cwd=NOTEBOOK_DIR, capture_output=True, text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def _run_without_dlhelpers(cwd: Path, monkeypatch, capsys) -> tuple[list, str]:
    """Run the cell as if dlhelpers were missing; return the pip commands it ran and its output."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "dlhelpers" else real_find_spec(name, *args, **kwargs)

    monkeypatch.chdir(cwd)
    with mock.patch("importlib.util.find_spec", find_spec), \
            mock.patch("subprocess.check_call", return_value=0) as check_call:
        exec(SETUP_CELL, {"__name__": "__main__"})
    return [c.args[0] for c in check_call.call_args_list], capsys.readouterr().out


def _said(source: str) -> str:
    return f"dlhelpers is not installed here: installing it from {source} ...\ndone.\n"


def test_setup_cell_installs_from_the_clone_it_sits_in(monkeypatch, capsys):
    commands, out = _run_without_dlhelpers(NOTEBOOK_DIR, monkeypatch, capsys)
    assert commands == [[sys.executable, "-m", "pip", "install", "--quiet", str(ROOT)]]
    assert out == _said(str(ROOT))


def test_setup_cell_installs_from_github_outside_a_clone(tmp_path, monkeypatch, capsys):
    alone = tmp_path / "uploads"  # a notebook uploaded on its own to a hosted service
    alone.mkdir()
    commands, out = _run_without_dlhelpers(alone, monkeypatch, capsys)
    assert commands == [[sys.executable, "-m", "pip", "install", "--quiet", GITHUB_SOURCE]]
    assert out == _said(GITHUB_SOURCE)
