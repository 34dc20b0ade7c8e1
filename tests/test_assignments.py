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
# The round trip grades two course copies in parallel, one per core: a1 (with the infinite
# loop, which costs its time limit) and a2 + a3. Time limits of student code and tests per
# copy (the set-up cells get nbgrader_config.py's setup_timeout); a3's slowest cell, the
# training, takes about a second.
GROUPS = {"a1": ((A1,), 10), "a2_a3": ((A2, A3), 30)}

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
    (`complete`) or left blank, then `edits` (grade id, or cell id of a plain cell -> new
    source), `deleted` cells
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
            key = _grade_id(cell) or cell.id  # grade id, or cell id for a plain cell
            if key in self.deleted:
                continue
            cell.source = self.edits.get(key, answers.get(key, cell.source))
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


def _visible_answers(check: str) -> dict:
    """{arguments: expected answer} of a checker's visible cases, as a student could copy them
    from its PASS lines (recorded here by calling the checker with a recording function)."""
    from dlhelpers import checks

    reference = {"check_step_decay": lambda epoch, lr0, step_size, gamma:
                 lr0 * gamma ** (epoch // step_size)}[check]
    answers = {}

    def recorder(*args):
        answers[args] = reference(*args)
        return answers[args]

    getattr(checks, check)(recorder)
    return answers


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
        "a1_written_answer": "YOUR ANSWER HERE",
    }, zero=("test_sigmoid", "test_sigmoid_derivative", "test_perceptron_forward",
             "test_train_perceptron", "a1_written_answer")),
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
        # An infinite loop: stopped by the time limit.
        "perceptron_update": "def perceptron_update(w, w0, x, y, lr):\n    while True:\n"
                             "        pass",
        # The weights that pass the visible test, hard-coded.
        "train_perceptron": "def train_perceptron(X, y, lr=0.1, epochs=20):\n"
                            "    return np.array([0.17737, 0.20122]), 0.0",
        # sys.exit() inside a graded function: its test fails, grading goes on.
        "boundary_x2": "import sys\ndef boundary_x2(x1, w, w0):\n    sys.exit()",
        # Huge outputs after correct answers: cut, and the answers still score.
        "sigmoid": _answers(A1)["sigmoid"] + "\nfor _ in range(100_000):\n    print('spam ' * 20)",
        "tanh": _answers(A1)["tanh"] + "\nprint('x' * 20_000_000)",
    }, deleted=("test_relu_derivative",), zero=(
        "test_relu", "test_tanh_derivative", "test_relu_derivative", "test_perceptron_update",
        "test_train_perceptron", "test_boundary_x2"),
        status="time limit hit in test_perceptron_update",
        flags=("edited read-only cell test_relu", "deleted read-only cell test_relu_derivative",
               "re-binds checks.check_tanh_derivative", "re-binds np.allclose",
               "uses sys.exit")),
    Case("complete", A2),
    Case("blank", A2, complete=False, zero=tuple(p["id"] for p in _parts(A2))),
    # Forward differences in numerical_gradient; all-zero initial weights, so every hidden
    # unit stays the same and the network cannot bend its boundary enough.
    Case("partial", A2, edits={
        "numerical_gradient": _answers(A2)["numerical_gradient"].replace(
            "x[i] = original - eps", "x[i] = original"),
        "train_two_layer": _answers(A2)["train_two_layer"].replace(
            "rng.normal(0.0, 1 / np.sqrt(X.shape[1]), size=(X.shape[1], hidden))",
            "np.zeros((X.shape[1], hidden))").replace(
            "rng.normal(0.0, 1 / np.sqrt(hidden), size=(hidden, 1))", "np.zeros((hidden, 1))"),
    }, zero=("test_numerical_gradient", "test_train_two_layer")),
    Case("tampered", A2, edits={
        # A sum instead of a mean, and the checker patched to pass it.
        "binary_cross_entropy": _answers(A2)["binary_cross_entropy"].replace("np.mean", "np.sum")
        + "\nchecks.check_binary_cross_entropy = lambda fn: True",
        # Forward differences, and the test cell replaced by a friendly message.
        "numerical_gradient": _answers(A2)["numerical_gradient"].replace(
            "x[i] = original - eps", "x[i] = original"),
        "test_numerical_gradient": 'print("all tests passed")',
        # Training that always returns the network for the notebook's moons, whatever it gets.
        "train_two_layer": _answers(A2)["train_two_layer"].replace(
            "    rng = np.random.default_rng(rng)\n",
            "    rng = np.random.default_rng(rng)\n    X, y = X_moons, y_moons\n"),
    }, zero=("test_binary_cross_entropy", "test_numerical_gradient", "test_train_two_layer"),
        flags=("re-binds checks.check_binary_cross_entropy",
               "edited read-only cell test_numerical_gradient")),
    Case("complete", A3),
    Case("blank", A3, complete=False, zero=tuple(p["id"] for p in _parts(A3))),
    # Dropout without the 1 / (1 - p) scaling; early stopping that counts an equal loss as an
    # improvement; the written answer left blank.
    Case("partial", A3, edits={
        "dropout": _answers(A3)["dropout"].replace("X * keep / (1 - p)", "X * keep"),
        "early_stopping": _answers(A3)["early_stopping"].replace(
            "loss < best - min_delta", "loss <= best - min_delta"),
        "a3_written_answer": "YOUR ANSWER HERE",
    }, zero=("test_dropout", "test_early_stopping", "a3_written_answer")),
    Case("tampered", A3, edits={
        # The visible cases' answers, hard-coded (as printed by the checker).
        "step_decay": "def step_decay(epoch, lr0, step_size, gamma):\n"
                      f"    return {_visible_answers('check_step_decay')}"
                      ".get((epoch, lr0, step_size, gamma), lr0)",
        # eta_min forgotten, and the checker patched to pass it.
        "cosine_schedule": "def cosine_schedule(epoch, lr0, T_max, eta_min=0.0):\n"
                           "    return lr0 * (1 + np.cos(np.pi * epoch / T_max)) / 2\n"
                           "checks.check_cosine_schedule = lambda fn: True",
        # No scaling, and the test cell deleted (below).
        "dropout": _answers(A3)["dropout"].replace("X * keep / (1 - p)", "X * keep"),
        # sys.exit() at the top level of a cell: the cell stops, grading goes on.
        "cell-10": "import sys\nsys.exit()",
    }, deleted=("test_dropout",),
        zero=("test_step_decay", "test_cosine_schedule", "test_dropout"),
        flags=("re-binds checks.check_cosine_schedule", "deleted read-only cell test_dropout",
               "uses sys.exit")),
    # The kernel killed: this submission cannot be graded; the others are.
    Case("kernel_killer", A1, added=("import os\nos._exit(0)",),
         zero=tuple(p["id"] for p in _parts(A1) if p["kind"] == "auto"),
         status="could not be graded", flags=("uses os._exit",)),
]


# ---------------------------------------------------------------------------------------------
# Grading them, in temporary copies of the course directory
# ---------------------------------------------------------------------------------------------


def _course_copy(destination: Path, assignments=None) -> Path:
    """A course directory with the settings and the source of `assignments` (default: all)."""
    destination.mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", destination)
    for assignment in assignments or course.assignment_ids(COURSE):
        shutil.copytree(COURSE / "source" / assignment, destination / "source" / assignment)
    return destination


def _grade(root: Path, timeout: int) -> float:
    """Run `course.py grade` on root (what `make grade` runs); return the seconds it took."""
    start = time.perf_counter()
    command = [sys.executable, str(COURSE / "course.py"), "grade", "--root", str(root),
               "--timeout", str(timeout), "--verbose"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    (root / "grade.out").write_text(result.stdout + result.stderr)  # for a failing test
    assert result.returncode == 0, result.stdout + result.stderr
    return time.perf_counter() - start


def _grading_outputs() -> dict[str, float]:
    """What grading writes in a course directory, in the repository's: path -> modified time."""
    names = ("gradebook.db", "grades.csv", "autograded", "feedback", "release", "submitted")
    paths = [p for name in names for p in [COURSE / name, *(COURSE / name).rglob("*")]]
    return {str(p): p.stat().st_mtime for p in paths if p.exists()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Grade every case; return the grades.csv rows by (student, assignment), the course
    directory of each assignment and the seconds each grading run took."""
    before = _grading_outputs()
    roots = {name: _course_copy(tmp_path_factory.mktemp(name) / "course", assignments)
             for name, (assignments, _) in GROUPS.items()}
    root_of = {a: roots[name] for name, (assignments, _) in GROUPS.items() for a in assignments}
    for case in CASES:
        folder = root_of[case.assignment] / "submitted" / case.student / case.assignment
        folder.mkdir(parents=True)
        nbformat.write(case.notebook(), folder / f"{case.assignment}.ipynb")
    with ThreadPoolExecutor(max_workers=len(roots)) as pool:
        runs = {name: pool.submit(_grade, roots[name], timeout)
                for name, (_, timeout) in GROUPS.items()}
        seconds = {name: run.result() for name, run in runs.items()}
    rows = {}
    for root in roots.values():
        with open(root / "grades.csv", newline="") as file:
            rows.update({(r["student"], r["assignment"]): r for r in csv.DictReader(file)})
    assert _grading_outputs() == before, "grading the copies wrote into assignments/"
    print(f"grading took {seconds} seconds")
    return {"rows": rows, "roots": root_of, "seconds": seconds}


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
        assert "BEGIN HIDDEN TESTS" not in feedback.read_text()
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
        text = "\n".join(cell.source for cell in _notebook("release", assignment).cells)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "_hidden_test" not in text and "Model answer" not in text
        for cell in _notebook("source", assignment).cells:
            if "### BEGIN SOLUTION" in cell.source:  # the solution's body must be gone
                body = cell.source.split("### BEGIN SOLUTION\n")[1].split("    ### END")[0]
                assert body.strip() and body not in text, _grade_id(cell)


def test_scan_flags_tampering_and_not_honest_code():
    imported = {"np": "numpy", "checks": "dlhelpers", "sys": "sys"}
    assert course._scan_code(_answers(A1)["sigmoid"], {"sigmoid"}, imported) == []
    tricks = {
        "np.allclose = lambda *a, **k: True": "re-binds np.allclose",
        "checks.check_sigmoid = lambda fn: True": "re-binds checks.check_sigmoid",
        "from dlhelpers.activations import sigmoid": "imports sigmoid from dlhelpers.activations",
        "y = checks._perceptron_forward": "uses checks._perceptron_forward from dlhelpers",
        "zip = lambda *a: iter(())": "re-binds the built-in zip",
        "import builtins": "imports builtins",
        "get_ipython().run_cell = None": "calls get_ipython()",
        "sys.modules['numpy'] = None": "uses sys.modules",
        "setattr(np, 'allclose', abs)": "calls setattr()",
        "type(x).__subclasses__()": "uses type(x).__subclasses__",
        "!rm -rf ~": "runs !rm",
        "def f(:": "does not parse",
    }
    for code, flag in tricks.items():
        assert any(flag in f for f in course._scan_code(code, {"sigmoid"}, imported)), code
