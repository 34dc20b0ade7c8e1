"""Grading throughput: submissions autograded per minute by `make grade`.

In a temporary copy of the course directory, `STUDENTS` students each submit every assignment
(the source notebook itself: complete, correct answers), and `assignments/course.py grade`
(what `make grade` runs: autograde, feedback, grades.csv) grades them all in one run.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COURSE = Path(__file__).resolve().parents[1] / "assignments"
STUDENTS = 4


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "course"
        root.mkdir()
        shutil.copy(COURSE / "nbgrader_config.py", root)
        shutil.copytree(COURSE / "source", root / "source")
        assignments = sorted(p.name for p in (root / "source").iterdir() if p.is_dir())
        for student in range(STUDENTS):
            for assignment in assignments:
                folder = root / "submitted" / f"student{student}" / assignment
                folder.mkdir(parents=True)
                shutil.copy(root / "source" / assignment / f"{assignment}.ipynb", folder)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(COURSE / "course.py"), "grade", "--root", str(root)],
                       check=True, capture_output=True)
        seconds = time.perf_counter() - start
        with open(root / "grades.csv", newline="") as file:
            rows = list(csv.DictReader(file))
    graded = len(rows)
    scores = sorted({f'{r["score"]} / {r["max_score"]}' for r in rows})
    return "\n".join([
        "### 3. Grading throughput",
        "",
        f"`make grade` (nbgrader autograde, feedback, grades.csv) on {graded} submissions: "
        f"{STUDENTS} students x {len(assignments)} assignments, complete answers; one run. "
        "Written answers are left for the instructor: they stay pending.",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| submissions graded | {graded} (scores {', '.join(scores)}) |",
        f"| wall time | {seconds:.0f} s |",
        f"| seconds per submission | {seconds / graded:.1f} |",
        f"| submissions per minute | {graded / seconds * 60:.1f} |",
    ])
