"""nbgrader's exchange end to end on one machine: three students, each with a HOME of their own.

release -> fetch -> work (complete, partial, late) -> submit -> collect -> grade -> return
feedback -> fetch feedback, with the course's own commands (assignments/exchange.py, what `make
release`, `make collect`, `make late` and `make return-feedback` run; assignments/course.py
grade, what `make grade` runs) on a copy of the course directory and a temporary exchange
folder. The students use nbgrader's commands with the students' Jupyter settings
(assignments/student-config/, as on a JupyterHub); only the exchange folder is overridden.
The same students as separate Unix users, through a real JupyterHub: tests/classroom/
(`make test-classroom`).
"""

from __future__ import annotations

import csv
import datetime
import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from _exchange_work import (
    ASSIGNMENT,
    COURSE,
    answered,
    course_copy,
    expected_score,
    gradebook_scores,
)

STUDENTS = {"alice": "complete", "bob": "partial", "carol": "late"}
NBGRADER = [sys.executable, "-m", "nbgrader"]


def _env(home: Path | None = None) -> dict[str, str]:
    """The environment without the caller's Jupyter settings; HOME set for a student."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    if home is not None:  # a student, with the students' Jupyter settings (as on the hub)
        env.update(HOME=str(home), JUPYTER_CONFIG_PATH=str(COURSE / "student-config"))
    return env


def _run(command: list, cwd: Path, env: dict) -> str:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _student(home: Path, *args: str, exchange: Path) -> str:
    """A student's nbgrader command, run in their HOME with their config."""
    return _run([*NBGRADER, *args, f"--Exchange.root={exchange}",
                 f"--student={home.name}"], home, _env(home))


def _instructor(course: Path, script: str, *args: str) -> str:
    return _run([sys.executable, course / script, *args, "--root", course], course, _env())


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """The whole round trip; returns the course copy, the exchange and the students' HOMEs."""
    tmp = tmp_path_factory.mktemp("exchange")
    course, exchange = course_copy(tmp / "course"), tmp / "exchange"
    homes = {name: tmp / "home" / name for name in STUDENTS}
    for home in homes.values():
        home.mkdir(parents=True)

    _instructor(course, "exchange.py", "release", ASSIGNMENT, "--due", "2100-01-01 00:00 UTC",
                "--exchange", exchange)

    def work(name: str) -> None:
        home = homes[name]
        notebook = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        nbformat.write(answered(nbformat.read(notebook, as_version=4), STUDENTS[name]),
                       notebook)

    # The students work at the same time (as in a class); each nbgrader command takes seconds.
    on_time = [name for name, kind in STUDENTS.items() if kind != "late"]
    with ThreadPoolExecutor(len(STUDENTS)) as pool:
        list(pool.map(lambda name: _student(homes[name], "fetch_assignment", ASSIGNMENT,
                                            exchange=exchange), STUDENTS))
        list(pool.map(work, STUDENTS))
        list(pool.map(lambda name: _student(homes[name], "submit", ASSIGNMENT,
                                            exchange=exchange), on_time))
    # The due date is now: the others' submissions are on time, the late student's late.
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    _run([*NBGRADER, "db", "assignment", "add", ASSIGNMENT, f"--duedate={now}",
          f"--CourseDirectory.root={course}"], course, _env())
    for name in STUDENTS.keys() - on_time:
        _student(homes[name], "submit", ASSIGNMENT, exchange=exchange)

    collected = _instructor(course, "exchange.py", "collect", ASSIGNMENT, "--exchange", exchange)
    graded = _instructor(course, "course.py", "grade")
    late = _instructor(course, "exchange.py", "late")
    _instructor(course, "exchange.py", "return", ASSIGNMENT, "--exchange", exchange)
    with ThreadPoolExecutor(len(STUDENTS)) as pool:
        list(pool.map(lambda home: _student(home, "fetch_feedback", ASSIGNMENT,
                                            exchange=exchange), homes.values()))
    return {"course": course, "exchange": exchange, "homes": homes,
            "log": collected + graded + late}


def test_collect_takes_each_students_submission(round_trip):
    course = round_trip["course"]
    for name in STUDENTS:
        submitted = course / "submitted" / name / ASSIGNMENT
        assert (submitted / f"{ASSIGNMENT}.ipynb").is_file(), round_trip["log"]
        assert (submitted / "timestamp.txt").is_file()  # nbgrader's stamp, read by autograde


def test_scores_in_the_gradebook(round_trip):
    exchange_py = _load(round_trip["course"] / "exchange.py")
    scores = gradebook_scores(exchange_py.gradebook_url(round_trip["course"]))
    assert {name: score for name, (score, _) in scores.items()} == {
        name: expected_score(kind) for name, kind in STUDENTS.items()}, round_trip["log"]


def test_late_flag_from_nbgrader_timestamps(round_trip):
    with open(round_trip["course"] / "late.csv", newline="") as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    assert set(rows) == set(STUDENTS)
    late = {name for name, row in rows.items() if float(row["seconds_late"]) > 0}
    assert late == {name for name, kind in STUDENTS.items() if kind == "late"}
    assert "LATE" in round_trip["log"]


def test_each_student_fetches_their_own_feedback(round_trip):
    for name, home in round_trip["homes"].items():
        feedback = list((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        assert len(feedback) == 1, f"{name}: {feedback}"
        html = feedback[0].read_text()
        # The feedback's header: "<score> / <max> points (<n> points pending: not graded yet)"
        score = expected_score(STUDENTS[name])
        assert f"{ASSIGNMENT}: {score:g} / " in html and "points pending: not graded yet" in html, \
            f"{name}'s feedback shows another score"
        assert "### BEGIN HIDDEN TESTS" not in html


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
