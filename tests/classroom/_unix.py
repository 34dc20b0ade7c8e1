"""Unix users, processes and ports for the classroom tests: created by the test, removed by it.

Every user gets a random name; `add_user` registers its removal (all its processes stopped by
process id, then the user and its home deleted) on the caller's ExitStack, so it happens even
when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def add_user(name: str, home: Path, stack: contextlib.ExitStack) -> None:
    """Create the Unix user `name` with a private HOME (mode 700); removed when `stack` closes."""
    home.parent.mkdir(exist_ok=True)
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell",
                    "/bin/bash", name], check=True)
    stack.callback(end_user, name)
    os.chmod(home, 0o700)


def end_user(name: str) -> None:
    """Stop every process of the test's user `name`, then remove the user and its home."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = subprocess.run(["ps", "-o", "pid=", "-u", name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), sig)
        if pids:
            time.sleep(1)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


def allow_traverse(path: Path, stack: contextlib.ExitStack) -> None:
    """Let every user through the folders above `path` (o+x) until `stack` closes."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(folder, mode | stat.S_IXOTH)
            stack.callback(os.chmod, folder, stat.S_IMODE(mode))


def run_as(name: str, command: list, cwd: Path | None = None) -> str:
    """Run `command` as the Unix user `name` (no root groups) in their HOME; its output."""
    entry = pwd.getpwnam(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=entry.pw_dir, USER=name, LOGNAME=name, PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    result = subprocess.run([str(c) for c in command], cwd=cwd or entry.pw_dir, env=env,
                            user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
