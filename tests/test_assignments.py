"""The graded assignments (assignments/, nbgrader), end to end.

- The committed student versions (assignments/release/) are what `make assignments` generates
  from assignments/source/ now.
- A round trip, in a temporary copy of the course directory: submissions built from the
  released notebooks (complete and correct, partly wrong, blank, tampered with, unreadable,
  renamed, with split cells, ...) are graded by `assignments/course.py grade --jobs 2` (what
  `make grade` runs), and every part's score in grades/<assignment>.csv must be exactly what it
  should be, with the status naming each problem. The complete submissions are the source
  notebooks' own solutions, so this also checks that the source notebooks pass their own
  visible and hidden tests. Then the feedback files: no hidden-test source, figures kept, math
  as MathML with no script from the network, written answers pending. Then a second run
  re-grades only the submission that changed.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
A1, A2, A3 = "a1_perceptron_activations", "a2_backprop_from_scratch", "a3_training_well"
# Time limit of each cell of student code and tests (the set-up cells get nbgrader_config.py's
# setup_timeout): the infinite loop costs this; a3's slowest cell, the training, takes a second
# or two on a busy machine.
TIMEOUT = 15

_spec = importlib.util.spec_from_file_location("course", COURSE / "course.py")
course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course)
from grading import records, scan  # noqa: E402 (course.py puts its folder on sys.path)

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
    return records.grade_cells(COURSE / "source" / assignment / f"{assignment}.ipynb")


@dataclass
class Case:
    """A submission and the score each part must get.

    The submission is the released notebook with every answer filled in from the source
    (`complete`) or left blank, then `edits` (grade id, or cell id of a plain cell -> new
    source), `deleted` cells removed, `copied` cells repeated right after themselves with
    their metadata (what copy-paste or splitting a cell in JupyterLab makes, the copy's source
    from `edits[id + "+"]` if given) and `added` code cells appended. It is saved as
    `filename` (default: the assignment's), or `raw` is written as the file instead. `zero`
    lists the automatically graded parts that must score 0 (every other one scores full
    points); written answers are pending (manual grading) when filled in and 0 when left blank.
    """

    student: str
    assignment: str
    complete: bool = True
    edits: dict[str, str] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    copied: tuple[str, ...] = ()
    zero: tuple[str, ...] = ()
    status: str = "graded"
    flags: tuple[str, ...] = ()  # words each expected in the flags column
    filename: str | None = None
    raw: bytes | None = None

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (self.filename or f"{self.assignment}.ipynb")
        if self.raw is not None:
            path.write_bytes(self.raw)
        else:
            nbformat.write(self.notebook(), path)

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
            if key in self.copied:
                copy = nbformat.from_dict(json.loads(json.dumps(cell)))
                copy.id = f"{cell.id}-copy"
                copy.source = self.edits.get(key + "+", cell.source)
                cells.append(copy)
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
                if self.raw is not None or "could not be graded" in self.status:
                    scores[part["id"]] = "0"
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


AUTO_A1 = tuple(p["id"] for p in _parts(A1) if p["kind"] == "auto")
# Right on the visible cases; a KeyError naming the input on others (the hidden tests' 3 x 3).
LEAKY_RELU = ("def relu(z):\n    z = np.asarray(z, dtype=float)\n"
              "    if z.size == 9:\n        raise KeyError(tuple(z.ravel().tolist()))\n"
              "    return np.maximum(0.0, z)")
NAIVE_SIGMOID = "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))"  # overflows for z < -709
# A cell that sends a signal to its grading process: the nearest ancestor running course.py
# (the kernel's parent is the worker's kernel template, whose parent is the worker).
SIGNAL_THE_GRADER = """import os, signal
def parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
pid = os.getppid()
while "course.py" not in open(f"/proc/{pid}/cmdline").read():
    pid = parent(pid)
os.kill(pid, signal.SIG%s)"""

CASES = [
    Case("complete", A1),
    Case("blank", A1, complete=False, zero=tuple(p["id"] for p in _parts(A1))),
    # The naive sigmoid fails its own test only: the two parts built on it are tested with the
    # course's sigmoid (issue 12, case 8). Training on the samples in reverse order still
    # separates the visible data but is not Rosenblatt's rule in order (only the hidden test
    # sees it); the written answer is left blank.
    Case("partial", A1, edits={
        "sigmoid": NAIVE_SIGMOID,
        "train_perceptron": _answers(A1)["train_perceptron"].replace(
            "zip(X, y, strict=True)", "zip(X[::-1], y[::-1], strict=True)"),
        "a1_written_answer": "YOUR ANSWER HERE",
    }, zero=("test_sigmoid", "test_train_perceptron", "a1_written_answer")),
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
    # Code that kills or stops its grading process (it can: it runs with the grader's rights):
    # that submission is graded alone and named; every other one is graded, whatever worker
    # it was in.
    Case("worker_killer", A1, added=(SIGNAL_THE_GRADER % "KILL",), zero=AUTO_A1,
         status="could not be graded: grading it ended or stopped the grading process",
         flags=("uses os.kill",)),
    Case("worker_stopper", A3, added=(SIGNAL_THE_GRADER % "STOP",),
         zero=tuple(p["id"] for p in _parts(A3) if p["kind"] == "auto"),
         status="could not be graded: its grading process was stopped", flags=("uses os.kill",)),
    # Issue 12, case 1: unreadable files, each beside the complete submissions of the others.
    Case("empty_file", A1, raw=b"", zero=AUTO_A1, status="is empty"),
    Case("truncated", A1, raw=json.dumps(nbformat.v4.new_notebook()).encode()[:40],
         zero=AUTO_A1, status="is cut short or damaged JSON"),
    Case("empty_json", A1, raw=b"{}", zero=AUTO_A1, status="is not a notebook: JSON without cells"),
    Case("python_file", A1, raw=b"import numpy as np\n\ndef sigmoid(z):\n    return z\n",
         zero=AUTO_A1, status="is not a notebook: not JSON"),
    # Case 2: the sigmoid cell split in two (both halves keep the grade id) and the relu test
    # cell copied: everything is graded, and the repeated ids are named.
    Case("split_cells", A1, copied=("sigmoid", "test_relu"), edits={
        "sigmoid": "def _stable_exp(z):  # e^-|z|, in (0, 1]\n    return np.exp(-np.abs(z))",
        "sigmoid+": "def sigmoid(z):\n    z = np.asarray(z, dtype=float)\n    e = _stable_exp(z)\n"
                    "    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))"},
         status="grade id sigmoid in 2 cells, test_relu in 2 cells"),
    # Case 3: the notebook renamed by a download, alone in its folder: graded, and named.
    Case("renamed", A2, filename=f"{A2} (1).ipynb",
         status=f"{A2}.ipynb not submitted: graded {A2} (1).ipynb instead"),
    # Case 4: relu hard-coded for the visible cases: the hidden test's input raises a KeyError
    # carrying that input. The feedback must say only that relu raised a KeyError.
    Case("leaky", A1, edits={"relu": LEAKY_RELU}, zero=("test_relu",)),
    # Case 8: a wrong dense_forward costs its own 10 points; parts 6 to 8 use the course's.
    Case("wrong_dense", A2, edits={"dense_forward": "def dense_forward(X, W, b):\n"
                                                    "    return X @ W"},
         zero=("test_dense_forward",)),
]


# ---------------------------------------------------------------------------------------------
# Grading them, in a temporary copy of the course directory
# ---------------------------------------------------------------------------------------------


def _course_copy(destination: Path, assignments=None) -> Path:
    """A course directory with the settings and the source of `assignments` (default: all)."""
    destination.mkdir(parents=True)
    shutil.copy(COURSE / "nbgrader_config.py", destination)
    for assignment in assignments or course.assignment_ids(COURSE):
        shutil.copytree(COURSE / "source" / assignment, destination / "source" / assignment)
    return destination


def _grade(root: Path, *options: str) -> str:
    """Run `course.py grade` on root (what `make grade` runs); return what it printed."""
    command = [sys.executable, str(COURSE / "course.py"), "grade", "--root", str(root),
               "--timeout", str(TIMEOUT), "--jobs", "2", *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _rows(root: Path) -> dict:
    rows = {}
    for path in (root / "grades").glob("*.csv"):
        with open(path, newline="") as file:
            rows.update({(r["student"], path.stem): r for r in csv.DictReader(file)})
    return rows


def _grading_outputs() -> dict[str, float]:
    """What grading writes in a course directory, in the repository's: path -> modified time."""
    names = ("gradebook.db", "grades.csv", "grades", "autograded", "feedback", "release",
             "submitted", ".grading")
    paths = [p for name in names for p in [COURSE / name, *(COURSE / name).rglob("*")]]
    return {str(p): p.stat().st_mtime for p in paths if p.exists()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Grade every case in one run; return the rows by (student, assignment), the course
    directory and what the run printed."""
    before = _grading_outputs()
    root = _course_copy(tmp_path_factory.mktemp("grading") / "course")
    for case in CASES:
        case.write(root / "submitted" / case.student / case.assignment)
    start = time.perf_counter()
    printed = _grade(root)
    print(f"grading took {time.perf_counter() - start:.0f} seconds")
    assert _grading_outputs() == before, "grading the copy wrote into assignments/"
    return {"rows": _rows(root), "root": root, "printed": printed}


def _feedback(root: Path, case: Case) -> Path:
    return root / "feedback" / case.student / case.assignment / f"{case.assignment}.html"


def _visible_text(path: Path) -> str:
    """A feedback page's text as a reader sees it: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.assignment[:2]}-{c.student}")
def test_each_part_scores_exactly_what_it_should(graded, case):
    row = graded["rows"][(case.student, case.assignment)]
    got = {part: row[part] for part in case.expected()}
    assert got == case.expected(), (row["status"], row["flags"])
    expected_total = sum(float(v) for v in case.expected().values() if v)
    assert float(row["score"]) == expected_total
    assert row["max_score"] == "100"
    assert case.status in row["status"], row["status"]
    for flag in case.flags:
        assert flag in row["flags"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.assignment[:2]}-{c.student}")
def test_feedback_is_written_and_outputs_stay_small(graded, case):
    root = graded["root"]
    feedback = _feedback(root, case)
    autograded = root / "autograded" / case.student / case.assignment / f"{case.assignment}.ipynb"
    if case.raw is None and "could not be graded" not in case.status:
        assert feedback.stat().st_size < 2_000_000
        assert autograded.stat().st_size < 1_000_000  # the huge outputs were cut
        assert "BEGIN HIDDEN TESTS" not in feedback.read_text()
    else:
        assert not autograded.exists() and not feedback.exists()


def test_every_submission_has_a_row_and_each_csv_only_its_parts(graded):
    root = graded["root"]
    assert set(graded["rows"]) == {(c.student, c.assignment) for c in CASES}
    for assignment in course.assignment_ids(COURSE):
        with open(root / "grades" / f"{assignment}.csv", newline="") as file:
            columns = next(csv.reader(file))
        assert columns == ["student", *[p["id"] for p in _parts(assignment)], "score",
                           "max_score", "pending", "status", "flags"]
    with open(root / "grades.csv", newline="") as file:
        summary = list(csv.DictReader(file))
    assert list(summary[0]) == ["student", "assignment", "score", "max_score", "pending",
                                "status", "flags"]
    assert len(summary) == len(CASES)


def _hidden_lines(assignment: str) -> set[str]:
    """The hidden tests' source lines of an assignment (at least 20 characters long) that
    appear nowhere else in its source: not in the visible tests, not in the solutions."""
    hidden, shown = set(), []
    for cell in _notebook("source", assignment).cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN HIDDEN TESTS" in line or "### END HIDDEN TESTS" in line:
                inside = "BEGIN" in line
            elif inside:
                hidden.add(line.strip())
            else:
                shown.append(line)
    shown = "\n".join(shown)
    return {line for line in hidden if len(line) >= 20 and line not in shown}


def test_no_feedback_shows_hidden_test_source(graded):
    hidden = {a: _hidden_lines(a) for a in course.assignment_ids(COURSE)}
    pages = sorted((graded["root"] / "feedback").rglob("*.html"))
    assert len(pages) == sum(c.raw is None and "could not be graded" not in c.status
                             for c in CASES)
    for page in pages:
        text = _visible_text(page)
        leaked = [line for line in hidden[page.parent.name] if line in text]
        assert not leaked, (page, leaked[:3])


def test_an_error_in_a_hidden_test_is_a_message_only(graded):
    leaky = next(c for c in CASES if c.student == "leaky")
    text = _visible_text(_feedback(graded["root"], leaky))
    assert "hidden test: your code raised KeyError" in text
    # The KeyError's own text is the hidden input; the line that called relu is hidden code.
    assert "-745.0, -60.0" not in text and "KeyError: (" not in text
    assert "got = flat(relu(" not in text
    # A visible test's failure stays whole: the student needs it.
    partial = next(c for c in CASES if (c.student, c.assignment) == ("partial", A1))
    assert "sigmoid is not right yet" in _visible_text(_feedback(graded["root"], partial))


def test_figures_are_kept_in_feedback_and_autograded_notebooks(graded):
    root = graded["root"]
    for case in CASES:
        if case.student not in ("complete", "tampered"):
            continue
        autograded = nbformat.read(root / "autograded" / case.student / case.assignment
                                   / f"{case.assignment}.ipynb", as_version=4)
        figures = sum("image/png" in o.get("data", {}) for c in autograded.cells
                      if c.cell_type == "code" for o in c.outputs)
        page = _feedback(root, case).read_text()
        assert figures >= 1, (case.student, case.assignment)
        assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == figures, (
            case.student, case.assignment)


def test_pending_written_answers_read_as_pending(graded):
    complete = next(c for c in CASES if (c.student, c.assignment) == ("complete", A1))
    text = _visible_text(_feedback(graded["root"], complete))
    assert "90 / 100 points (10 points pending: not graded yet)" in text
    assert "a1_written_answer: pending: graded by hand (10 points)" in text
    line = next(line for line in graded["printed"].splitlines()
                if line.split()[:2] == ["complete", A1])
    assert "90 / 100" in line and "a1_written_answer pending" in line
    blank = next(c for c in CASES if (c.student, c.assignment) == ("blank", A1))
    assert "a1_written_answer: 0 / 10" in _visible_text(_feedback(graded["root"], blank))


def test_math_renders_offline(graded):
    page = _feedback(graded["root"], CASES[0]).read_text()
    assert page.count("<math") >= 10  # the formulas, as MathML
    assert "<script" not in page  # nothing to load: no MathJax, no require.js, no CDN
    assert "$$\\sigma(z)" not in page and "mathjax" not in page.lower()


def test_only_changed_submissions_are_graded_again(graded, tmp_path):
    root = graded["root"]
    stamps = {p: p.stat().st_mtime_ns for p in (root / "autograded").rglob("*.ipynb")}
    changed = next(c for c in CASES if (c.student, c.assignment) == ("blank", A2))
    notebook = changed.notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell("a last note"))
    nbformat.write(notebook, root / "submitted" / "blank" / A2 / f"{A2}.ipynb")
    printed = _grade(root)
    # and the three that could not be graded (kernel_killer, worker_killer, worker_stopper):
    # results without scores are not kept, as the cause may be elsewhere
    assert f"{len(CASES)} submissions: 4 graded now" in printed
    again = {p: p.stat().st_mtime_ns for p in (root / "autograded").rglob("*.ipynb")}
    assert [p for p in stamps if again[p] != stamps[p]] == [
        root / "autograded" / "blank" / A2 / f"{A2}.ipynb"]
    assert _rows(root) == graded["rows"]


def test_a_manual_grade_given_in_formgrader_reaches_the_csv_and_the_feedback(graded):
    """A written answer graded by hand (formgrader writes it in nbgrader's gradebook): the next
    run grades nothing again, re-writes that feedback only, and the score is in the CSV."""
    from nbgrader.api import Gradebook

    root = graded["root"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        gradebook.find_grade("a1_written_answer", A1, A1, "complete").manual_score = 7
        gradebook.db.commit()
    assert "3 graded now" in _grade(root)  # the three that could not be graded, again
    row = _rows(root)[("complete", A1)]
    assert (row["a1_written_answer"], row["score"], row["pending"]) == ("7", "97", "")
    complete = next(c for c in CASES if (c.student, c.assignment) == ("complete", A1))
    text = _visible_text(_feedback(root, complete))
    assert "a1_written_answer: 7 / 10" in text and "97 / 100 points" in text


def test_import_dlhelpers_and_checks_does_not_import_torch():
    code = ("import sys; import dlhelpers; from dlhelpers import checks, nn, set_seed; "
            "set_seed(0); assert 'torch' not in sys.modules, 'torch imported'; "
            "import torch; assert torch.initial_seed() == 0, 'torch not seeded'; "
            "assert dlhelpers.fit is dlhelpers.train.fit")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("assignment", [A1, A2])
def test_a1_and_a2_set_up_without_torch(assignment):
    """The set-up cells of a1 and a2 (all that runs before the student's code) skip torch's
    import, about 2 s of every submission's grading."""
    setup = "\n".join(cell.source for cell in _notebook("source", assignment).cells
                      if (_grade_id(cell) or "").endswith(("_setup", "_imports")))
    check = "\nimport sys\nassert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", setup + check], check=True)


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
    assert scan._scan_code(_answers(A1)["sigmoid"], {"sigmoid"}, imported) == []
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
        assert any(flag in f for f in scan._scan_code(code, {"sigmoid"}, imported)), code


# ---------------------------------------------------------------------------------------------
# Stuck grading processes
# ---------------------------------------------------------------------------------------------


def test_a_stopped_or_overdue_worker_is_killed_and_a_busy_one_is_not(tmp_path):
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    stopped, overdue, busy = (subprocess.Popen(sleep) for _ in range(3))
    try:
        os.kill(stopped.pid, signal.SIGSTOP)
        stat = Path(f"/proc/{stopped.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":  # the signal arrived
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for process, key in ((stopped, "stopped"), (overdue, "overdue"), (busy, "busy")):
            (tmp_path / str(process.pid)).write_text(key)
        # Timed from when the main process first saw the marker, not from the marker's time
        # (which the submission's code could change).
        os.utime(tmp_path / str(busy.pid), (time.time() - 100, time.time() - 100))
        why, first_seen = {}, {(overdue.pid, "overdue"): time.monotonic() - 100}
        course._stop_stuck_workers(tmp_path, {"stopped": 50, "overdue": 50, "busy": 50}, why,
                                   first_seen)
        assert stopped.wait(10) == -signal.SIGKILL and overdue.wait(10) == -signal.SIGKILL
        assert busy.poll() is None
        assert "was stopped" in why["stopped"] and "after 50 s" in why["overdue"]
        assert set(why) == {"stopped", "overdue"}
    finally:
        for process in (stopped, overdue, busy):
            process.kill()
            process.wait()


def test_a_submissions_time_limit_is_its_assignments_cell_limits_together():
    from traitlets.config import Config

    config = Config()
    config.Execute.timeout = 30
    setup = {"nbgrader": {"locked": True, "grade_id": "imports", "grade": False}}
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy", metadata=setup),
        nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2"),
        nbformat.v4.new_markdown_cell("text")])
    assert course.time_limit(notebook, config) == 120 + 20 * 30 + 300 + 2 * 30
    config.LimitedExecute.setup_timeout = 100
    assert course.time_limit(notebook, config, extra_cells=0) == 120 + 100 + 2 * 30


def test_files_are_written_with_the_mode_open_gives(tmp_path):
    """nbgrader copies a feedback page to the exchange with its mode: students must read it."""
    from grading.feedback import write_atomically

    write_atomically(tmp_path / "written.html", "page")
    (tmp_path / "opened.html").write_text("page")
    assert (tmp_path / "written.html").stat().st_mode == (tmp_path / "opened.html").stat().st_mode
    assert [p.name for p in tmp_path.iterdir()].count("written.html") == 1
    assert len(list(tmp_path.iterdir())) == 2  # no temporary file left
