"""The engine behind the exercise checkers of `dlhelpers.checks`: run cases, compare, report.

A checker (``checks.check_sigmoid(my_sigmoid)``) calls the student's function on several
`Case` s, compares each result with the reference implementation's, and shows one report:

- **not attempted yet** when every case raised ``NotImplementedError`` (the stub as shipped);
  nothing else is printed, so a notebook's stored output is the same on every machine;
- otherwise one ``PASS`` line per passing case and, per failing case, a ``FAIL`` block with
  the reason first (an overflow warning, a wrong shape...), then the input, the expected and
  the received value; then a hint.

Hints escalate: the first failing run of a checker names the concept; every later failing run
(or ``hint=2``) adds the formula. No hint shows solution code. A checker never raises because
of the student's code: exceptions, wrong types or shapes, NaN, numpy RuntimeWarnings and
changes made in place to an input are all reasons for a FAIL.

Values match when, entry by entry, ``|got - expected| <= atol + rtol * |expected|`` with
**rtol = 1e-6, atol = 1e-8** (as `numpy.allclose`); integer answers must match exactly.
Values are printed to 4 significant digits, long arrays abbreviated, lines wrapped between
numbers (never inside one).

In Jupyter the report is displayed as text (for nbval and screen readers) and as HTML, where
FAIL is red and PASS green; elsewhere it is printed. The checker returns a `Report`: true when
every case passed (``assert check_x(fn)`` works in graded notebooks), and shown only once (a
cell ending in a checker call gets no extra ``True``/``False``).
"""

from __future__ import annotations

import copy
import html
import numbers
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlhelpers.validation import is_torch

RTOL = 1e-6
ATOL = 1e-8
WIDTH = 88  # report lines are wrapped to this many characters, between numbers

# How many times each checker has failed in this session: the hint escalates after the first.
_failed_runs: dict[str, int] = {}


@dataclass(frozen=True)
class Case:
    """One call of the student's function: `args` in order (positional), a label to print.

    For a random output (dropout), `prop(got, args)` returns what is wrong or None, and `wants`
    says in words what it checks; type and shape are still compared with the reference output.
    """

    label: str
    args: dict
    prop: Callable[[object, dict], str | None] | None = None
    wants: str = ""


def case(label: str, /, **args) -> Case:
    """A `Case` from keyword arguments, passed to the student's function in this order."""
    return Case(label, args)


@dataclass(frozen=True)
class Hints:
    """What a checker says after a failure: `concept` (first failing run) and `formula` (later
    runs, or hint=2); `reasons` replaces the default advice for a kind of failure ("shape",
    "warning", "nan", "mutation", "type"). Prose and math only, never solution code; a
    notebook is named only if it comes before the exercise's own."""

    concept: str
    formula: str
    reasons: dict = field(default_factory=dict)


_RAISED = object()  # stands for "no result": the student's function raised

# Advice for each kind of failure, in the order printed (a checker's Hints.reasons override).
_REASONS = {
    "exception": "Your function raised an error (shown above): call it yourself on the "
    "failing case's input to see where.",
    "mutation": "Your function changed one of its input arrays in place (an augmented "
    "assignment such as -= or += on an argument, or writing into it by index): build a new "
    "array instead.",
    "warning": "numpy warned while your function ran: an overflow (a huge exponential) or "
    "log(0) happened on the way, even if the printed numbers look right. Use a numerically "
    "stable form of the formula.",
    "type": "Return a numpy array for array results and a number for scalar results (a torch "
    "tensor converts with its numpy method). Did you forget the return statement?",
    "shape": "Shapes matter: (N,) and (N, 1) are different arrays. Keep the input's shape, and "
    "keep the summed axis when you divide by a sum along it.",
    "nan": "NaN comes from 0/0, inf - inf or 0 * log(0): rewrite the formula so that no "
    "intermediate value overflows.",
}


class Report:
    """A checker's verdict: true if every case passed; shows itself once as text or HTML."""

    def __init__(self, name: str, status: str, blocks: list[tuple[str, str]], passed: int,
                 total: int):
        self.name, self.status, self.passed, self.total = name, status, passed, total
        self._blocks = blocks  # (style, text): style "pass", "fail", "todo" or "" (plain)

    def __bool__(self) -> bool:
        return self.status == "pass"

    def __str__(self) -> str:
        return "\n".join(text for _, text in self._blocks)

    def __repr__(self) -> str:
        return str(self)

    def html(self) -> str:
        """The report as HTML: FAIL red, PASS green, not wrapped by the browser."""
        styles = {"pass": "color:#1b7a1b", "fail": "color:#b71c1c;font-weight:bold",
                  "todo": "color:#8a5a00;font-weight:bold", "": ""}
        lines = []
        for style, text in self._blocks:
            head, sep, rest = text.partition(" ")
            if style:
                head = f'<span style="{styles[style]}">{html.escape(head)}</span>'
                lines.append(head + sep + html.escape(rest))
            else:
                lines.append(html.escape(text))
        return ('<pre style="white-space:pre;overflow-x:auto;line-height:1.35">'
                + "\n".join(lines) + "</pre>")

    def show(self) -> None:
        """Display in IPython (text and HTML), print elsewhere."""
        shell = _ipython()
        if shell is None:
            print(self)
            return
        from IPython.display import display

        display({"text/plain": str(self), "text/html": self.html()}, raw=True)

    def _ipython_display_(self) -> None:
        """Returned as a cell's last value, a report that is already shown shows nothing more."""


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # IPython is not installed: plain Python
        return None
    return get_ipython()


def run(name: str, fn, reference: Callable, cases: list[Case], hints: Hints, *,
        outputs: tuple[str, ...] = (), hint: int | None = None) -> Report:
    """Run every case of checker `name` on `fn`, show the report and return it.

    `reference(*args)` gives the expected value; `outputs` names the entries of a tuple result;
    `hint` (1 or 2) forces the hint level instead of counting failed runs.
    """
    if hint not in (None, 1, 2):
        raise ValueError(f"hint must be 1 (the concept) or 2 (the formula), got {hint!r}")
    report = _report(name, fn, reference, cases, hints, outputs, hint)
    report.show()
    return report


def _report(name, fn, reference, cases, hints, outputs, hint) -> Report:
    if not callable(fn):
        return Report(name, "fail", [("fail", f"FAIL {name}: expected your function, got "
                                              f"{_show(fn)}; run the cell that defines it first")],
                      0, len(cases))
    results = [_run_case(fn, reference, c, outputs) for c in cases]
    fn_name = getattr(fn, "__name__", "your function")
    if all(problems and problems[0][0] == "todo" for _, problems in results):
        return Report(name, "todo", [
            ("todo", f"TODO {name}: not attempted yet."),
            ("", _wrap(f"Write the body of {fn_name} in place of its line `raise "
                       "NotImplementedError`, then run the cell again.")),
        ], 0, len(cases))
    blocks: list[tuple[str, str]] = []
    kinds: list[str] = []
    for c, (got_and_expected, problems) in zip(cases, results, strict=True):
        if not problems:
            blocks.append(("pass", f"PASS {c.label}"))
            continue
        kinds += [kind for kind, _ in problems if kind not in kinds]
        blocks.append(("fail", _fail_block(c, got_and_expected, problems)))
    passed = sum(not problems for _, problems in results)
    if passed == len(cases):
        header = ("pass", f"PASS {name}: " + (f"all {len(cases)} cases passed."
                                               if len(cases) > 1 else "the case passed."))
        return Report(name, "pass", [header, *blocks], passed, len(cases))
    level = hint or (1 if _failed_runs.get(name, 0) == 0 else 2)
    _failed_runs[name] = _failed_runs.get(name, 0) + 1
    header = ("fail", f"FAIL {name}: {passed} of {len(cases)} cases passed.")
    return Report(name, "fail", [header, *blocks, ("", ""), *_hint_lines(hints, kinds, level)],
                  passed, len(cases))


def _hint_lines(hints: Hints, kinds: list[str], level: int) -> list[tuple[str, str]]:
    advice = [hints.reasons.get(kind) or _REASONS.get(kind) for kind in (*_REASONS, "property")
              if kind in kinds]
    lines = [("", _wrap("Hint: " + text)) for text in advice if text]
    lines.append(("", _wrap("Hint: " + hints.concept)))
    if level >= 2:
        lines.append(("", _wrap("Formula: " + hints.formula)))
    else:
        lines.append(("", _wrap("Stuck? Run the check again, or pass hint=2, for the formula.")))
    return lines


def _fail_block(c: Case, got_and_expected, problems) -> str:
    got, expected = got_and_expected
    reasons = "; ".join(message for _, message in problems)
    rows = [f"FAIL {c.label}: {reasons}"]
    rows += [f"  input:    {_show_args(c.args)}"] if c.args else []
    if got is not _RAISED or problems[0][0] != "exception":
        wanted = c.wants or _show(expected)
        rows += [f"  expected: {wanted}", f"  got:      {_show(got)}"]
    return "\n".join(_wrap(row, indent=12 if row.startswith("  ") else 2) for row in rows)


def _wrap(text: str, indent: int = 0) -> str:
    """Wrap at WIDTH between words (a number is one word: never split)."""
    return "\n".join(textwrap.wrap(text, WIDTH, subsequent_indent=" " * indent,
                                   break_long_words=False, break_on_hyphens=False)) or text


def _run_case(fn, reference: Callable, c: Case, outputs):
    expected = reference(*copy.deepcopy(c.args).values())
    given = copy.deepcopy(c.args)  # c.args itself stays pristine: we compare against it
    got, problems = _call(fn, given)
    problems += [("mutation", f"changed its input {key} in place")
                 for key in c.args if not _same(c.args[key], given[key])]
    if got is not _RAISED:
        problems += compare(expected, got, outputs, exact_values=c.prop is None)
        if c.prop is not None and not problems:
            message = c.prop(got, given)
            problems += [("property", message)] if message else []
    return (got, expected), problems


def _call(fn, args: dict):
    """Call fn(*args); return (result, problems) with exceptions and RuntimeWarnings as problems."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(
        over="warn", divide="warn", invalid="warn"
    ):
        warnings.simplefilter("always")
        try:
            result = fn(*args.values())
        except NotImplementedError:
            return _RAISED, [("todo", "not written yet (raised NotImplementedError)")]
        except Exception as error:  # any error in the student's code is a FAIL, not a crash
            return _RAISED, [("exception", f"raised {type(error).__name__}: {error}")]
    messages = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category,
                                                                          RuntimeWarning))
    return result, [("warning", f"numpy warned \"{m}\"") for m in messages]


def _same(before, after) -> bool:
    """True if an input still equals its pristine copy (generators and functions are skipped)."""
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=True))
    if isinstance(before, (list, tuple)):
        return len(before) == len(after) and all(map(_same, before, after))
    if isinstance(before, numbers.Number):
        return before == after
    return True


def compare(expected, got, outputs=(), label="", *, exact_values=True) -> list[tuple[str, str]]:
    """Problems with `got` against `expected`: type, shape, NaN, then values (if exact_values).

    Each problem is (kind, message), kind one of "type", "shape", "nan", "value".
    """
    where = f"{label}: " if label else ""
    if isinstance(expected, tuple):
        names = outputs or tuple(f"value {i}" for i in range(len(expected)))
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return [("type", f"expected a tuple of {len(expected)} values "
                             f"({', '.join(names)}), got {_type_name(got)}")]
        return [problem for e, g, n in zip(expected, got, names, strict=True)
                for problem in compare(e, g, label=n, exact_values=exact_values)]
    if expected is None:
        return [] if got is None else [("value", f"{where}expected None, got {_type_name(got)}")]
    problem = _kind_problem(np.asarray(expected), got)
    if problem:
        return [(problem[0], where + problem[1])]
    e, g = np.asarray(expected), np.asarray(got)
    if np.isnan(g).any():
        return [("nan", f"{where}NaN in the output")]
    if not exact_values:
        return []
    if np.issubdtype(e.dtype, np.integer) or e.dtype == bool:
        wrong = g != e
    else:
        wrong = ~np.isclose(g, e, rtol=RTOL, atol=ATOL)
    if not wrong.any():
        return []
    if not e.ndim:
        return [("value", f"{where}wrong value")]
    return [("value", f"{where}wrong value in {wrong.sum()} of {wrong.size} entries")]


def _kind_problem(expected: np.ndarray, got) -> tuple[str, str] | None:
    if got is None:
        return "type", "returned None (missing return statement?)"
    if is_torch(got):
        return "type", "returned a torch tensor, expected a numpy array"
    if not isinstance(got, (numbers.Real, np.generic, np.ndarray)):
        wanted = "a numpy array" if expected.ndim else "a number"
        return "type", f"expected {wanted}, got {_type_name(got)}"
    dtype = np.asarray(got).dtype
    if dtype.kind not in "biuf":
        return "type", f"expected numbers, got dtype {dtype}"
    if np.shape(got) != expected.shape:
        return "shape", f"wrong shape: expected {expected.shape}, got {np.shape(got)}"
    return None


# Printing: numbers to 4 significant digits, arrays abbreviated.


def _type_name(value) -> str:
    return type(value).__name__


def _array_text(array: np.ndarray) -> str:
    text = np.array2string(
        array, separator=", ", threshold=6, edgeitems=2, max_line_width=10**6,
        formatter={"float_kind": lambda v: f"{v:.4g}", "int_kind": str, "bool": str},
    )
    return " ".join(text.split())


def _show(value) -> str:
    """A value as printed in a FAIL block (arrays with their shape)."""
    if value is _RAISED:
        return "an exception"
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return f"array of dtype {value.dtype}"
        return _array_text(value) + f" shape {value.shape}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"list [{inner}]"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (numbers.Real, np.floating)):
        return f"{float(value):.4g}"
    if is_torch(value):
        return f"torch {_type_name(value)}"
    return f"{_type_name(value)} {value!r}"[:60]


def _show_arg(value) -> str:
    """An input as printed: small arrays in full, larger ones by shape, functions by name."""
    if isinstance(value, np.ndarray):
        return f"array({_array_text(value)})" if value.size <= 6 else f"array(shape {value.shape})"
    if isinstance(value, list):
        return "[" + ", ".join(_show_arg(v) for v in value) + "]"
    if isinstance(value, np.random.Generator):
        return "Generator"
    if callable(value):
        return getattr(value, "__name__", _type_name(value))
    return _show(value)


def _show_args(args: dict) -> str:
    return ", ".join(f"{key}={_show_arg(value)}" for key, value in args.items())
