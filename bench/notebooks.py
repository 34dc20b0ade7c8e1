"""Notebook execution: every lecture notebook run headless, as a lecturer's laptop would.

Each notebook is executed `REPEATS` times with nbclient in a fresh kernel; reported are the
median seconds per notebook (kernel start excluded), its slowest cell, and the series' total.
Targets: each notebook under 10 s, no cell over 3 s, the whole series under 60 s.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REPEATS = 3
NOTEBOOK_LIMIT, CELL_LIMIT, SERIES_LIMIT = 10.0, 3.0, 60.0


def _cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z"))
            ).total_seconds()


def execute(path: Path) -> tuple[float, float, int]:
    """Run one notebook; return (seconds, slowest cell's seconds, slowest cell's index)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    # The kernel's stderr carries only its start-up chatter (errors reach the cells' outputs).
    with client.setup_kernel(stderr=subprocess.DEVNULL):
        start = time.perf_counter()
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
    cells = [(_cell_seconds(cell), index) for index, cell in enumerate(notebook.cells)]
    slowest, slowest_index = max(cells)
    return seconds, slowest, slowest_index


def run() -> str:
    rows, total = [], 0.0
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        runs = [execute(path) for _ in range(REPEATS)]
        seconds = statistics.median(r[0] for r in runs)
        slowest = max(runs, key=lambda r: r[1])
        total += seconds
        ok = seconds < NOTEBOOK_LIMIT and slowest[1] < CELL_LIMIT
        rows.append(f"| {path.name} | {seconds:.2f} | {slowest[1]:.2f} (cell {slowest[2]}) "
                    f"| {'yes' if ok else '**no**'} |")
    verdict = "yes" if total < SERIES_LIMIT else "**no**"
    return "\n".join([
        "### 2. Notebook execution",
        "",
        f"Each lecture notebook executed headless (nbclient, fresh kernel, start-up excluded), "
        f"median of {REPEATS} runs. Targets: under {NOTEBOOK_LIMIT:.0f} s per notebook, no cell "
        f"over {CELL_LIMIT:.0f} s, the series under {SERIES_LIMIT:.0f} s.",
        "",
        "| notebook | seconds | slowest cell, s | within targets |",
        "|---|---:|---:|:---:|",
        *rows,
        f"| **all {len(rows)}** | **{total:.1f}** | | {verdict} |",
    ])
