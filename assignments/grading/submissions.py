"""Finding and reading submissions (no code is run): one `Submission` per student and assignment.

Submissions are read from nbgrader's layout, `submitted/<student>/<assignment>/<notebook>.ipynb`
(what `nbgrader collect` and `nbgrader zip_collect` write). A problem with one submission is
described in its `problems` and never stops the others.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass
class Submission:
    """One student's notebook for one assignment (of a one-notebook assignment's `name`)."""

    student: str
    assignment: str
    name: str  # the notebook's name in source/, e.g. "a1_perceptron_activations.ipynb"
    path: Path | None = None  # the file graded, None when there is none to grade
    notebook: nbformat.NotebookNode | None = None
    problems: list[str] = field(default_factory=list)  # for the status column
    timestamp: str | None = None  # nbgrader collect's timestamp.txt, if any

    @property
    def key(self) -> str:
        return f"{self.student}/{self.assignment}"


def find(root: Path, assignment_notebooks: dict[str, str]) -> list[Submission]:
    """Every submission under root/submitted/, sorted by student then assignment.

    `assignment_notebooks` maps each assignment to its notebook's file name.
    """
    found = []
    for folder in sorted((root / "submitted").glob("*/*")):
        if folder.is_dir() and folder.name in assignment_notebooks:
            found.append(read(folder, assignment_notebooks[folder.name]))
    return found


def read(folder: Path, name: str) -> Submission:
    """The submission in `folder`; `name` is the notebook's expected file name."""
    submission = Submission(student=folder.parent.name, assignment=folder.name, name=name)
    stamp = folder / "timestamp.txt"
    if stamp.is_file():
        submission.timestamp = stamp.read_text().strip() or None
    expected = folder / name
    others = sorted(p for p in folder.glob("*.ipynb") if p.name != name)
    if expected.is_file():
        submission.path = expected
    elif len(others) == 1:  # renamed, e.g. "a1 (1).ipynb" or "Untitled.ipynb"
        submission.path = others[0]
        submission.problems.append(f"{name} not submitted: graded {others[0].name} instead")
    elif others:
        found = ", ".join(p.name for p in others)
        submission.problems.append(f"{name} not submitted; found {found} (more than one: "
                                   "none graded)")
        return submission
    else:
        submission.problems.append(f"{name} not submitted")
        return submission
    try:
        submission.notebook = load(submission.path)
    except ValueError as error:
        submission.problems.append(f"{submission.path.name} {error}")
        return submission
    repeated = repeated_grade_ids(submission.notebook)
    if repeated:
        submission.problems.append(
            "grade id " + ", ".join(f"{gid} in {n} cells" for gid, n in repeated.items())
            + " (a split or copied cell): the last of each is graded, the others run as plain code")
    return submission


def load(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook; ValueError saying what is wrong with the file otherwise."""
    data = path.read_bytes()
    if not data.strip():
        raise ValueError("is empty (0 bytes of notebook)" if not data else "is blank")
    try:
        content = json.loads(data)
    except UnicodeDecodeError:
        raise ValueError("is not text (a binary file saved as .ipynb?)") from None
    except json.JSONDecodeError as error:
        if data.lstrip()[:1] in (b"{", b"["):
            raise ValueError(f"is cut short or damaged JSON ({error.msg}, line {error.lineno})"
                             " (saved while the disk was full, or copied partly?)") from None
        raise ValueError("is not a notebook: not JSON (a .py or other file renamed to "
                         ".ipynb?)") from None
    if not isinstance(content, dict) or "cells" not in content or "nbformat" not in content:
        raise ValueError("is not a notebook: JSON without cells")
    try:
        notebook = nbformat.reads(data.decode(), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds for a malformed notebook
        raise ValueError(f"is not a valid notebook ({str(error).splitlines()[0][:120]})") from None
    return notebook


def repeated_grade_ids(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """The nbgrader grade ids carried by more than one cell, with how many cells carry each."""
    ids = Counter(cell.metadata.get("nbgrader", {}).get("grade_id") for cell in notebook.cells)
    return {gid: n for gid, n in ids.items() if gid and n > 1}


def keep_last_of_repeated_grade_ids(notebook: nbformat.NotebookNode) -> None:
    """Make the earlier cells carrying a repeated grade id plain cells (in place).

    What nbgrader's DeduplicateIds means to do (the last cell with an id is the graded one),
    done before it: it leaves an empty `nbgrader` entry that its next steps fail on.
    """
    seen = set()
    for cell in reversed(notebook.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in seen:
            del cell.metadata["nbgrader"]
        elif grade_id:
            seen.add(grade_id)


def fingerprint(*parts: bytes | str) -> str:
    """A hash of what a grading result depends on: re-grade when it changes."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()
