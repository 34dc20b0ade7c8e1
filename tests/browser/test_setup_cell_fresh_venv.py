"""The set-up cell, run in a fresh virtual environment without dlhelpers, installs it and says so.

A student's plain pip environment, simulated: a bare venv (no system site-packages, nothing but
pip), a copy of the clone, and the first cell of a lecture notebook run with the notebook
folder as working directory. Slow (it installs torch, jupyterlab, ...), so it runs in
`make test-browser`; tests/test_setup_cell.py checks the cell's text and branches quickly.
"""

import json
import os
import shutil
import subprocess
import venv

import pytest
from lab_harness import NOTEBOOKS, ROOT

# What a clone holds that `pip install <clone>` reads.
CLONE_FILES = ["pyproject.toml", "README.md", "LICENSE", "dlhelpers"]


def _python(env_dir):
    return str(env_dir / "bin" / "python")


def _run(command, cwd, timeout):
    # The caller's virtual environment must not leak into the bare one.
    leaks = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in leaks}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(not NOTEBOOKS, reason="no lecture notebook yet")
def test_setup_cell_installs_dlhelpers_in_a_fresh_venv(tmp_path):
    setup_cell = "".join(json.loads(NOTEBOOKS[0].read_text())["cells"][0]["source"])
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    for name in CLONE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, clone / name)
    env_dir = tmp_path / "student-venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = _python(env_dir)

    missing = _run([python, "-c", "import dlhelpers"], clone / "notebooks", 60)
    assert "ModuleNotFoundError" in missing.stderr, "the fresh venv already has dlhelpers"

    first = _run([python, "-c", setup_cell], clone / "notebooks", 1800)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.splitlines() == [
        f"dlhelpers is not installed here: installing it from {clone} ...",
        "done.",
    ]

    # Installed into the venv (not just importable from the clone) and usable.
    check = _run(
        [python, "-c", "import dlhelpers, torch; print(dlhelpers.__file__); "
         "print(dlhelpers.sigmoid(0.0))"],
        env_dir, 120,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    location, value = check.stdout.splitlines()
    assert location.startswith(str(env_dir)), location
    assert float(value) == 0.5

    again = _run([python, "-c", setup_cell], clone / "notebooks", 120)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
