"""Grading throughput: `make grade` (assignments/course.py) against nbgrader's own commands.

In temporary copies of the course directory, `STUDENTS` students each submit every assignment
(the source notebook itself: complete, correct answers). Measured in the same run, one after
the other, on the same submissions:

- nbgrader's own way, serial: `nbgrader autograde` then `nbgrader generate_feedback` (the
  commands an instructor would run by hand; `generate_assignment` before them, not timed);
- `course.py grade --force --jobs J` for each J in `JOBS` (after one untimed run that records
  the assignments in the gradebook, as generate_assignment does for nbgrader);
- `course.py grade` again with nothing changed (what a second `make grade` costs).

The machine may be shared: absolute times drift, so compare the ratios within one run.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COURSE = Path(__file__).resolve().parents[1] / "assignments"
STUDENTS = 4
JOBS = (1, 2)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _course(root: Path) -> list[str]:
    root.mkdir()
    shutil.copy(COURSE / "nbgrader_config.py", root)
    shutil.copytree(COURSE / "source", root / "source")
    assignments = sorted(p.name for p in (root / "source").iterdir() if p.is_dir())
    for student in range(STUDENTS):
        for assignment in assignments:
            folder = root / "submitted" / f"student{student}" / assignment
            folder.mkdir(parents=True)
            shutil.copy(root / "source" / assignment / f"{assignment}.ipynb", folder)
    return assignments


def _seconds(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def _course_py(root: Path, *options: str) -> float:
    return _seconds([sys.executable, str(COURSE / "course.py"), "grade", "--root", str(root),
                     *options], root)


def run() -> str:
    nbgrader = [sys.executable, "-m", "nbgrader"]
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours", Path(tmp) / "nbgrader"
        assignments = _course(ours)
        _course(theirs)
        _seconds([*nbgrader, "generate_assignment", "*", "--force"], theirs)
        baseline = (_seconds([*nbgrader, "autograde", "*", "--force"], theirs)
                    + _seconds([*nbgrader, "generate_feedback", "*", "--force"], theirs))
        graded_by_nbgrader = len(list((theirs / "feedback").rglob("*.html")))
        _course_py(ours)  # records the assignments in the gradebook; grades once (warm-up)
        seconds = {jobs: _course_py(ours, "--force", "--jobs", str(jobs)) for jobs in JOBS}
        unchanged = _course_py(ours)
        with open(ours / "grades.csv", newline="") as file:
            rows = list(csv.DictReader(file))
    n = len(rows)
    assert graded_by_nbgrader == n, (graded_by_nbgrader, n)
    scores = sorted({f'{r["score"]} / {r["max_score"]}' for r in rows})
    lines = [
        "### 3. Grading throughput",
        "",
        f"{n} submissions ({STUDENTS} students x {len(assignments)} assignments, complete "
        f"answers; scores {', '.join(scores)}, the written answers pending), graded by "
        "nbgrader's own serial `autograde` + `generate_feedback` and by `make grade` "
        f"(`assignments/course.py grade`) on {os.cpu_count()} cores, one after the other in "
        "one run. The machine may be shared: compare the ratios.",
        "",
        "| grading | wall time | submissions per minute | speed-up over nbgrader |",
        "|---|---:|---:|---:|",
        f"| nbgrader autograde + generate_feedback (serial) | {baseline:.0f} s | "
        f"{n / baseline * 60:.1f} | 1.0x |",
    ]
    lines += [f"| `course.py grade --force --jobs {jobs}` | {s:.0f} s | {n / s * 60:.1f} | "
              f"{baseline / s:.1f}x |" for jobs, s in seconds.items()]
    lines.append(f"| `course.py grade` again, nothing changed | {unchanged:.1f} s | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
