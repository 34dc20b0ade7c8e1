"""A class's work for the exchange tests: a course directory, students' answers, their scores.

Shared by tests/test_exchange.py (students as separate HOMEs) and tests/classroom/ (students as
Unix users on a JupyterHub). The students do assignment 2 (the quickest to grade):

- `complete`: every answer from the source notebook's solutions, the written answer too;
- `partial`: the same, but `train_two_layer` left as the released stub (its test scores 0);
- `late`: complete, but submitted after the due date.

Expected scores come from the source notebook's points, not from stored numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
ASSIGNMENT = "a2_backprop_from_scratch"
# What each kind of student leaves as the released stub. This course names the test cell of
# answer X `test_X`.
BLANK = {"complete": (), "partial": ("train_two_layer",), "late": ()}
WRITTEN = "Central differences are accurate to O(eps^2); forward differences only to O(eps)."


def course_copy(destination: Path) -> Path:
    """A copy of the course directory (source, release, config, scripts), without results."""
    shutil.copytree(COURSE, destination, ignore=shutil.ignore_patterns(
        "submitted", "autograded", "feedback", "gradebook.db", "*.csv", "__pycache__"))
    return destination


def _source() -> nbformat.NotebookNode:
    return nbformat.read(COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def answered(released: nbformat.NotebookNode, kind: str) -> nbformat.NotebookNode:
    """The released notebook as a student of `kind` hands it in."""
    answers = {}
    for cell in _source().cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta["grade_id"] not in BLANK[kind]:
            answers[meta["grade_id"]] = WRITTEN if cell.cell_type == "markdown" else "\n".join(
                line for line in cell.source.splitlines() if "### BEGIN SOLUTION" not in line
                and "### END SOLUTION" not in line)
    for cell in released.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.source = answers.get(grade_id, cell.source)
    return released


def expected_score(kind: str) -> float:
    """The automatic score of a student of `kind`: every test's points but the blanks'."""
    tests = {cell.metadata["nbgrader"]["grade_id"]: float(cell.metadata["nbgrader"]["points"])
             for cell in _source().cells if cell.metadata.get("nbgrader", {}).get("grade")
             and not cell.metadata["nbgrader"].get("solution")}
    zero = {f"test_{grade_id}" for grade_id in BLANK[kind]}
    if not zero <= tests.keys():
        raise ValueError(f"no test cells {sorted(zero - tests.keys())} in {ASSIGNMENT}")
    return sum(points for grade_id, points in tests.items() if grade_id not in zero)


def gradebook_scores(db_url: str) -> dict[str, tuple[float, float]]:
    """student -> (score, seconds late) of ASSIGNMENT, read from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        return {s.student.id: (s.score, s.total_seconds_late)
                for s in gradebook.find_assignment(ASSIGNMENT).submissions}
