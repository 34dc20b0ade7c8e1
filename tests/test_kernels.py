"""Kernels forked from a grading worker's template (assignments/grading/kernels.py).

Checked against kernels started the usual way (jupyter_client's own provisioner: a new
process each), on the same notebooks: the same outputs for the three assignments; and what a
new process gives each submission: nothing one notebook does reaches the next; the
submission's folder is the working folder and importable; the environment is the kernel
manager's; subprocesses work; the time limit interrupts; a kernel that exits is seen to be
dead; each kernel is in a session of its own (no terminal to type into; the time limit's
interrupt and the kill reach what it started). When the template is gone or stopped, or the
kernel is another one, kernels start the usual way. What a kernel leaves running is killed
before the next one starts. Each test checks which way its kernel
started (its parent process).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assignments"))
from grading import kernels  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="kernels are forked on Linux only")
ASSIGNMENTS = sorted((ROOT / "assignments" / "source").glob("*/*.ipynb"))
PARENT = "import os; print('parent', os.getppid())"


@pytest.fixture
def template():
    assert kernels.use_template(["numpy", "matplotlib.pyplot", "dlhelpers"]) is None
    yield kernels.ForkedKernelManager.template
    if kernels.ForkedKernelManager.template is not None:
        kernels.ForkedKernelManager.template.close()
        kernels.ForkedKernelManager.template = None


def _run(notebook, folder: Path, forked: bool = True, **options) -> nbformat.NotebookNode:
    """Execute `notebook` (or a list of cells' sources) in `folder`; return it."""
    if isinstance(notebook, list):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in notebook])
    client = NotebookClient(notebook, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}}, **options)
    client.kernel_manager_class = kernels.ForkedKernelManager if forked else AsyncKernelManager
    client.execute()
    return notebook


def _printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def _parent(notebook) -> int:
    """The kernel's parent process, printed by a PARENT cell."""
    lines = [line for c in notebook.cells for line in _printed(c).splitlines()]
    return int(next(line.split()[1] for line in lines if line.startswith("parent ")))


def _outputs(notebook) -> list:
    """What each cell showed: its text on each stream (however the kernel cut it into
    messages), then its other outputs in order: kinds, text, figures (PNG bytes), errors."""
    shown = []
    for cell in notebook.cells:
        outputs = cell.get("outputs", [])
        streams = {name: "".join(o.text for o in outputs if o.get("name") == name)
                   for name in ("stdout", "stderr")}
        others = [(o.output_type, o.get("ename"), o.get("data", {}).get("text/plain"),
                   o.get("data", {}).get("image/png"))
                  for o in outputs if o.output_type != "stream"]
        shown.append((streams, others))
    return shown


@pytest.mark.parametrize("path", ASSIGNMENTS, ids=lambda p: p.stem)
def test_a_forked_kernel_shows_what_a_new_one_shows(template, path, tmp_path):
    """The assignment's source (solutions, visible and hidden tests, figures) and what a
    kernel process is (argv, sys.path, matplotlib's backend), run both ways."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(PARENT), nbformat.v4.new_code_cell(
        "import os, sys, matplotlib\n"
        "print(sys.argv[0], sys.orig_argv[1:3], sys.path, matplotlib.get_backend(), __name__,\n"
        "      sorted(os.environ), sep='\\n')")]
    forked = _run(nbformat.from_dict(json.loads(json.dumps(notebook))), path.parent)
    new = _run(notebook, path.parent, forked=False)
    assert _parent(forked) == template.process.pid
    assert _parent(new) == os.getpid()
    assert _outputs(forked)[:-2] == _outputs(new)[:-2]
    assert _printed(forked.cells[-1]) == _printed(new.cells[-1])
    assert any(o[0] == "display_data" and o[-1] for _, others in _outputs(forked)
               for o in others), "no figure"


def test_nothing_a_notebook_does_reaches_the_next(template, tmp_path):
    _run([PARENT, "import builtins, os, sys, numpy as np, dlhelpers\n"
                  "np.allclose = lambda *a, **k: True\ndlhelpers.LEAK = builtins.LEAK = 1\n"
                  "os.environ['LEAK'] = '1'\nsys.modules['leak'] = sys\nos.chdir('/')"],
         tmp_path)
    after = _run([PARENT, "import builtins, os, sys, numpy as np, dlhelpers\n"
                          "print(np.allclose(0, 1), hasattr(dlhelpers, 'LEAK'), "
                          "hasattr(builtins, 'LEAK'), 'LEAK' in os.environ, "
                          "'leak' in sys.modules, os.getcwd() == sys.argv[-1])"],
                 tmp_path)
    assert _parent(after) == template.process.pid
    assert _printed(after.cells[1]).split()[:5] == ["False"] * 5


def test_what_a_kernel_leaves_running_ends_before_the_next_kernel(template, tmp_path):
    """Even a daemon: forked twice, in a session of its own."""
    _run([PARENT, "import os, time\n"
                  "if os.fork() == 0:\n"
                  "    os.setsid()\n"
                  "    if os.fork() == 0:\n"
                  "        open('daemon.pid', 'w').write(str(os.getpid()))\n"
                  "        time.sleep(60)\n"
                  "    os._exit(0)\n"
                  "time.sleep(0.5)"], tmp_path)
    daemon = int((tmp_path / "daemon.pid").read_text())
    os.kill(daemon, 0)  # still running
    assert _parent(_run([PARENT], tmp_path)) == template.process.pid
    with pytest.raises(ProcessLookupError):
        os.kill(daemon, 0)


def test_the_submission_folder_environment_and_subprocesses(template, tmp_path, monkeypatch):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    monkeypatch.setenv("SET_AFTER_THE_TEMPLATE_STARTED", "yes")
    notebook = _run([PARENT, "import os, subprocess, sys, helper\n"
                             "print(helper.VALUE, os.getcwd(), os.environ.get("
                             "'SET_AFTER_THE_TEMPLATE_STARTED'), os.getsid(0) == os.getpid())\n"
                             "print(subprocess.run([sys.executable, '-c', 'raise SystemExit(7)'])"
                             ".returncode)"],
                    tmp_path)
    assert _parent(notebook) == template.process.pid
    assert _printed(notebook.cells[1]).split() == ["42", str(tmp_path), "yes", "True", "7"]


def test_the_time_limit_interrupts_a_forked_kernel(template, tmp_path):
    notebook = _run([PARENT, "while True:\n    pass", "print('after')"], tmp_path,
                    timeout=2, interrupt_on_timeout=True)
    assert _parent(notebook) == template.process.pid
    assert [o.ename for o in notebook.cells[1].outputs] == ["KeyboardInterrupt"]
    assert _printed(notebook.cells[2]) == "after\n"


def test_a_forked_kernel_that_exits_is_dead(template, tmp_path):
    with pytest.raises(DeadKernelError):
        _run([PARENT, "import os\nos._exit(0)", "print('never')"], tmp_path)


def test_without_the_template_kernels_start_the_usual_way(template, tmp_path):
    """A submission that kills its kernel's parent (with a new kernel: the grading worker) ends
    the template; the next submission's kernel starts the usual way."""
    try:
        _run([PARENT, "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\n"
                      "time.sleep(5)"], tmp_path)
    except DeadKernelError:
        pass  # the kernel saw its parent end, and ended too
    template.process.wait(timeout=10)
    notebook = _run([PARENT], tmp_path)
    assert _parent(notebook) == os.getpid()
    assert kernels.ForkedKernelManager.template is None


def test_a_stopped_template_is_left_for_new_kernels(template, tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "FORK_TIMEOUT", 2)
    os.kill(template.process.pid, signal.SIGSTOP)
    try:
        notebook = _run([PARENT], tmp_path)
    finally:
        if template.process.poll() is None:  # not ended by the kernel manager
            os.kill(template.process.pid, signal.SIGCONT)
    assert template.process.poll() is not None
    assert _parent(notebook) == os.getpid()
    assert kernels.ForkedKernelManager.template is None


def test_another_kernel_is_not_forked(template, tmp_path, monkeypatch):
    spec = tmp_path / "kernels" / "wrapped"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["env", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "wrapped", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PARENT)])
    client = NotebookClient(notebook, kernel_name="wrapped",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.kernel_manager_class = kernels.ForkedKernelManager
    client.execute()
    assert _parent(notebook) == os.getpid()  # env replaced itself by the kernel
    assert kernels.ForkedKernelManager.template is template


def test_the_modules_a_notebook_imports(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nimport a.b, c as d\nfrom e.f import g"),
        nbformat.v4.new_code_cell("!pip list\nfrom . import h\nfrom __future__ import annotations"),
        nbformat.v4.new_code_cell("def broken(:\n    import i"),
        nbformat.v4.new_markdown_cell("import j"),
        nbformat.v4.new_code_cell("def f():\n    import k\nfrom builtins import float")])
    nbformat.write(notebook, tmp_path / "n.ipynb")
    assert kernels.notebook_imports([tmp_path / "n.ipynb"]) == ["a.b", "c", "e.f", "k"]


def test_a_module_that_prints_as_it_is_imported_does_not_stop_the_template(tmp_path, monkeypatch):
    (tmp_path / "noisy.py").write_text("print('hello from noisy')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    try:
        assert kernels.use_template(["noisy", "no_such_module"]) is None
        assert _parent(_run([PARENT, "print('noisy' in __import__('sys').modules)"], tmp_path)) \
            == kernels.ForkedKernelManager.template.process.pid
    finally:
        kernels.ForkedKernelManager.template.close()
        kernels.ForkedKernelManager.template = None
