"""The course's grading workflow on top of nbgrader: `make assignments` and `make grade`.

    python assignments/course.py release   # source/ -> release/ (student versions, committed)
    python assignments/course.py grade     # submitted/ -> grades.csv, feedback/, autograded/

`--root DIR` works on another copy of the course directory (the tests grade in a temporary
copy). Each step is one plain nbgrader command, printed as it runs, so an instructor can run
it by hand too; assignments/nbgrader_config.py holds the settings. See README_SECTION.md.

`grade` also reads every submission (without running it) and reports, per submission, code
an instructor should look at: test cells edited or deleted (nbgrader restores them before
grading, so this changes no score), the course's reference functions imported instead of
written, re-bound library functions (`np.allclose = ...`, `checks.check_sigmoid = ...`), and
tools that reach into the grading kernel (`get_ipython`, `sys.modules`, `builtins`, ...).
These flags change no score: they say where to look.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent

# Names whose use in a submission is worth a look (see the module docstring).
SUSPICIOUS_CALLS = {"__import__", "compile", "delattr", "eval", "exec", "exit", "get_ipython",
                    "getattr", "globals", "quit", "setattr", "vars"}
SUSPICIOUS_MODULES = {"IPython", "atexit", "builtins", "ctypes", "gc", "importlib", "inspect",
                      "ipykernel", "multiprocessing", "signal", "subprocess", "threading"}
SUSPICIOUS_ATTRIBUTES = {"_exit", "_getframe", "__builtins__", "__class__", "__code__",
                         "__dict__", "__globals__", "__subclasses__", "displayhook", "excepthook",
                         "exit", "kill", "modules", "setprofile", "settrace", "system"}
HARMLESS_MAGICS = {"matplotlib", "time", "timeit"}
BUILTIN_NAMES = {name for name in dir(builtins) if not name.startswith("_")}


# ---------------------------------------------------------------------------------------------
# Running nbgrader
# ---------------------------------------------------------------------------------------------


VERBOSE = False  # print nbgrader's whole log (--verbose), not only its errors


def nbgrader(root: Path, *args: str) -> int:
    """Run one nbgrader command on the course directory `root`; return its exit status."""
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    print("$ nbgrader " + " ".join(args), flush=True)
    start = time.perf_counter()
    # nbgrader starts the `alembic` program (gradebook set-up): it lives next to this Python.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    # nbgrader's full log is long (it warns about every test cell with hidden tests, as those
    # differ from the released cell); show its errors. Run the command by hand for the rest.
    for line in result.stderr.splitlines():
        if VERBOSE or "| ERROR]" in line:
            print("  " + line[:300])
    print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)
    return result.returncode


def assignment_ids(root: Path) -> list[str]:
    """The assignments: the folders of source/ that hold a notebook."""
    return sorted(p.name for p in (root / "source").iterdir() if any(p.glob("*.ipynb")))


def release(root: Path = ROOT) -> None:
    """Generate release/ (no solutions, no hidden tests) from source/, for every assignment."""
    status = nbgrader(root, "generate_assignment", "*", "--force", "--no-db")
    if status != 0:
        raise SystemExit(f"nbgrader generate_assignment failed (exit status {status})")


# ---------------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------------


def grade(root: Path = ROOT, timeout: int | None = None) -> list[dict]:
    """Autograde every submission, write feedback and grades.csv; return the CSV's rows.

    Submissions are read from submitted/<student>/<assignment>/<notebook>.ipynb. The gradebook
    (gradebook.db) keeps manual grades (written answers, given in nbgrader's formgrader)
    across runs; every run re-grades every submission from scratch.
    """
    ids = assignment_ids(root)
    submissions = sorted((s.parent.name, s.name) for s in root.glob("submitted/*/*")
                         if s.name in ids)
    if not submissions:
        print(f"no submissions in {root / 'submitted'}/<student>/<assignment>/: nothing to grade")
        return write_grades(root, [])
    with tempfile.TemporaryDirectory() as scratch:
        # Record the assignments (with their hidden tests) in the gradebook; the release it
        # writes goes to a scratch folder, so the committed release/ stays as it is.
        if nbgrader(root, "generate_assignment", "*", "--force",
                    f"--CourseDirectory.release_directory={scratch}") != 0:
            raise SystemExit("nbgrader generate_assignment failed: see the messages above")
        limit = [] if timeout is None else [f"--Execute.timeout={timeout}"]
        # A submission that cannot be graded (its kernel died) makes the exit status non-zero;
        # the others are still graded, and grades.csv reports it.
        nbgrader(root, "autograde", "*", "--force", *limit)
        nbgrader(root, "generate_feedback", "*", "--force")
        rows = [grade_row(root, Path(scratch), student, assignment)
                for student, assignment in submissions]
    return write_grades(root, rows)


def grade_cells(notebook_path: Path) -> list[dict]:
    """The graded cells of a source notebook, in order: grade_id, points, auto or manual."""
    cells = []
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            kind = "manual" if meta.get("solution") else "auto"
            cells.append({"id": meta["grade_id"], "points": float(meta["points"]), "kind": kind})
    return cells


def grade_row(root: Path, release_dir: Path, student: str, assignment: str) -> dict:
    """One row of grades.csv: the part scores, total, status and flags of one submission."""
    from nbgrader.api import Gradebook, MissingEntry  # slow to import: only grading needs it

    row = {"student": student, "assignment": assignment}
    total, maximum, pending, status, flags = 0.0, 0.0, [], [], []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for source_nb in sorted((root / "source" / assignment).glob("*.ipynb")):
            name = source_nb.stem
            autograded = root / "autograded" / student / assignment / source_nb.name
            submitted = root / "submitted" / student / assignment / source_nb.name
            if not submitted.exists():
                status.append(f"{name}.ipynb not submitted")
            elif not autograded.exists():
                status.append(f"{name}.ipynb could not be graded (its kernel died?): see the log")
            else:
                status += timeouts(autograded)
            if submitted.exists():
                flags += scan(submitted, source_nb, release_dir / assignment / source_nb.name)
            for part in grade_cells(source_nb):
                maximum += part["points"]
                try:
                    result = gradebook.find_grade(part["id"], name, assignment, student)
                    manual, auto = result.manual_score, result.auto_score
                except MissingEntry:
                    manual, auto = None, None
                if part["kind"] == "manual" and manual is None and auto is None and (
                        submitted.exists()):  # a written answer waiting for its grader
                    row[part["id"]] = ""
                    pending.append(part["id"])
                    continue
                score = manual if manual is not None else (auto or 0.0)
                row[part["id"]] = _number(score)
                total += score
    row.update(score=_number(total), max_score=_number(maximum), pending=" ".join(pending),
               status="; ".join(status) or "graded", flags="; ".join(dict.fromkeys(flags)))
    return row


def timeouts(autograded: Path) -> list[str]:
    """Status notes for the cells of an autograded notebook stopped by the time limit."""
    cells = nbformat.read(autograded, as_version=4).cells
    hit = [cell.metadata.get("nbgrader", {}).get("grade_id")
           or "cell " + cell.get("id", str(index)).removeprefix("cell-")
           for index, cell in enumerate(cells) if cell.cell_type == "code"
           and any(o.get("ename") == "CellTimeoutError" for o in cell.outputs)]
    return [f"time limit hit in {', '.join(hit)}"] if hit else []


def write_grades(root: Path, rows: list[dict]) -> list[dict]:
    """Write grades.csv: one row per submission, one column per graded part."""
    parts = []
    for assignment in assignment_ids(root):
        for source_nb in sorted((root / "source" / assignment).glob("*.ipynb")):
            parts += [part["id"] for part in grade_cells(source_nb)]
    duplicates = sorted({p for p in parts if parts.count(p) > 1})
    if duplicates:
        raise SystemExit(f"grade ids must be unique across assignments, repeated: {duplicates}")
    columns = ["student", "assignment", *parts, "score", "max_score", "pending", "status",
               "flags"]
    with open(root / "grades.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        note = "" if row["status"] == "graded" else f"  [{row['status']}]"
        print(f"{row['student']:>16} {row['assignment']:<28} {row['score']:>6} / "
              f"{row['max_score']}{note}")
        if row["flags"]:
            print(f"{'':>17}flags: {row['flags']}")
    print(f"wrote {root / 'grades.csv'}, feedback in {root / 'feedback'}/<student>/<assignment>/")
    return rows


def _number(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------
# Reading submissions for the instructor (no code is run)
# ---------------------------------------------------------------------------------------------


def scan(submitted: Path, source_nb: Path, released_nb: Path) -> list[str]:
    """What an instructor should look at in one submitted notebook (see the module docstring)."""
    source = nbformat.read(source_nb, as_version=4)
    released = {c.metadata["nbgrader"]["grade_id"]: c.source
                for c in nbformat.read(released_nb, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("locked")}
    # The functions the assignment asks for: written in its solution cells.
    own = {name for cell in source.cells if cell.metadata.get("nbgrader", {}).get("solution")
           for name in re.findall(r"^def (\w+)", cell.source, flags=re.M)}
    flags, seen, student_code = [], set(), []
    for cell in nbformat.read(submitted, as_version=4).cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in released:
            seen.add(grade_id)
            if cell.source != released[grade_id]:
                flags.append(f"edited read-only cell {grade_id} (restored for grading)")
        elif cell.cell_type == "code":
            label = grade_id or "cell " + cell.get("id", "?").removeprefix("cell-")
            student_code.append((label, cell.source))
    flags += [f"deleted read-only cell {g} (restored for grading)" for g in released
              if g not in seen]
    imported = _imported_names(list(released.values()) + [code for _, code in student_code])
    for where, code in student_code:
        flags += [f"{where}: {flag}" for flag in _scan_code(code, own, imported)]
    return flags


def _python(code: str) -> tuple[str, list[str]]:
    """The cell as plain Python (IPython magics and shell lines blanked) and its magics."""
    lines, magics = [], []
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith(("%", "!")):
            magics.append(stripped.split()[0])
            lines.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines), magics


def _imported_names(codes: list[str]) -> dict[str, str]:
    """Names bound by imports anywhere in the notebook, mapped to the module they come from."""
    names = {}
    for code in codes:
        try:
            tree = ast.parse(_python(code)[0])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update({(a.asname or a.name).split(".")[0]: a.name for a in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.update({a.asname or a.name: node.module for a in node.names})
    return names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _scan_code(code: str, own: set[str], imported: dict[str, str]) -> list[str]:
    """Flags for one cell of student code."""
    python, magics = _python(code)
    flags = [f"runs {m}" for m in magics if m.lstrip("%") not in HARMLESS_MAGICS]
    try:
        tree = ast.parse(python)
    except SyntaxError as error:
        return [*flags, f"does not parse ({error.msg}, line {error.lineno})"]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            flags += [f"imports {m}" for m in modules if m.split(".")[0] in SUSPICIOUS_MODULES]
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlhelpers"):
                flags += [f"imports {a.name} from {node.module} instead of writing it"
                          for a in node.names if a.name in own]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in SUSPICIOUS_CALLS):
            flags.append(f"calls {node.func.id}()")
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            flags.append("uses __builtins__")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and (
                node.id in BUILTIN_NAMES):
            flags.append(f"re-binds the built-in {node.id}")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in BUILTIN_NAMES:
            flags.append(f"re-binds the built-in {node.name}")
        elif isinstance(node, ast.Attribute):
            root = _root_name(node)
            module = imported.get(root, "")
            used = ast.unparse(node)[:60]
            if node.attr in SUSPICIOUS_ATTRIBUTES and (module or node.attr.startswith("__")):
                flags.append(f"uses {used}")
            if module.startswith("dlhelpers") and (node.attr in own or (
                    node.attr.startswith("_") and not node.attr.startswith("__"))):
                flags.append(f"uses {used} from dlhelpers instead of writing it")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [
                node.target]
            for target in targets:
                for part in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [
                        target]:
                    if isinstance(part, (ast.Attribute, ast.Name)) and (
                            _root_name(part) in imported):
                        flags.append(f"re-binds {ast.unparse(part)} (an imported name)")
    return flags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["release", "grade"])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the course directory (default: this file's folder)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell time limit in seconds (default: nbgrader_config.py's)")
    parser.add_argument("--verbose", action="store_true", help="print nbgrader's whole log")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    root = args.root.resolve()
    if args.command == "release":
        release(root)
    else:
        grade(root, timeout=args.timeout)


if __name__ == "__main__":
    main()
