"""Every notebook's exercises: a stub the student writes, its checker, the solution folded after it.

For each "Check yourself" exercise: the code cell holds stubs only (a signature, a docstring and
`raise NotImplementedError`) and ends with its checker call(s); its stored output is the
checker's "not attempted yet"; the next cell is a markdown `<details><summary>Solution</summary>`
with one fenced python block and two lines on why it works. The solution, run through the
exercise's checker, must pass every case. Each notebook has a "predict, then run" question, at
least two exercises marked new, and no later cell uses a function the student writes.
"""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

import dlhelpers
from dlhelpers import checking, checks

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTION = re.compile(r"\A<details><summary>Solution</summary>\n\n```python\n(.*?)\n```\n\n"
                      r"(.+?)\n\n</details>\Z", re.S)
CHECK_CALL = re.compile(r"^checks\.(check_\w+)\((my_\w+)\)$", re.M)


def cells(path):
    notebook = json.loads(path.read_text())
    return [(c["cell_type"], "".join(c["source"]), c) for c in notebook["cells"]]


def exercises(path):
    """(stub cell, solution source, why text, [(checker, function name)]) for each exercise."""
    found, nb = [], cells(path)
    for (kind, source, cell), (next_kind, next_source, _) in zip(nb, nb[1:], strict=False):
        calls = CHECK_CALL.findall(source)
        if kind == "code" and calls:
            match = SOLUTION.match(next_source) if next_kind == "markdown" else None
            assert match, f"{path.name}: no folded solution after {calls}"
            found.append((cell, match[1], match[2], calls))
    return found


@pytest.fixture(autouse=True)
def fresh_hint_levels(monkeypatch):
    monkeypatch.setattr(checking, "_failed_runs", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_the_solutions_pass_their_checkers(path, capsys):
    helpers = {name: getattr(dlhelpers, name) for name in dlhelpers.__all__}
    namespace = {"np": np, "checks": checks, **helpers}
    found = exercises(path)
    assert len(found) >= 2
    for _, solution, why, calls in found:
        exec(compile(solution, f"{path.name} solution", "exec"), namespace)
        for checker, function in calls:
            report = getattr(checks, checker)(namespace[function])
            assert report, f"{path.name}: the solution of {function} fails:\n{report}"
        assert len(why.strip().splitlines()) == 2, why
    capsys.readouterr()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_stubs_are_stubs_and_their_stored_output_is_not_attempted(path):
    for cell, _, _, calls in exercises(path):
        source = "".join(cell["source"])
        tree = ast.parse(source)
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert sorted(f.name for f in functions) == sorted(name for _, name in calls)
        for function in functions:
            docstring, *body = function.body
            assert ast.get_docstring(function), function.name
            assert [ast.unparse(b) for b in body] == ["raise NotImplementedError"], function.name
        shown = "".join("".join(o.get("data", {}).get("text/plain", o.get("text", "")))
                        for o in cell["outputs"])
        assert shown.count("not attempted yet") == len(calls), (path.name, shown)
        assert "PASS" not in shown and "FAIL" not in shown
        assert all(o["output_type"] != "execute_result" for o in cell["outputs"])  # no True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_predict_question_new_exercises_and_no_later_use_of_answers(path):
    nb = cells(path)
    texts = [source for _, source, _ in nb]
    assert sum(t.startswith("**Predict, then run.**") for t in texts) == 1
    assert sum(bool(re.match(r"\*\*\d+\. .*?\*\* \*\(new\)\*", t)) for t in texts) >= 2
    students = {name for _, _, _, calls in exercises(path) for _, name in calls}
    for kind, source, _ in nb:
        defined = set(re.findall(r"^def (my_\w+)", source, re.M))
        if kind == "code" and not defined:
            assert not {n for n in students if re.search(rf"\b{n}\b", source)}, source


def count_exercises():
    """{notebook: (exercises, new)}, for the report."""
    table = {}
    for path in NOTEBOOKS:
        texts = [source for _, source, _ in cells(path)]
        numbered = [t for t in texts if re.match(r"\*\*\d+\. ", t)]
        table[path.name[:2]] = (len(numbered), sum("*(new)*" in t.split("\n")[0] for t in numbered))
    return table


if __name__ == "__main__":
    for notebook, (total, new) in count_exercises().items():
        print(f"{notebook}: {total} exercises, {new} new")
