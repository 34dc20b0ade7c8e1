"""The graded assignments (assignments/, nbgrader), end to end.

- The committed student versions (assignments/release/) are what `make assignments` generates
  from assignments/source/ now.
- A round trip per assignment, in a temporary copy of the course directory: submissions built
  from the released notebooks (complete and correct, partly wrong, blank, tampered with) are
  graded by `assignments/course.py grade` (what `make grade` runs), and every part's score in
  grades.csv must be exactly what it should be. The complete submissions are the source
  notebooks' own solutions, so this also checks that the source notebooks pass their own
  visible and hidden tests.

All submissions of an assignment are graded in one `nbgrader autograde` call, the three
assignments in parallel; the whole file takes about a minute on two cores.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
A1, A2, A3 = "a1_perceptron_activations", "a2_backprop_from_scratch", "a3_training_well"
# The per-cell time limit while grading the round trip: the infinite loop costs this much.
TIMEOUT = 10

_spec = importlib.util.spec_from_file_location("course", COURSE / "course.py")
course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course)


# ---------------------------------------------------------------------------------------------
# Building submissions from the released notebooks
# ---------------------------------------------------------------------------------------------


def _notebook(kind: str, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(COURSE / kind / assignment / f"{assignment}.ipynb", as_version=4)


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _answers(assignment: str) -> dict[str, str]:
    """The source's solution cells without nbgrader's solution markers: complete answers."""
    answers = {}
    for cell in _notebook("source", assignment).cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            lines = [line for line in cell.source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line]
            answers[_grade_id(cell)] = "\n".join(lines)
    return answers


def _parts(assignment: str) -> list[dict]:
    return course.grade_cells(COURSE / "source" / assignment / f"{assignment}.ipynb")


@dataclass
class Case:
    """A submission and the score each part must get.

    The submission is the released notebook with every answer filled in from the source
    (`complete`) or left blank, then `edits` (grade id -> new cell source), `deleted` cells
    removed and `added` code cells appended. `zero` lists the automatically graded parts that
    must score 0 (every other one scores full points); written answers are pending (manual
    grading) when filled in and 0 when left blank.
    """

    student: str
    assignment: str
    complete: bool = True
    edits: dict[str, str] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    zero: tuple[str, ...] = ()
    status: str = "graded"
    flags: tuple[str, ...] = ()  # words each expected in the flags column

    def notebook(self) -> nbformat.NotebookNode:
        nb = _notebook("release", self.assignment)
        answers = _answers(self.assignment) if self.complete else {}
        cells = []
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if grade_id in self.deleted:
                continue
            cell.source = self.edits.get(grade_id, answers.get(grade_id, cell.source))
            cells.append(cell)
        cells += [nbformat.v4.new_code_cell(code) for code in self.added]
        nb.cells = cells
        return nb

    def expected(self) -> dict[str, str]:
        scores = {}
        for part in _parts(self.assignment):
            if part["id"] in self.zero:
                scores[part["id"]] = "0"
            elif part["kind"] == "manual":  # pending: graded by hand
                scores[part["id"]] = "" if self.complete or part["id"] in self.edits else "0"
            else:
                scores[part["id"]] = f"{part['points']:g}"
        return scores


NAIVE_SIGMOID = "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))"  # overflows for z < -709

CASES = [
    Case("complete", A1),
    Case("blank", A1, complete=False, zero=tuple(p["id"] for p in _parts(A1))),
    # The naive sigmoid fails its own test and the two parts built on it; training on the
    # samples in reverse order still separates the visible data but is not Rosenblatt's rule
    # in order (only the hidden test sees it); the written answer is left blank.
    Case("partial", A1, edits={
        "sigmoid": NAIVE_SIGMOID,
        "train_perceptron": _answers(A1)["train_perceptron"].replace(
            "zip(X, y, strict=True)", "zip(X[::-1], y[::-1], strict=True)"),
        "written_answer": "YOUR ANSWER HERE",
    }, zero=("test_sigmoid", "test_sigmoid_derivative", "test_perceptron_forward",
             "test_train_perceptron", "written_answer")),
    Case("tampered", A1, edits={
        # A wrong relu with its test cell emptied: grading restores the test.
        "relu": "def relu(z):\n    return z",
        "test_relu": "pass",
        # A wrong tanh derivative, with the checker, numpy and the reference patched to agree.
        "tanh_derivative": "\n".join([
            "import dlhelpers.activations",
            "def tanh_derivative(z):",
            "    return 1 - z ** 2",
            "checks.check_tanh_derivative = lambda fn: True",
            "np.allclose = lambda *args, **kwargs: True",
            "dlhelpers.activations.tanh_derivative = tanh_derivative",
        ]),
        # A wrong relu derivative, with its test cell deleted (below): grading puts it back.
        "relu_derivative": "def relu_derivative(z):\n    return np.ones_like(z)",
        # sys.exit() inside a graded function: its test fails, grading goes on.
        "perceptron_update": "import sys\ndef perceptron_update(w, w0, x, y, lr):\n"
                             "    sys.exit()",
        # The weights that pass the visible test, hard-coded.
        "train_perceptron": "def train_perceptron(X, y, lr=0.1, epochs=20):\n"
                            "    return np.array([0.17737, 0.20122]), 0.0",
        # An infinite loop: stopped by the time limit.
        "boundary_x2": "def boundary_x2(x1, w, w0):\n    while True:\n        pass",
        # Huge outputs after correct answers: cut, and the answers still score.
        "sigmoid": _answers(A1)["sigmoid"] + "\nfor _ in range(100_000):\n    print('spam ' * 20)",
        "tanh": _answers(A1)["tanh"] + "\nprint('x' * 20_000_000)",
    }, deleted=("test_relu_derivative",), zero=(
        "test_relu", "test_tanh_derivative", "test_relu_derivative", "test_perceptron_update",
        "test_train_perceptron", "test_boundary_x2"),
        status="time limit hit in test_boundary_x2",
        flags=("edited read-only cell test_relu", "deleted read-only cell test_relu_derivative",
               "re-binds checks.check_tanh_derivative", "re-binds np.allclose",
               "uses sys.exit")),
    # The kernel killed: this submission cannot be graded; the others are.
    Case("kernel_killer", A1, added=("import os\nos._exit(0)",),
         zero=tuple(p["id"] for p in _parts(A1) if p["kind"] == "auto"),
         status="could not be graded", flags=("uses os._exit",)),
]


# ---------------------------------------------------------------------------------------------
# Grading them, in temporary copies of the course directory
# ---------------------------------------------------------------------------------------------


def _course_copy(destination: Path) -> Path:
    destination.mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", destination)
    shutil.copytree(COURSE / "source", destination / "source")
    return destination


def _grade(root: Path) -> float:
    """Run `course.py grade` on root (what `make grade` runs); return the seconds it took."""
    start = time.perf_counter()
    command = [sys.executable, str(COURSE / "course.py"), "grade", "--root", str(root),
               "--timeout", str(TIMEOUT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    (root / "grade.out").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Grade every case; return {(student, assignment): grades.csv row} and the timings."""
    before = sorted(str(p) for p in COURSE.rglob("*"))
    roots = {}
    for case in CASES:
        root = roots.get(case.assignment) or _course_copy(
            tmp_path_factory.mktemp("course") / case.assignment)
        roots[case.assignment] = root
        folder = root / "submitted" / case.student / case.assignment
        folder.mkdir(parents=True)
        nbformat.write(case.notebook(), folder / f"{case.assignment}.ipynb")
    with ThreadPoolExecutor(max_workers=len(roots)) as pool:
        seconds = dict(zip(roots, pool.map(_grade, roots.values()), strict=True))
    rows = {}
    for root in roots.values():
        with open(root / "grades.csv", newline="") as file:
            rows.update({(r["student"], r["assignment"]): r for r in csv.DictReader(file)})
    assert sorted(str(p) for p in COURSE.rglob("*")) == before, "grading changed assignments/"
    return {"rows": rows, "roots": roots, "seconds": seconds}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.assignment[:2]}-{c.student}")
def test_each_part_scores_exactly_what_it_should(graded, case):
    row = graded["rows"][(case.student, case.assignment)]
    got = {part: row[part] for part in case.expected()}
    assert got == case.expected(), row["flags"]
    expected_total = sum(float(v) for v in case.expected().values() if v)
    assert float(row["score"]) == expected_total
    assert row["max_score"] == "100"
    assert case.status in row["status"]
    for flag in case.flags:
        assert flag in row["flags"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.assignment[:2]}-{c.student}")
def test_feedback_is_written_and_outputs_stay_small(graded, case):
    root = graded["roots"][case.assignment]
    feedback = root / "feedback" / case.student / case.assignment / f"{case.assignment}.html"
    autograded = root / "autograded" / case.student / case.assignment / f"{case.assignment}.ipynb"
    if case.status == "graded" or "time limit" in case.status:
        assert feedback.stat().st_size < 2_000_000
        assert autograded.stat().st_size < 1_000_000  # the huge outputs were cut
    else:
        assert not autograded.exists()


def test_untouched_submissions_raise_no_flags(graded):
    for (student, _), row in graded["rows"].items():
        if student in ("complete", "blank", "partial"):
            assert row["flags"] == "", (student, row["flags"])


# ---------------------------------------------------------------------------------------------
# The committed release is up to date
# ---------------------------------------------------------------------------------------------


def _comparable(path: Path) -> dict:
    """A notebook without what may change from one generation to the next (nothing so far
    but nbformat's minor version bookkeeping): cells' sources, types, ids and nbgrader data."""
    nb = json.loads(path.read_text())
    return {"metadata": nb["metadata"], "cells": [
        {key: cell.get(key) for key in ("cell_type", "id", "source")}
        | {"nbgrader": cell.get("metadata", {}).get("nbgrader")} for cell in nb["cells"]]}


def test_release_is_generated_from_the_current_source(tmp_path):
    root = _course_copy(tmp_path / "course")
    course.release(root)
    fresh = sorted(p.relative_to(root / "release") for p in (root / "release").rglob("*.ipynb"))
    committed = sorted(p.relative_to(COURSE / "release")
                       for p in (COURSE / "release").rglob("*.ipynb"))
    assert fresh == committed, "run `make assignments` and commit assignments/release/"
    for relative in fresh:
        assert _comparable(root / "release" / relative) == _comparable(
            COURSE / "release" / relative), f"{relative} is out of date: run `make assignments`"


def test_release_has_no_solutions_and_no_hidden_tests():
    for assignment in course.assignment_ids(COURSE):
        text = (COURSE / "release" / assignment / f"{assignment}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "Model answer" not in text
        for grade_id, answer in _answers(assignment).items():
            assert answer not in text, grade_id
