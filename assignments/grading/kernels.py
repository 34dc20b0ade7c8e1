"""Kernels forked from a warm template: Python's start-up and the course's imports are paid once
per grading worker, not once per submission.

Each grading worker starts one template process (`KernelTemplate`): a Python that has imported
ipykernel and the modules the assignments' notebooks import, and nothing more. It has run no
code of any notebook, and has started no event loop, socket or Python thread (the BLAS
libraries' thread pools start anew in each child). For each submission,
nbclient's kernel manager (`ForkedKernelManager`, through `ForkedKernelProvisioner`) asks the
template for a kernel: the template forks, and the child becomes an ordinary IPython kernel
(ipykernel's own `launch_new_instance`, with the kernelspec's arguments, in the submission's
folder, with the environment jupyter_client prepared, in a session of its own). Each
submission's code still runs in a process of its own, started clean: nothing it does reaches the
template or the next submission.

Only this interpreter's own Python kernel is forked, and only on Linux (macOS's system
libraries are not safe to use after fork()). Another kernel, another platform, or a template
that failed falls back to jupyter_client's LocalProvisioner: a new process for each kernel.

No library does this (ipykernel's fork proposals, PRs #410 and #1261, were closed; kernel
pools such as kernel_gateway's start every kernel from scratch and pay the same CPU time).
The template itself is kernel_template.py.
"""

from __future__ import annotations

import ast
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import default

from grading.kernel_template import LAUNCHER

TEMPLATE = Path(__file__).with_name("kernel_template.py")
FORK_TIMEOUT = 20  # seconds; a fork takes milliseconds, even on a busy machine


def notebook_imports(paths: list[Path]) -> list[str]:
    """The modules the code cells of these notebooks import (by `import` or `from ... import`),
    sorted; cells that are not Python (magics aside) are skipped."""
    names = set()
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                             for line in cell.source.splitlines())
            try:
                tree = ast.parse(code)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return sorted(names - {"builtins", "__future__"})


class KernelTemplate:
    """A template process (kernel_template.py), started with this process's environment."""

    def __init__(self, modules: list[str]):
        self.process = subprocess.Popen(
            [sys.executable, str(TEMPLATE), *modules],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the kernel template did not start")

    def fork(self, argv: list[str], cwd: str, env: dict[str, str]) -> int:
        """A new kernel process: its process id. RuntimeError if the template does not answer
        within FORK_TIMEOUT seconds (it was stopped) or has ended."""
        self.process.stdin.write(json.dumps({"argv": argv, "cwd": cwd, "env": env}) + "\n")
        self.process.stdin.flush()
        answered, _, _ = select.select([self.process.stdout], [], [], FORK_TIMEOUT)
        reply = self.process.stdout.readline() if answered else ""
        if not reply:
            raise RuntimeError("the kernel template ended or stopped answering")
        return json.loads(reply)["pid"]

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except OSError:
            pass  # it has ended: the pipe is broken
        self.process.kill()
        self.process.wait()


class ForkedKernel:
    """A kernel forked by the template, with what jupyter_client uses of a `subprocess.Popen`.

    Not this process's child: its exit status is not known (the system reaps it), only that
    it ended (then `returncode` is -1).
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -1
            except PermissionError:  # the pid was taken by another user's process
                self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkedKernelProvisioner(LocalProvisioner):
    """jupyter_client's LocalProvisioner, but this interpreter's Python kernel is forked from
    `ForkedKernelManager.template` instead of started by a new process."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        template = ForkedKernelManager.template
        # A kernel's command line, as the kernelspec writes it: [python, "-m", LAUNCHER, ...].
        if template is None or cmd[:3] != [sys.executable, "-m", LAUNCHER]:
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        env["JPY_PARENT_PID"] = str(template.process.pid)  # the kernel ends if the template does
        try:
            pid = template.fork(cmd[3:], str(kwargs.get("cwd") or Path.cwd()), env)
        except (OSError, ValueError, RuntimeError) as error:  # the template is gone
            self.log.warning("kernel template failed (%s): starting kernels one by one", error)
            ForkedKernelManager.template = None
            template.close()
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedKernel(pid)
        self.pid = self.pgid = pid
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info


class ForkedKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, with kernels forked from `template` (a class attribute, set
    once per worker process by `use_template`; None: kernels start as usual)."""

    template: KernelTemplate | None = None

    @default("shutdown_wait_time")
    def _shutdown_wait_time_default(self) -> float:
        # A kernel exits within 0.1 s of the shutdown request, but jupyter_client interrupts
        # it first, and about one kernel in fifteen (forked or not) then misses the request:
        # the default (5 s) made that kernel wait 2.5 s for its SIGTERM; this makes it 0.5 s.
        return 1.0

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None and ForkedKernelManager.template is not None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkedKernelProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


def use_template(modules: list[str]) -> str | None:
    """Start this process's kernel template, preloading `modules`; None when it runs, or why
    kernels will start as usual (another platform, or the template failed)."""
    if not sys.platform.startswith("linux"):
        return f"kernels start one by one: forking them is not safe on {sys.platform}"
    if ForkedKernelManager.template is not None:
        ForkedKernelManager.template.close()
        ForkedKernelManager.template = None
    try:
        ForkedKernelManager.template = KernelTemplate(modules)
    except (OSError, RuntimeError) as error:
        return f"kernels start one by one: {error}"
    return None
