"""A class on a real JupyterHub: three students and an instructor as Unix users of this machine.

JupyterHub (the `classroom` extra) with configurable-http-proxy (npm) on 127.0.0.1, run as root
with the course's hub settings (assignments/jupyterhub_classroom.py); each user's server is
spawned as that user (LocalProcessSpawner) from the course's environment. The instructor (the
`grader` account, unprivileged) releases, collects, grades and returns feedback with the course's
commands; the students fetch, edit, submit and fetch feedback through their own servers: the
REST API of nbgrader's Assignments panel and Jupyter's contents API, with tokens the hub's API
issued to each of them. Checked: the scores and the late flag, that grading ran as the grader,
that a student cannot read another student's work, assignments/source/, the hidden tests or the
gradebook, and that students have no authoring tools while the instructor has them, without
nbgrader's warnings.

Set-up and clean-up: the test creates its users (random names), makes the course's environment
readable by them (execute permission on the folders above the Python installation, restored
afterwards), starts the hub in its own temporary folder; whatever happens, it stops the hub, the
proxy and every process of its users (by process id) and removes the users and the folder.
Run by `make test-classroom` (root, about a minute or two).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from _exchange_work import (
    ASSIGNMENT,
    COURSE,
    ROOT,
    answered,
    course_copy,
    expected_score,
    gradebook_scores,
)
from _unix import BIN, add_user, allow_traverse, free_port, run_as

CHP = ROOT / "build" / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_ID = "intro-deep-learning"
KINDS = ("complete", "partial", "late")
UID_MARK = "grading as uid"
# Students' servers log nbgrader's warnings to the hub's log; neither may appear.
WARNINGS = ("No nbgrader_config.py file found", "exchange directory does not exist")

# Run as a student: which of the paths given can they read (or list)?
PROBE = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
        seen[path] = "read"
    except PermissionError:
        seen[path] = "denied"
print(json.dumps(seen))
"""


def _kill(pid: int, name: str) -> None:
    """Stop process `pid` if it is still the `name` this test started."""
    try:
        if name.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


class Classroom:
    """The hub, its users, the course directory and the exchange of one test run."""

    def __init__(self, base: Path, stack: contextlib.ExitStack):
        self.base, self.stack = base, stack
        suffix = secrets.token_hex(3)
        self.grader = f"dlcgrader{suffix}"
        self.students = {kind: f"dlc{kind}{suffix}" for kind in KINDS}
        self.port, self.token = free_port(), secrets.token_hex(32)
        self.url = f"http://127.0.0.1:{self.port}"
        self.user_tokens: dict[str, str] = {}
        for name in [self.grader, *self.students.values()]:
            add_user(name, base / "home" / name, stack)
        self.course = course_copy(self.home(self.grader) / "course")
        subprocess.run(["chown", "-R", f"{self.grader}:", str(self.course)], check=True)
        self.exchange = base / "exchange"  # what an administrator creates, writable by all
        self.exchange.mkdir(mode=0o777)
        os.chmod(self.exchange, 0o777)
        self.student_config = base / "student-config"
        shutil.copytree(COURSE / "student-config", self.student_config)
        # Both configs name the exchange: here it is the test's folder.
        for config in (self.student_config / "nbgrader_config.py",
                       self.course / "nbgrader_config.py"):
            text = config.read_text()
            assert '"/srv/nbgrader/exchange"' in text, config
            config.write_text(text.replace('"/srv/nbgrader/exchange"', f'"{self.exchange}"'))

    # -- users --------------------------------------------------------------------------------

    def home(self, name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)

    def instructor(self, script: str, *args: str) -> str:
        return run_as(self.grader, [sys.executable, self.course / script, *args,
                                         "--root", self.course], cwd=self.course)

    # -- the hub ------------------------------------------------------------------------------

    def start_hub(self) -> None:
        hub = self.base / "hub"
        hub.mkdir()
        config = hub / "jupyterhub_config.py"
        config.write_text(f"""
c = get_config()
c.JupyterHub.bind_url = "{self.url}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = ["{CHP}"]
c.ConfigurableHTTPProxy.pid_file = "{hub / 'proxy.pid'}"
c.JupyterHub.db_url = "sqlite:///{hub / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = "{hub / 'cookie_secret'}"
c.JupyterHub.authenticator_class = "null"
c.JupyterHub.services = [{{"name": "classroom-test", "api_token": "{self.token}"}}]
c.JupyterHub.load_roles = [{{"name": "classroom-test", "services": ["classroom-test"],
    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
c.Spawner.cmd = ["{BIN / 'jupyterhub-singleuser'}"]
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 300
load_subconfig("{COURSE / 'jupyterhub_classroom.py'}")
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", DLCOURSE_INSTRUCTORS=self.grader,
                   DLCOURSE_COURSE_DIR=str(self.course),
                   DLCOURSE_STUDENT_CONFIG=str(self.student_config))
        self.log = hub / "jupyterhub.log"
        with open(self.log, "w") as log:
            self.hub = subprocess.Popen([BIN / "jupyterhub", "-f", config], cwd=hub, env=env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.stack.callback(self._stop_hub, hub / "proxy.pid")
        self._wait(lambda: self.api("get", "/").ok, "the hub to answer")

    def _stop_hub(self, proxy_pid: Path) -> None:
        self.hub.terminate()  # the hub stops the servers and the proxy it started
        try:
            self.hub.wait(60)
        except subprocess.TimeoutExpired:
            self.hub.kill()
            self.hub.wait()
        if proxy_pid.exists():
            _kill(int(proxy_pid.read_text()), "configurable-http-proxy")

    def _wait(self, ready, what: str, seconds: float = 300) -> None:
        import requests

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.hub.poll() is not None:
                pytest.fail(f"the hub stopped:\n{self.log.read_text()[-5000:]}")
            with contextlib.suppress(requests.ConnectionError):
                if ready():
                    return
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}:\n{self.log.read_text()[-5000:]}")

    def api(self, method: str, path: str, **kwargs):
        """A request to the hub's REST API with the test's (admin) service token."""
        import requests

        return requests.request(method, f"{self.url}/hub/api{path}", timeout=60,
                                headers={"Authorization": f"token {self.token}"}, **kwargs)

    def start_servers(self) -> None:
        names = [self.grader, *self.students.values()]
        assert self.api("post", "/users", json={"usernames": names}).status_code == 201
        for name in names:
            assert self.api("post", f"/users/{name}/server").status_code in (201, 202)
            reply = self.api("post", f"/users/{name}/tokens",
                             json={"note": "classroom test", "expires_in": 3600})
            assert reply.status_code == 201, reply.text
            self.user_tokens[name] = reply.json()["token"]
        for name in names:
            self._wait(lambda n=name: self.api("get", f"/users/{n}").json()["servers"].get(
                "", {}).get("ready"), f"{name}'s server")

    def server(self, name: str, method: str, path: str, **kwargs):
        """A request to user `name`'s own server, with that user's token."""
        import requests

        return requests.request(method, f"{self.url}/user/{name}/{path}", timeout=300,
                                headers={"Authorization": f"token {self.user_tokens[name]}"},
                                **kwargs)

    # -- what a student does in JupyterLab's Assignments panel --------------------------------

    def assignments(self, name: str, action: str) -> dict:
        reply = self.server(name, "post", f"assignments/{action}",
                            params={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        assert reply.status_code == 200, reply.text
        result = reply.json()
        assert result["success"], f"{name}: {action}: {result}"
        return result

    def edit(self, name: str, kind: str) -> None:
        path = f"api/contents/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
        reply = self.server(name, "get", path)
        assert reply.status_code == 200, reply.text
        notebook = answered(nbformat.from_dict(reply.json()["content"]), kind)
        if kind == "complete":  # shows in the graded notebook who ran the student's code
            notebook.cells.append(nbformat.v4.new_code_cell(
                f'import os\nprint("{UID_MARK}", os.getuid())'))
        reply = self.server(name, "put", path, json={"type": "notebook", "format": "json",
                                                     "content": notebook})
        assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def classroom():
    """The whole class: release, the students' work, collect, grade, feedback fetched."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it creates Unix users and runs JupyterHub as root")
    if not CHP.exists():
        pytest.fail(f"no {CHP}: `make test-classroom` installs configurable-http-proxy")
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="dlcourse-classroom-"))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o755)
        for path in (Path(sys.base_prefix), Path(sys.prefix), ROOT):
            allow_traverse(path, stack)
        room = Classroom(base, stack)
        room.start_hub()
        room.start_servers()
        room.ready_after = time.perf_counter() - start

        room.instructor("exchange.py", "release", ASSIGNMENT, "--due", "2100-01-01 00:00 UTC")
        for kind, name in room.students.items():
            room.assignments(name, "fetch")
            room.edit(name, kind)
        for kind, name in room.students.items():
            if kind == "late":  # the due date is now: the others are on time
                now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
                run_as(room.grader, [sys.executable, "-m", "nbgrader", "db", "assignment",
                                          "add", ASSIGNMENT, f"--duedate={now}"],
                            cwd=room.course)
            room.assignments(name, "submit")
        room.log_text = room.instructor("exchange.py", "collect", ASSIGNMENT)
        room.log_text += room.instructor("course.py", "grade")
        room.log_text += room.instructor("exchange.py", "late")
        room.log_text += room.instructor("exchange.py", "return", ASSIGNMENT)
        for name in room.students.values():
            room.assignments(name, "fetch_feedback")
        room.elapsed = time.perf_counter() - start
        print(f"\nclassroom: hub and 4 servers ready after {room.ready_after:.0f} s, "
              f"round trip done after {room.elapsed:.0f} s")
        yield room


def test_scores_and_late_flag(classroom):
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{classroom.course / 'gradebook.db'}"
    scores = gradebook_scores(db_url)
    assert {name: score for name, (score, _) in scores.items()} == {
        name: expected_score(kind) for kind, name in classroom.students.items()}
    late = {name for name, (_, seconds) in scores.items() if seconds > 0}
    assert late == {classroom.students["late"]}
    assert f"LATE {classroom.students['late']:>16}" in classroom.log_text
    with Gradebook(db_url) as gradebook:
        assert {s.id for s in gradebook.students} == set(classroom.students.values())


def test_grading_ran_as_the_grader(classroom):
    grader = pwd.getpwnam(classroom.grader).pw_uid
    assert grader != 0
    name = classroom.students["complete"]
    graded = classroom.course / "autograded" / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded.stat().st_uid == grader
    outputs = [o.get("text", "") for cell in nbformat.read(graded, as_version=4).cells
               if cell.cell_type == "code" for o in cell.outputs]
    assert f"{UID_MARK} {grader}\n" in outputs


def test_each_student_gets_their_own_feedback(classroom):
    for kind, name in classroom.students.items():
        listing = classroom.server(name, "get", f"api/contents/{ASSIGNMENT}/feedback").json()
        (submission,) = listing["content"]
        html = classroom.server(name, "get", f"api/contents/{submission['path']}/"
                                f"{ASSIGNMENT}.html", params={"format": "text"}).json()
        assert f"{ASSIGNMENT}: {expected_score(kind):g} / " in html["content"], name
        assert "BEGIN HIDDEN TESTS" not in html["content"]


def test_students_cannot_read_what_is_not_theirs(classroom):
    course, complete = classroom.course, classroom.students["complete"]
    private = [
        classroom.home(complete) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",  # another's work
        classroom.home(complete),
        course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",  # solutions, hidden tests
        course / "gradebook.db",
        course / "submitted" / complete / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        course / "autograded",
        classroom.exchange / COURSE_ID / "inbound",  # everyone's submissions
        classroom.exchange / COURSE_ID / "feedback",
    ]
    for paths in private:
        assert paths.exists(), paths
    for kind in ("partial", "late"):
        seen = json.loads(run_as(classroom.students[kind], [
            sys.executable, "-c", PROBE, *private]))
        assert seen == {str(path): "denied" for path in private}, kind
    released = classroom.exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert "BEGIN HIDDEN TESTS" not in released.read_text()
    assert "BEGIN HIDDEN TESTS" in (course / "source" / ASSIGNMENT /
                                    f"{ASSIGNMENT}.ipynb").read_text()


def test_students_have_no_authoring_tools(classroom):
    student = classroom.students["partial"]
    assert classroom.server(student, "get", "formgrader").status_code == 404
    lab = classroom.server(student, "get", "lab").text
    for plugin in ("formgrader", "create-assignment", "course-list"):
        assert f'"@jupyter/nbgrader:{plugin}"' in _disabled(lab), plugin
    assert "@jupyter/nbgrader:assignment-list" not in _disabled(lab)


def test_the_instructor_has_them_without_warnings(classroom):
    assert classroom.server(classroom.grader, "get", "formgrader").status_code == 200
    page = classroom.server(classroom.grader, "get", "formgrader/manage_assignments").text
    assert "does not exist" not in page
    assert "@jupyter/nbgrader" not in _disabled(classroom.server(classroom.grader, "get",
                                                                  "lab").text)
    log = classroom.log.read_text()
    assert not [w for w in WARNINGS if w in log], [w for w in WARNINGS if w in log]


def _disabled(lab_page: str) -> str:
    """The `disabledExtensions` of a JupyterLab page's configuration, as JSON text."""
    start = lab_page.index('id="jupyter-config-data"')
    config = json.loads(lab_page[lab_page.index(">", start) + 1:
                                 lab_page.index("</script>", start)])
    return json.dumps(config.get("disabledExtensions", []))
