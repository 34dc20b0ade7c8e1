"""`make lab`, the course's front door, serves JupyterLab on the notebooks (also as root)."""

import os
import secrets
import signal
import socket
import subprocess
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


def test_make_lab_serves_jupyterlab_with_the_notebooks():
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --ServerApp.token={token}"
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"], cwd=ROOT,
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
        status, listing = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
        assert status == 200 and "00_why_deep_learning.ipynb" in listing
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # only the server this test started
        server.wait(timeout=30)
