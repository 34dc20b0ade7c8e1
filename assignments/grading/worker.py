"""Autograding in long-lived worker processes: nbgrader's preprocessors, set up once per process.

`course.py grade` starts `--jobs` workers (`start` runs once in each); each then grades one
submission after another (`grade`): run the notebook with the hidden tests (nbgrader's
autograde preprocessors, read from nbgrader_config.py), write the autograded notebook, score
every part, scan the submission and write the feedback. Every task returns a result and never
raises: one broken submission costs its own grade only. Each worker's kernels are forked from
its kernel template (kernels.py), which has imported what the assignments import.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde
from nbgrader.preprocessors import AssignLatePenalties, Execute, SaveAutoGrades
from nbgrader.utils import determine_grade, is_grade

from grading import kernel_template, kernels, records, scan, submissions
from grading.feedback import FeedbackWriter, write_atomically

_WORKER: Worker | None = None
_RUNNING: Path | None = None
PR_SET_PDEATHSIG = 1
# Imported by dlhelpers.data when first used, not by the notebooks' own import lines: the kernel
# template imports them too (0.8 s less for each submission of a2 and a3).
LAZY_IMPORTS = ["sklearn.datasets", "sklearn.model_selection"]


class Worker:
    def __init__(self, config, db_url: str, release_dir: Path):
        self.db_url = db_url
        self.release_dir = release_dir
        # nbgrader's autograde steps, as configured (sanitize, then run and score), but the
        # gradebook's writes: the main process saves the grades (one writer for the database).
        steps = Autograde(config=config)
        self.steps = [step(config=config) for step in
                      [*steps.sanitize_preprocessors, *steps.autograde_preprocessors]
                      if step not in (SaveAutoGrades, AssignLatePenalties)]
        for step in self.steps:
            if isinstance(step, Execute):  # kernels forked from this worker's template
                step.kernel_manager_class = kernels.ForkedKernelManager
        self.feedback = FeedbackWriter(config)
        self.notebooks: dict[Path, nbformat.NotebookNode] = {}

    def notebook(self, path: Path) -> nbformat.NotebookNode:
        if path not in self.notebooks:
            self.notebooks[path] = nbformat.read(path, as_version=4)
        return self.notebooks[path]

    def grade(self, task: dict) -> dict:
        """Autograde one submission: its scores, status notes, flags (and files written)."""
        submitted, autograded_dir = Path(task["path"]), Path(task["autograded_dir"])
        notebook = nbformat.read(submitted, as_version=4)
        flags = submission_flags(notebook, self.notebook(Path(task["source"])), self.notebook(
            self.release_dir / task["assignment"] / task["name"]))
        # Run where nbgrader would: a copy of the submission's folder (its data files too).
        if autograded_dir.exists():
            shutil.rmtree(autograded_dir)
        shutil.copytree(submitted.parent, autograded_dir,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        resources = {"nbgrader": {"student": task["student"], "assignment": task["assignment"],
                                  "notebook": Path(task["name"]).stem, "db_url": self.db_url},
                     "metadata": {"path": str(autograded_dir)}}
        try:
            for step in self.steps:  # __call__: a step that is not `enabled` does nothing
                notebook, resources = step(notebook, resources)
        except Exception as error:  # the kernel died, or stopped answering
            shutil.rmtree(autograded_dir, ignore_errors=True)
            reason = next(iter(str(error).strip().splitlines()), "")[:200]
            # Not kept for the next run ("retry"): the cause may be outside the submission
            # (the machine's memory, another submission's process).
            return {"problems": [f"could not be graded: the notebook's kernel died or stopped "
                                 f"responding ({type(error).__name__}{': ' if reason else ''}"
                                 f"{reason})"], "flags": flags, "scores": {}, "retry": True}
        notebook = nbformat.from_dict(notebook)  # cells put back by OverwriteCells are dicts
        write_atomically(autograded_dir / task["name"], nbformat.writes(notebook))
        scores = {}
        for cell in notebook.cells:
            if is_grade(cell):
                score, _ = determine_grade(cell)
                scores[cell.metadata.nbgrader["grade_id"]] = score
        problems = timeouts(notebook)
        parts = records.scored_parts(task["parts"], scores, task["manual_scores"])
        self.feedback.write(notebook, parts, task["notes"] + problems, task["assignment"],
                            Path(task["feedback"]))
        copy_release_files(autograded_dir, Path(task["feedback"]).parent)
        return {"problems": problems, "flags": flags, "scores": scores}

    def write_feedback(self, task: dict) -> None:
        """Re-write the feedback of an autograded notebook (after a manual grade changed)."""
        autograded = nbformat.read(Path(task["autograded_dir"]) / task["name"], as_version=4)
        parts = records.scored_parts(task["parts"], task["scores"], task["manual_scores"])
        self.feedback.write(autograded, parts, task["notes"], task["assignment"],
                            Path(task["feedback"]))
        copy_release_files(Path(task["autograded_dir"]), Path(task["feedback"]).parent)


# What `nbgrader release_feedback` reads beside each feedback page, as `generate_feedback` leaves
# it: the submission's time and the secret that names the student's copy in the exchange.
RELEASE_FILES = ("timestamp.txt", "submission_secret.txt")


def copy_release_files(autograded_dir: Path, feedback_dir: Path) -> None:
    """Copy the submission's timestamp and secret (where it has them) next to its feedback."""
    for name in RELEASE_FILES:
        if (autograded_dir / name).is_file():
            write_atomically(feedback_dir / name, (autograded_dir / name).read_text())


def timeouts(notebook: nbformat.NotebookNode) -> list[str]:
    """Status notes for the cells of an autograded notebook stopped by the time limit."""
    hit = [cell.metadata.get("nbgrader", {}).get("grade_id")
           or "cell " + cell.get("id", str(index)).removeprefix("cell-")
           for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
           and any(o.get("ename") == "CellTimeoutError" for o in cell.outputs)]
    return [f"time limit hit in {', '.join(hit)}"] if hit else []


def start(config, db_url: str, release_dir: Path, running: Path) -> None:
    """Set up this worker process (once): nbgrader's preprocessors, the HTML exporter and the
    kernel template. `running`: the folder where it names the task it is running (a file per
    worker process), for the main process to know whom a stuck or dead worker was grading."""
    global _WORKER, _RUNNING
    # Ends when the main process ends, even killed (Linux; its kernel template ends with it).
    kernel_template.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # as nbgrader's autograde sets it
    _WORKER, _RUNNING = Worker(config, db_url, release_dir), running
    imports = kernels.notebook_imports(sorted(release_dir.glob("*/*.ipynb")))
    problem = kernels.use_template([*imports, *LAZY_IMPORTS])
    if problem:
        print(problem, file=sys.stderr, flush=True)


@contextmanager
def _running(key: str):
    marker = _RUNNING / str(os.getpid())
    write_atomically(marker, key)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def grade(task: dict) -> dict:
    """Grade one submission in this worker (see `Worker.grade`); never raises."""
    with _running(task["key"]):
        try:
            return {"key": task["key"], **_WORKER.grade(task)}
        except Exception:
            return {"key": task["key"], "scores": {}, "flags": [], "retry": True,
                    "problems": ["could not be graded: the grader failed: "
                                 + traceback.format_exc().strip().splitlines()[-1][:200]]}


def write_feedback(task: dict) -> dict:
    """Write one feedback page in this worker; never raises."""
    with _running(task["key"]):
        try:
            _WORKER.write_feedback(task)
            return {"key": task["key"], "problems": []}
        except Exception:
            return {"key": task["key"], "problems": [
                "feedback not written: " + traceback.format_exc().strip().splitlines()[-1][:200]]}


def submission_flags(notebook, source, release) -> list[str]:
    """What an instructor should look at in a submission (scan.py), given the assignment's
    source and student version; repeated grade ids are removed from `notebook` first, as
    grading does."""
    submissions.keep_last_of_repeated_grade_ids(notebook)
    return scan.scan(notebook, source, release)


def flags_of(task: dict, release_dir: Path) -> list[str]:
    """The flags of a submission whose grading process died (read here, in the main process);
    [] if a notebook cannot be read."""
    try:
        return submission_flags(*(nbformat.read(path, as_version=4) for path in (
            task["path"], task["source"], release_dir / task["assignment"] / task["name"])))
    except Exception:
        return []
