"""Grades on record: nbgrader's gradebook and the grades CSV files.

The gradebook is nbgrader's (`CourseDirectory.db_url` in nbgrader_config.py; by default SQLite,
`gradebook.db` in the course directory): the automatic scores are saved there with nbgrader's
own SaveAutoGrades, so formgrader shows them, and the written answers' manual scores given in
formgrader are read back from it. Only the main process writes to it.

CSV files: `grades/<assignment>.csv` has one row per student and one column per graded part of
that assignment; `grades.csv` has one row per student and assignment with the totals.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import nbformat

from grading.feedback import write_atomically

SUMMARY = ["student", "assignment", "score", "max_score", "pending", "status", "flags"]


def grade_cells(notebook_path: Path) -> list[dict]:
    """The graded cells of a source notebook, in order: grade_id, points, auto or manual."""
    cells = []
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            kind = "manual" if meta.get("solution") else "auto"
            cells.append({"id": meta["grade_id"], "points": float(meta["points"]), "kind": kind})
    return cells


def scored_parts(parts: list[dict], auto: dict, manual: dict) -> list[dict]:
    """Each part with its score: the manual score if given, else the automatic one; None
    (pending) for a written answer that was answered and is waiting for its grader; 0 for a part
    with no score at all (a submission that could not be graded)."""
    scored = []
    for part in parts:
        if manual.get(part["id"]) is not None:
            score = manual[part["id"]]
        else:  # nbgrader's automatic score: None for an answered written part
            score = auto.get(part["id"], 0.0)
        scored.append({**part, "score": score})
    return scored


def row(student: str, assignment: str, parts: list[dict], problems: list[str],
        flags: list[str]) -> dict:
    """One submission's row: each part's score ("" when pending), totals, status, flags."""
    result = {"student": student, "assignment": assignment}
    result.update({p["id"]: "" if p["score"] is None else f"{p['score']:g}" for p in parts})
    result.update(
        score=f"{sum(p['score'] for p in parts if p['score'] is not None):g}",
        max_score=f"{sum(p['points'] for p in parts):g}",
        pending=" ".join(p["id"] for p in parts if p["score"] is None),
        status="; ".join(problems) or "graded", flags="; ".join(dict.fromkeys(flags)))
    return result


def write_csvs(root: Path, parts_of: dict[str, list[dict]], rows: list[dict]) -> None:
    """grades.csv (totals) and grades/<assignment>.csv (per part), written atomically."""
    write_atomically(root / "grades.csv", _csv(SUMMARY, rows))
    for assignment, parts in parts_of.items():
        columns = ["student", *[p["id"] for p in parts], *SUMMARY[2:]]
        mine = [r for r in rows if r["assignment"] == assignment]
        write_atomically(root / "grades" / f"{assignment}.csv", _csv(columns, mine))


def _csv(columns: list[str], rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


class Gradebook:
    """nbgrader's gradebook at `db_url`, opened once for a grading run (main process only)."""

    def __init__(self, db_url: str):
        from nbgrader.api import Gradebook as NbgraderGradebook
        from sqlalchemy.exc import SAWarning

        # SQLAlchemy's notes on how nbgrader uses its session: not ours to act on.
        warnings.filterwarnings("ignore", category=SAWarning)
        self.db_url = db_url
        self.gradebook = NbgraderGradebook(db_url)

    def close(self) -> None:
        self.gradebook.close()

    def manual_scores(self, student: str, assignment: str, notebook: str) -> dict[str, float]:
        """The manual scores given (in formgrader) to one submitted notebook's parts."""
        from nbgrader.api import MissingEntry

        try:
            found = self.gradebook.find_submission_notebook(notebook, assignment, student)
        except MissingEntry:
            return {}
        return {g.name: g.manual_score for g in found.grades if g.manual_score is not None}

    def save(self, student: str, assignment: str, autograded: Path, timestamp: str | None) -> None:
        """Record one autograded notebook: nbgrader's SaveAutoGrades, as `nbgrader autograde`."""
        from nbgrader.preprocessors import SaveAutoGrades

        self.gradebook.update_or_create_student(student)
        from nbgrader.utils import parse_utc

        extra = {"timestamp": parse_utc(timestamp)} if timestamp else {}
        self.gradebook.update_or_create_submission(assignment, student, **extra)
        resources = {"nbgrader": {"student": student, "assignment": assignment,
                                  "notebook": autograded.stem, "db_url": self.db_url}}
        SaveAutoGrades().preprocess(nbformat.read(autograded, as_version=4), resources)
