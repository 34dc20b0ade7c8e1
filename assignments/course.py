"""The course's grading workflow on top of nbgrader: `make assignments` and `make grade`.

    python assignments/course.py release   # source/ -> release/ (student versions, committed)
    python assignments/course.py grade     # submitted/ -> grades, feedback/, autograded/

`grade` reads nbgrader's layout, submitted/<student>/<assignment>/<notebook>.ipynb (what
`nbgrader collect` writes), and grades in parallel (`--jobs`, default: one per core): each
worker process sets up nbgrader's autograde preprocessors once (nbgrader_config.py) and grades
submission after submission, each in a kernel forked from the worker's kernel template
(grading/kernels.py). A submission graded before is graded again only when it, the
assignment's source, the settings or the grader changed (`--force`: all of them).

It writes the automatic scores into nbgrader's gradebook (`CourseDirectory.db_url`; SQLite
`gradebook.db` by default), where formgrader shows them and keeps the manual scores of written
answers; grades.csv (totals per student and assignment) and grades/<assignment>.csv (per part);
feedback/<student>/<assignment>/<notebook>.html and autograded/ (nbgrader's layout).

Every submission gets a row; a problem with one (unreadable, renamed, cells repeated, kernel
died, time limit) is named in its status and never stops the others. The `flags` column lists
what an instructor should look at (grading/scan.py). `--root DIR` works on another copy of the
course directory (the tests grade in a temporary copy). See the README, "Teaching with this course".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # the `grading` package beside this file

from grading import records, submissions, worker  # noqa: E402
from grading.feedback import write_atomically  # noqa: E402
from grading.kernel_template import proc_stat  # noqa: E402

GRADER_FILES = [*sorted((ROOT / "grading").rglob("*.py")),
                *sorted((ROOT / "grading" / "templates").rglob("*.j2"))]


# ---------------------------------------------------------------------------------------------
# Running nbgrader
# ---------------------------------------------------------------------------------------------


VERBOSE = False  # print nbgrader's whole log (--verbose), not only its errors


def nbgrader(root: Path, *args: str) -> int:
    """Run one nbgrader command on the course directory `root`; return its exit status."""
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    print("$ nbgrader " + " ".join(args), flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, env=_environment(), capture_output=True, text=True)
    # nbgrader's full log is long (it warns about every test cell with hidden tests, as those
    # differ from the released cell); show its errors. Run the command by hand for the rest.
    for line in result.stderr.splitlines():
        if VERBOSE or "| ERROR]" in line:
            print("  " + line[:300])
    print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)
    return result.returncode


def _environment() -> dict[str, str]:
    """This process's environment, with this Python's folder first on PATH: nbgrader starts
    the `alembic` program (gradebook set-up), which lives there."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


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


def load_config(root: Path, timeout: int | None = None):
    """nbgrader's configuration of the course (root/nbgrader_config.py) and its gradebook URL."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    if timeout is not None:
        config.Execute.timeout = timeout
    return config, CourseDirectory(config=config).db_url


def record_assignments(root: Path, gradebook: records.Gradebook, ids: list[str]) -> Path:
    """Record the assignments (with their hidden tests) in the gradebook, as nbgrader's
    generate_assignment does, when the source or the settings changed since the last time;
    return the folder of the student versions it writes (to compare submissions with)."""
    from nbgrader.api import MissingEntry

    release_dir = root / ".grading" / "release"
    stamp = root / ".grading" / "generated"
    key = submissions.fingerprint(gradebook.db_url, (root / "nbgrader_config.py").read_bytes(),
                                  *(p.read_bytes() for a in ids
                                    for p in sorted((root / "source" / a).glob("*.ipynb"))))
    try:
        for assignment in ids:
            gradebook.gradebook.find_assignment(assignment)
        fresh = stamp.is_file() and stamp.read_text() == key and release_dir.is_dir()
    except MissingEntry:
        fresh = False
    if not fresh:
        if nbgrader(root, "generate_assignment", "*", "--force",
                    f"--CourseDirectory.release_directory={release_dir}") != 0:
            raise SystemExit("nbgrader generate_assignment failed: see the messages above")
        write_atomically(stamp, key)
    return release_dir


def grade(root: Path = ROOT, timeout: int | None = None, jobs: int | None = None,
          force: bool = False) -> list[dict]:
    """Grade every submission in root/submitted/; write the grades and feedback; return the
    rows of grades.csv (each with its parts' scores too)."""
    start = time.perf_counter()
    config, db_url = load_config(root, timeout)
    ids = assignment_ids(root)
    source_of = {a: sorted((root / "source" / a).glob("*.ipynb"))[0] for a in ids}
    parts_of = {a: records.grade_cells(source_of[a]) for a in ids}
    found = submissions.find(root, {a: source_of[a].name for a in ids})
    if not found:
        print(f"no submissions in {root / 'submitted'}/<student>/<assignment>/: nothing to grade")
        records.write_csvs(root, parts_of, [])
        return []
    os.environ.update(_environment())  # for the gradebook opened here
    gradebook = records.Gradebook(db_url)
    try:
        release_dir = record_assignments(root, gradebook, ids)
        rows, graded = _grade_all(root, config, db_url, release_dir, gradebook, found,
                                  source_of, parts_of, timeout, jobs or os.cpu_count() or 1, force)
    finally:
        gradebook.close()
    records.write_csvs(root, parts_of, rows)
    _print_summary(root, rows, graded, time.perf_counter() - start)
    return rows


def _grade_all(root, config, db_url, release_dir, gradebook, found, source_of, parts_of,
               timeout, jobs, force) -> tuple[list[dict], int]:
    """Grade what needs it, in parallel; return the rows and how many were graded now.

    Each result is saved (gradebook, then the result cache) as soon as it arrives: stopping
    the run loses none of the grades already computed."""
    grader = submissions.fingerprint((root / "nbgrader_config.py").read_bytes(), str(timeout),
                                     *(p.read_bytes() for p in GRADER_FILES))
    results, tasks, notes = {}, {}, {}  # results: by key, as in the cache
    for sub in filter(lambda sub: sub.notebook is not None, found):
        task = {
            "key": sub.key, "student": sub.student, "assignment": sub.assignment,
            "name": sub.name, "path": str(sub.path), "source": str(source_of[sub.assignment]),
            "autograded_dir": str(root / "autograded" / sub.student / sub.assignment),
            "feedback": str(root / "feedback" / sub.student / sub.assignment
                            / f"{Path(sub.name).stem}.html"),
            "parts": parts_of[sub.assignment], "notes": sub.problems,
            "manual_scores": gradebook.manual_scores(sub.student, sub.assignment,
                                                     Path(sub.name).stem),
            "fingerprint": submissions.fingerprint(grader, sub.path.name, sub.path.read_bytes(),
                                                   source_of[sub.assignment].read_bytes()),
        }
        previous = None if force else _cached(root, sub)
        # Results without scores are not kept (they are graded again next time): the cause
        # may be outside the submission (the machine's memory, another submission's process).
        if previous and previous["fingerprint"] == task["fingerprint"] and (
                Path(task["autograded_dir"], sub.name).is_file()):
            results[sub.key] = previous
            if previous["manual_scores"] != task["manual_scores"]:  # feedback out of date
                tasks[sub.key] = ("feedback", {**task, "scores": previous["scores"],
                                               "notes": sub.problems + previous["problems"]})
        else:
            tasks[sub.key] = ("grade", task)
    by_key = {sub.key: sub for sub in found}

    def record(key: str, result: dict) -> None:
        sub, (kind, task) = by_key[key], tasks[key]
        if kind == "feedback":
            notes[key] = result["problems"]  # "feedback not written", if so
            result = results[key]
        elif result["scores"]:
            try:
                gradebook.save(sub.student, sub.assignment,
                               Path(task["autograded_dir"]) / sub.name, sub.timestamp)
            except Exception as error:  # the grade stays in the CSV files and the cache
                notes[key] = [f"not saved in the gradebook ({error})"[:200]]
        results[key] = {**result, "fingerprint": task["fingerprint"],
                        "manual_scores": task["manual_scores"]}
        if not result.get("retry"):
            _save_cache(root, sub, results[key])

    limit_of = {a: time_limit(nbformat.read(source_of[a], as_version=4), config)
                for a in source_of}
    limits = {sub.key: limit_of[sub.assignment] for sub in found if sub.key in tasks}
    _run(tasks, config, db_url, release_dir, jobs, record, limits)
    rows = []
    for sub in found:
        result = results.get(sub.key, {"scores": {}, "problems": [], "flags": [],
                                       "manual_scores": {}})
        parts = records.scored_parts(parts_of[sub.assignment], result["scores"],
                                     result["manual_scores"])
        rows.append(records.row(sub.student, sub.assignment, parts,
                                sub.problems + result["problems"] + notes.get(sub.key, []),
                                result["flags"]))
    return rows, sum(kind == "grade" for kind, _ in tasks.values())


def _run(tasks: dict, config, db_url: str, release_dir: Path, jobs: int, record,
         limits: dict[str, float]) -> None:
    """Run the tasks in `jobs` long-lived worker processes; `record(key, result)` each result
    as it arrives.

    A submission's code runs with the grader's rights and can end or stop its grading process.
    A worker that is stopped, or whose task runs past its limit (`limits`, seconds), is killed.
    Either way the pool is broken: the tasks that were running then are graded again, each
    alone in a pool of its own (one that breaks that too is named as the cause; it is graded
    again next run, as a submission's code can make another look guilty), and the rest in a
    new pool. No other submission loses its grade.
    """
    remaining, done = dict(tasks), [0]
    args = (config, db_url, release_dir)

    def progress(key: str, result: dict) -> None:
        record(key, result)
        done[0] += 1
        print(f"  {done[0]}/{len(tasks)} {key}", flush=True)

    while remaining:
        suspects = _run_pool(remaining, jobs, args, limits, progress)
        if suspects is None:
            break
        # Unknown (it broke between tasks): take the next one alone, which always progresses.
        for key in sorted(suspects) or [next(iter(remaining))]:
            kind, task = remaining.pop(key)
            why = {}
            broken = _run_pool({key: (kind, task)}, 1, args, limits, progress, why)
            if broken is None:
                continue
            if key in broken:  # this submission, graded alone, broke its grading process
                result = {"retry": True, "problems": [why.get(key) or (
                    "could not be graded: grading it ended or stopped the grading process (its "
                    "code can: it runs with the grader's rights); the others were graded")]}
            else:  # the process failed before it began (see the messages above)
                result = {"retry": True, "problems": [
                    "could not be graded: a grading process failed; run the grading again"]}
            progress(key, {"key": key, "scores": {}, "flags": worker.flags_of(task, release_dir),
                           **result})


def _run_pool(tasks: dict, jobs: int, args: tuple, limits: dict[str, float], progress,
              why: dict | None = None) -> set[str] | None:
    """Run `tasks` in a pool of `jobs` workers, taking each finished one out of `tasks` and
    passing it to `progress`; None when all are done, or the keys of the tasks that were
    running when the pool broke. `why` gets, by key, why a worker was killed.

    When the pool breaks, all its workers are killed at once: the executor would otherwise
    wait for each to end, and a stopped one never does."""
    why = {} if why is None else why
    with tempfile.TemporaryDirectory(prefix="grading-") as running:
        running = Path(running)
        functions = {"grade": worker.grade, "feedback": worker.write_feedback}
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                                 mp_context=multiprocessing.get_context("fork"),
                                 initializer=worker.start, initargs=(*args, running)) as pool:
            futures = {pool.submit(functions[kind], task): key
                       for key, (kind, task) in tasks.items()}
            pending, first_seen, last_finished = set(futures), {}, time.monotonic()
            while pending:
                finished, pending = wait(pending, timeout=1, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    try:
                        result = future.result()
                    except BrokenProcessPool:  # a worker died: the rest of this pool too
                        broken = True
                        continue
                    key = futures[future]
                    del tasks[key]
                    progress(key, result)
                if broken:
                    _kill_workers()
                    return {key for key in _running_tasks(running).values() if key in tasks}
                if finished:
                    last_finished = time.monotonic()
                _stop_stuck_workers(running, limits, why, first_seen)
                # A worker whose marker is gone cannot be timed: stop the pool when nothing
                # has finished for as long as the longest task may take.
                if pending and time.monotonic() - last_finished > max(
                        limits.get(futures[f], 0) for f in pending):
                    _kill_workers()
    return None


def _kill_workers() -> None:
    """Kill the pool's worker processes (this process's only multiprocessing children)."""
    for child in multiprocessing.active_children():
        child.kill()


def _running_tasks(running: Path) -> dict[int, str]:
    """The task each worker is running: process id -> key (from the workers' markers)."""
    tasks = {}
    for marker in running.iterdir():
        try:
            tasks[int(marker.name)] = marker.read_text()
        except (OSError, ValueError):
            continue  # half written, or removed as the task ended
    return tasks


def _stop_stuck_workers(running: Path, limits: dict[str, float], why: dict,
                        first_seen: dict) -> None:
    """Kill each worker that is stopped (SIGSTOP: Linux's /proc says so) or whose task has run
    past its limit, timed from when this process first saw the worker's marker (`first_seen`,
    kept here: the marker itself is within reach of the submission's code); say why, by key."""
    now = time.monotonic()
    for pid, key in _running_tasks(running).items():
        started = first_seen.setdefault((pid, key), now)
        try:
            state = proc_stat(pid)[0]
        except (OSError, IndexError):  # it has ended (or there is no /proc: not Linux)
            state = ""
        if state in ("T", "t"):
            why[key] = ("could not be graded: its grading process was stopped (its code can: "
                        "it runs with the grader's rights); the others were graded")
        elif now - started > limits.get(key, float("inf")):
            why[key] = (f"could not be graded: still running after {limits[key]:.0f} s, "
                        "longer than all its cells' time limits together")
        else:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass  # it has ended


def time_limit(notebook, config, extra_cells: int = 20) -> float:
    """The longest grading can take within the cells' time limits (nbgrader's
    `Execute.timeout`, `LimitedExecute.setup_timeout` for the read-only set-up cells, as in
    nbgrader_config.py) of the assignment's `notebook` plus `extra_cells` a student may add,
    and two minutes (kernel, feedback); past it, the worker is stuck."""
    timeout = config.Execute.get("timeout", 30)
    setup_timeout = config.LimitedExecute.get("setup_timeout", 300)
    total = 120.0 + extra_cells * timeout
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code":
            setup = meta.get("locked") and meta.get("grade_id") and not meta.get("grade")
            total += setup_timeout if setup else timeout
    return total


def _cache_path(root: Path, sub: submissions.Submission) -> Path:
    return root / ".grading" / "results" / sub.student / f"{sub.assignment}.json"


def _cached(root: Path, sub: submissions.Submission) -> dict | None:
    try:
        return json.loads(_cache_path(root, sub).read_text())
    except (OSError, ValueError):
        return None


def _save_cache(root: Path, sub: submissions.Submission, result: dict) -> None:
    write_atomically(_cache_path(root, sub), json.dumps(result))


def _print_summary(root: Path, rows: list[dict], graded: int, seconds: float) -> None:
    for row in rows:
        pending = f"  ({row['pending']} pending: graded by hand)" if row["pending"] else ""
        note = "" if row["status"] == "graded" else f"  [{row['status']}]"
        print(f"{row['student']:>16} {row['assignment']:<28} {row['score']:>6} / "
              f"{row['max_score']}{pending}{note}")
        if row["flags"]:
            print(f"{'':>17}flags: {row['flags']}")
    print(f"{len(rows)} submissions: {graded} graded now, {len(rows) - graded} unchanged since "
          f"they were graded or not gradable (--force grades all again); {seconds:.1f} s")
    print(f"wrote {root / 'grades.csv'}, {root / 'grades'}/<assignment>.csv, feedback in "
          f"{root / 'feedback'}/<student>/<assignment>/")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["release", "grade"])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the course directory (default: this file's folder)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell time limit in seconds (default: nbgrader_config.py's)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--force", action="store_true",
                        help="grade every submission again, changed or not")
    parser.add_argument("--verbose", action="store_true", help="print nbgrader's whole log")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    global VERBOSE
    VERBOSE = args.verbose
    root = args.root.resolve()
    if args.command == "release":
        release(root)
    else:
        grade(root, timeout=args.timeout, jobs=args.jobs, force=args.force)


if __name__ == "__main__":
    main()
