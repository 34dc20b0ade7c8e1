"""A gradebook shared by graders: PostgreSQL instead of the SQLite file, the same grades.

A throw-away PostgreSQL cluster (Debian's `postgresql`, from apt) is created and started by the
test as an unprivileged Unix user of its own, on 127.0.0.1 and a free port, and removed with
that user afterwards. The same submissions are graded by `assignments/course.py grade` (what
`make grade` runs) twice: into the default SQLite gradebook, and with
`c.CourseDirectory.db_url` pointing at PostgreSQL. Both gradebooks must hold the expected
scores, both runs must write the same grade tables, and the PostgreSQL run must not fall back
to a gradebook.db file. Run by `make test-classroom` (root).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
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
from _unix import add_user, free_port, run_as

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
STUDENTS = {"alice": "complete", "bob": "partial", "carol": "complete"}


@pytest.fixture(scope="module")
def postgres():
    """The URL of a fresh PostgreSQL database, for SQLAlchemy (psycopg driver)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it runs PostgreSQL as a Unix user of its own")
    if not PG_BIN:
        pytest.fail("no /usr/lib/postgresql/*/bin: `make test-classroom` installs postgresql")
    bin_dir = PG_BIN[-1].parent
    with contextlib.ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="dlcourse-postgres-"))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o755)
        name = f"dlcpg{secrets.token_hex(3)}"
        home = base / "home" / name
        add_user(name, home, stack)  # removing the user stops its postgres processes too
        run_as(name, [bin_dir / "initdb", "--pgdata", home / "data", "--username", "grader",
                      "--auth", "trust", "--no-sync"])
        port = free_port()
        run_as(name, [bin_dir / "pg_ctl", "--pgdata", home / "data", "--wait", "--log",
                      home / "postgres.log", "--options",
                      f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off",
                      "start"])
        stack.callback(subprocess.run, ["runuser", "-u", name, "--", bin_dir / "pg_ctl",
                                        "--pgdata", home / "data", "--mode", "fast", "stop"],
                       capture_output=True)
        yield f"postgresql+psycopg://grader@127.0.0.1:{port}/postgres"


def _class(course: Path) -> Path:
    """The students' submissions, as `make collect` leaves them, in the course copy `course`."""
    released = COURSE / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    for student, kind in STUDENTS.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(answered(nbformat.read(released, as_version=4), kind),
                       folder / f"{ASSIGNMENT}.ipynb")
    return course


def _grade(course: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    result = subprocess.run([sys.executable, course / "course.py", "grade", "--root", course],
                            cwd=course, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr


def _grade_tables(course: Path) -> dict[str, str]:
    return {str(p.relative_to(course)): p.read_text() for p in sorted(course.rglob("grades*.csv"))}


def test_postgresql_gradebook_gives_the_same_grades(postgres, tmp_path):
    sqlite, shared = _class(course_copy(tmp_path / "sqlite")), _class(course_copy(tmp_path / "pg"))
    with open(shared / "nbgrader_config.py", "a") as config:
        config.write(f'\nc.CourseDirectory.db_url = "{postgres}"\n')
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_grade, [sqlite, shared]))

    expected = {student: (expected_score(kind), 0.0) for student, kind in STUDENTS.items()}
    assert gradebook_scores(f"sqlite:///{sqlite / 'gradebook.db'}") == expected
    assert gradebook_scores(postgres) == expected
    assert not (shared / "gradebook.db").exists(), "graded into gradebook.db, not PostgreSQL"
    tables = _grade_tables(sqlite)
    assert tables and tables == _grade_tables(shared)
