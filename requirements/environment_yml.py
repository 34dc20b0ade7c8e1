"""Write environment.yml from requirements/lock.txt: conda users get the lock's exact versions.

Run by `make lock` after pip-compile; tests/test_environment.py checks that the two agree.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEADER = """\
# Conda environment for the course, written by `make lock` from requirements/lock.txt (do not edit
# by hand): the same exact versions as `make lab`. `conda env create -f environment.yml`, then
# `conda activate dl-course`. torch==2.13.0 takes PyTorch's CPU build where pip finds one; on
# Linux without it, add PyTorch's CPU wheel index with --extra-index-url (else CUDA's, larger).
name: dl-course
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def locked_pins(lock_text: str) -> list[str]:
    """The `name==version` lines of a pip-compile lock, in its order."""
    lines = lock_text.splitlines()
    return [line.strip() for line in lines if "==" in line and not line.startswith(("#", " "))]


def environment_yml(lock_text: str) -> str:
    pins = [f"      - {pin}\n" for pin in locked_pins(lock_text)]
    return HEADER + "".join(pins) + "      # the course's own package, editable\n      - -e .\n"


if __name__ == "__main__":
    text = environment_yml((ROOT / "requirements" / "lock.txt").read_text())
    target = ROOT / "environment.yml"
    temporary = target.with_suffix(".yml.tmp")
    temporary.write_text(text)
    temporary.replace(target)  # atomically
