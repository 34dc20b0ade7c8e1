"""Set-up: from a fresh clone to a working environment, as a student's first `make` does.

Clones the repository into a temporary folder, times `make install` there (venv creation and
every dependency, from the package index or pip's cache), and measures the environment's size.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()
               ) / 1e6


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "course"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        start = time.perf_counter()
        subprocess.run(["make", "install"], cwd=clone, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        size = _size_mb(clone / ".venv")
    return "\n".join([
        "### 4. Set-up",
        "",
        "A fresh clone, then `make install` (what `make lab` and `make test` do first); one run.",
        "",
        "| step | result |",
        "|---|---:|",
        f"| fresh clone to working environment | {seconds:.0f} s |",
        f"| `.venv` size on disk | {size:,.0f} MB |",
    ])
