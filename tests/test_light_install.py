"""`pip install .` where a torch is already installed keeps that torch and pulls no JupyterLab.

A hosted notebook service (Colab, a JupyterHub image) has its own torch and its own Jupyter; the
notebooks' set-up cell installs dlhelpers there. This builds a fresh virtual environment, installs
torch 2.13.0 into it (the CPU build pip finds on the course machines), then `pip install` this
project, and checks what changed. It takes about a minute (measured: see README); pip takes
packages from its cache and the machine's wheel folders where it can.
"""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE_ONLY = {"jupyterlab", "notebook", "nbgrader", "jupyterlab-rise", "nbval", "pytest",
               "jupyter-server", "nbconvert", "playwright"}


def _installed(python: Path) -> dict[str, str]:
    listing = subprocess.run([python, "-m", "pip", "list", "--format=json"], check=True,
                             capture_output=True, text=True).stdout
    return {package["name"].lower(): package["version"] for package in json.loads(listing)}


def _pip(python: Path, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "install", "--quiet", *args], check=True, timeout=900)


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU torch wheel is on the course machines")
def test_pip_install_keeps_the_torch_it_finds_and_installs_no_jupyterlab(tmp_path):
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    _pip(python, "torch==2.13.0")
    torch_before = _installed(python)["torch"]

    _pip(python, str(ROOT))

    installed = _installed(python)
    assert installed["torch"] == torch_before, "pip replaced the torch that was there"
    assert "dlhelpers" in installed
    assert COURSE_ONLY & set(installed) == set(), "the library pulled in the course environment"
    subprocess.run([python, "-c", "import dlhelpers.train, dlhelpers.plot, dlhelpers.data"],
                   check=True, cwd=tmp_path)
