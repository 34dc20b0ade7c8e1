"""What an instructor should look at in a submission, read without running it.

Per submission: test cells edited or deleted (nbgrader restores them before grading, so this
changes no score), the course's reference functions imported instead of written, re-bound
library functions (`np.allclose = ...`, `checks.check_sigmoid = ...`), and tools that reach
into the grading kernel (`get_ipython`, `sys.modules`, `builtins`, ...). These flags change no
score: they say where to look.
"""

from __future__ import annotations

import ast
import builtins
import re

import nbformat

# Names whose use in a submission is worth a look (see the module docstring).
SUSPICIOUS_CALLS = {"__import__", "compile", "delattr", "eval", "exec", "exit", "get_ipython",
                    "getattr", "globals", "quit", "setattr", "vars"}
SUSPICIOUS_MODULES = {"IPython", "atexit", "builtins", "ctypes", "gc", "importlib", "inspect",
                      "ipykernel", "multiprocessing", "signal", "subprocess", "threading"}
SUSPICIOUS_ATTRIBUTES = {"_exit", "_getframe", "__builtins__", "__class__", "__code__",
                         "__dict__", "__globals__", "__subclasses__", "displayhook", "excepthook",
                         "exit", "kill", "modules", "setprofile", "settrace", "system"}
HARMLESS_MAGICS = {"matplotlib", "time", "timeit"}
BUILTIN_NAMES = {name for name in dir(builtins) if not name.startswith("_")}




def scan(submitted: nbformat.NotebookNode, source: nbformat.NotebookNode,
         released: nbformat.NotebookNode) -> list[str]:
    """What an instructor should look at in one submitted notebook (see the module docstring).

    `source` is the instructor's notebook, `released` the student version handed out.
    """
    released = {c.metadata["nbgrader"]["grade_id"]: c.source for c in released.cells
                if c.metadata.get("nbgrader", {}).get("locked")}
    # The functions the assignment asks for: written in its solution cells.
    own = {name for cell in source.cells if cell.metadata.get("nbgrader", {}).get("solution")
           for name in re.findall(r"^def (\w+)", cell.source, flags=re.M)}
    flags, seen, student_code = [], set(), []
    for cell in submitted.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in released:
            seen.add(grade_id)
            if cell.source != released[grade_id]:
                flags.append(f"edited read-only cell {grade_id} (restored for grading)")
        elif cell.cell_type == "code":
            label = grade_id or "cell " + cell.get("id", "?").removeprefix("cell-")
            student_code.append((label, cell.source))
    flags += [f"deleted read-only cell {g} (restored for grading)" for g in released
              if g not in seen]
    imported = _imported_names(list(released.values()) + [code for _, code in student_code])
    for where, code in student_code:
        flags += [f"{where}: {flag}" for flag in _scan_code(code, own, imported)]
    return flags


def _python(code: str) -> tuple[str, list[str]]:
    """The cell as plain Python (IPython magics and shell lines blanked) and its magics."""
    lines, magics = [], []
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith(("%", "!")):
            magics.append(stripped.split()[0])
            lines.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines), magics


def _imported_names(codes: list[str]) -> dict[str, str]:
    """Names bound by imports anywhere in the notebook, mapped to the module they come from."""
    names = {}
    for code in codes:
        try:
            tree = ast.parse(_python(code)[0])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update({(a.asname or a.name).split(".")[0]: a.name for a in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.update({a.asname or a.name: node.module for a in node.names})
    return names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _scan_code(code: str, own: set[str], imported: dict[str, str]) -> list[str]:
    """Flags for one cell of student code."""
    python, magics = _python(code)
    flags = [f"runs {m}" for m in magics if m.lstrip("%") not in HARMLESS_MAGICS]
    try:
        tree = ast.parse(python)
    except SyntaxError as error:
        return [*flags, f"does not parse ({error.msg}, line {error.lineno})"]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]
            flags += [f"imports {m}" for m in modules if m.split(".")[0] in SUSPICIOUS_MODULES]
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlhelpers"):
                flags += [f"imports {a.name} from {node.module} instead of writing it"
                          for a in node.names if a.name in own]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in SUSPICIOUS_CALLS):
            flags.append(f"calls {node.func.id}()")
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            flags.append("uses __builtins__")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and (
                node.id in BUILTIN_NAMES):
            flags.append(f"re-binds the built-in {node.id}")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in BUILTIN_NAMES:
            flags.append(f"re-binds the built-in {node.name}")
        elif isinstance(node, ast.Attribute):
            root = _root_name(node)
            module = imported.get(root, "")
            used = ast.unparse(node)[:60]
            if node.attr in SUSPICIOUS_ATTRIBUTES and (module or node.attr.startswith("__")):
                flags.append(f"uses {used}")
            if module.startswith("dlhelpers") and (node.attr in own or (
                    node.attr.startswith("_") and not node.attr.startswith("__"))):
                flags.append(f"uses {used} from dlhelpers instead of writing it")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [
                node.target]
            for target in targets:
                for part in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [
                        target]:
                    if isinstance(part, (ast.Attribute, ast.Name)) and (
                            _root_name(part) in imported):
                        flags.append(f"re-binds {ast.unparse(part)} (an imported name)")
    return flags
