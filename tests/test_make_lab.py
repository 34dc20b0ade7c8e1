"""`make lab`, the course's front door: JupyterLab on the student's own copies (also as root).

The copies live in work/ (git-ignored): the first run copies every notebook, a later run adds
only the ones the student lacks (new after a git pull) and never touches an edited one, and says
which. The same server reaches the assignments. `make help` lists the targets and LAB_ARGS;
the first run says what it installs and filters setuptools' editable-install banner.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


def _make(*args: str) -> str:
    done = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_make_lab_serves_jupyterlab_on_the_working_copies_and_the_assignments(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    work = ROOT / "build" / "lab-test-work"
    shutil.rmtree(work, ignore_errors=True)
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --ServerApp.token={token}"
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}", "WORK=build/lab-test-work"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(ROOT / "build" / "lab-test-runtime")},
    )
    try:
        deadline, status, page = time.monotonic() + 90, 0, ""
        while time.monotonic() < deadline and status != 200:
            assert server.poll() is None, "make lab exited before serving"
            time.sleep(0.5)
            status, page = _get(f"http://127.0.0.1:{port}/lab?token={token}")
        assert status == 200 and "JupyterLab" in page
        base = f"http://127.0.0.1:{port}"
        status, listing = _get(f"{base}/api/contents/build/lab-test-work?token={token}")
        assert status == 200 and "00_why_deep_learning.ipynb" in listing
        status, listing = _get(f"{base}/api/contents/assignments/release?token={token}")
        assert status == 200 and "a1_perceptron_activations" in listing
        # The file browser opens on the working copies, not on the tracked notebooks.
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=5) as response:
            assert response.geturl().startswith(f"{base}/lab/tree/build/lab-test-work")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # only the server this test started
        server.wait(timeout=30)


def _copies(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(work.glob("*.ipynb"))}


def test_working_copies_are_added_never_overwritten_and_git_ignores_them():
    work = ROOT / "build" / "copies-test"
    shutil.rmtree(work, ignore_errors=True)
    tracked = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

    first = _make("working-copies", "WORK=build/copies-test")
    assert sorted(_copies(work)) == tracked
    assert f"Added: {' '.join(tracked)}. Kept as they are: 0." in first
    for name in tracked:
        assert (work / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes()

    # The student edits one notebook; a git pull brings another (here: its copy is missing).
    edited = work / tracked[1]
    edited.write_text(edited.read_text().replace("01", "my own edit", 1))
    mine = edited.read_bytes()
    (work / tracked[-1]).unlink()
    second = _make("working-copies", "WORK=build/copies-test")
    assert f"Added: {tracked[-1]}. Kept as they are: {len(tracked) - 1}." in second
    assert edited.read_bytes() == mine
    assert sorted(_copies(work)) == tracked and not list(work.glob("*.tmp"))
    assert "Added: none." in _make("working-copies", "WORK=build/copies-test")


def test_the_default_working_copies_are_ignored_by_git_and_by_nbval():
    ignored = subprocess.run(["git", "check-ignore", "-q", "work/01_perceptron.ipynb"], cwd=ROOT)
    assert ignored.returncode == 0, "work/ must be git-ignored"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"--nbval.* notebooks ", makefile) and "WORK := work" in makefile


def test_make_help_lists_the_targets_and_lab_args():
    text = _make("help")
    for target in ["lab", "test", "test-browser", "lint", "bench", "assignments", "grade",
                   "install", "clean"]:
        assert re.search(rf"^  make {target}\b", text, re.M), target
    assert 'make lab LAB_ARGS="--no-browser --port=8899"' in text


def test_the_first_run_says_what_it_installs_and_later_runs_do_not():
    note = _make("first-run-note", "STAMP=build/no-such-stamp")
    assert "First run" in note and "GB" in note and "minutes" in note and "PyTorch" in note
    assert _make("first-run-note", "STAMP=README.md") == ""


def test_the_editable_install_banner_is_filtered_and_nothing_else():
    value = re.search(r"^lab: export PYTHONWARNINGS := (.+)$", (ROOT / "Makefile").read_text(),
                      re.M)[1]
    emit = ("import warnings\n"
            "class BuildBackendWarning(UserWarning): pass\n"  # setuptools' class, as a stand-in
            "warnings.warn('Editable installation.\\n!!\\n***', BuildBackendWarning)\n"
            "warnings.warn('something else', UserWarning)\n")
    done = subprocess.run([sys.executable, "-c", emit], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": value})
    assert "Editable installation" not in done.stderr
    assert "something else" in done.stderr


def test_the_readme_self_paced_steps_work_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Self-paced"):]
    block = section[section.index("```\n") + 4:section.index("\n```", section.index("```\n"))]
    *shell, last = block.splitlines()
    assert last == "make lab"  # served as root too, with the assignments: tested above
    shutil.copytree(ROOT / "assignments" / "release", tmp_path / "assignments" / "release")
    for line in shell:
        subprocess.run(line, shell=True, cwd=tmp_path, check=True)
    copied = tmp_path / "assignments/submitted/me/a1_perceptron_activations"
    assert (copied / "a1_perceptron_activations.ipynb").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "assignments/submitted/me/x.ipynb"],
                             cwd=ROOT)
    assert ignored.returncode == 0
    recipe = re.search(r"^lab: first-run-note.*?\n\n", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert "$(ROOT_FLAG)" in recipe[0]  # --allow-root when run as root
