"""The kernel template of a grading worker (see kernels.py): `python kernel_template.py MODULE...`

Imports the modules, prints "ready", then forks one IPython kernel per request read from stdin.
A request is one line of JSON, {"argv": the kernel's arguments, "cwd": folder, "env": variables};
the reply is one line, {"pid": the kernel's process id}. It ends when its stdin closes (the
grading worker ended). Standard library only, until the modules it is asked to import.
"""

import ctypes
import importlib
import importlib.util
import json
import os
import signal
import sys

LAUNCHER = "ipykernel_launcher"
PR_SET_CHILD_SUBREAPER = 36
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def serve(modules: list[str]) -> None:
    """Import `modules`, say "ready", then serve requests until stdin closes."""
    replies = os.fdopen(os.dup(1), "w")  # the replies' own channel: whatever a module prints
    os.dup2(2, 1)  # while it is imported goes to stderr instead
    # sys.path as `python -m ipykernel_launcher` leaves it (the launcher drops the working
    # folder; the kernel adds "" back): not this file's folder.
    del sys.path[0]
    before = dict(os.environ)
    # Set before matplotlib is imported, which reads it then (ipykernel sets it in the kernel,
    # too late for a module imported here).
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = INLINE_BACKEND
    # Without the debugger's warning about frozen modules, once per template.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    ours = {"MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION"}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 - it fails the same way in the kernel, where it is shown
            continue
    # What a kernel imports as it starts (ipykernel.debugger alone takes 0.1 s).
    from ipykernel import debugger, ipkernel, kernelapp  # noqa: F401

    # What the imports set in the environment (debugpy sets one): each kernel's too.
    imported_env = {k: v for k, v in os.environ.items() if k not in before and k not in ours}

    launcher = importlib.util.find_spec(LAUNCHER).origin  # sys.argv[0] of a kernel

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the system reaps the kernels that end
    # What a kernel leaves running, even a daemon in a session of its own, comes back to this
    # process when its parent ends (Linux: a "child subreaper"), to be killed below.
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the grader; its exit ends this
    print("ready", file=replies, flush=True)
    while line := sys.stdin.readline():
        kill_leftovers()  # the kernel before this one has ended: the rest is its leftovers
        request = json.loads(line)
        request["env"] = {**imported_env, **request["env"]}
        started_r, started_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            replies.close()
            os.close(started_r)
            become_kernel(kernelapp, [launcher, *request["argv"]], request, started_w)
        os.close(started_w)
        os.read(started_r, 1)  # end of file: the kernel has its own session (or has ended)
        os.close(started_r)
        print(json.dumps({"pid": pid}), file=replies, flush=True)
    kill_leftovers()


def prctl(option: int, value: int) -> None:
    """Linux's prctl(2); nothing elsewhere."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def proc_stat(pid) -> list[str]:
    """The fields of Linux's /proc/<pid>/stat after the command's name: state, parent's pid,
    ...; OSError if there is no such process (or no /proc), IndexError if unreadable."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def kill_leftovers() -> None:
    """Kill this process's children: processes earlier kernels left running (Linux)."""
    me = str(os.getpid())
    pids = [e.name for e in os.scandir("/proc") if e.name.isdigit()] \
        if os.path.isdir("/proc") else []
    for pid in pids:
        try:
            if proc_stat(pid)[1] == me:
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, IndexError):
            continue  # not a process, or it has ended


def become_kernel(kernelapp, argv: list[str], request: dict, started: int) -> None:
    """In the forked child: run an IPython kernel as `python -m ipykernel_launcher` would;
    close the file descriptor `started` once in a session of its own."""
    code = 1
    try:
        # A session and process group of its own, without the grader's terminal, as
        # jupyter_client starts each kernel (start_new_session): the kernel cannot type into
        # the grader's terminal, and the time limit's interrupt reaches what it started.
        os.setsid()
        os.close(started)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # not the template's requests
        os.close(devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = argv
        sys.orig_argv = [sys.executable, "-m", LAUNCHER, *argv[1:]]
        # Read from the environment when ipykernel was imported, here: set it from this one
        # (the kernel watches that process and ends if it ends).
        parent = f"--IPKernelApp.parent_handle={os.environ.get('JPY_PARENT_PID', 0)}"
        kernelapp.launch_new_instance(argv=[*argv[1:], parent])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()  # what a kernel process runs when it exits
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1:])
