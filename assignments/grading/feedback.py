"""A student's feedback: the graded notebook as one self-contained HTML page.

- Scores on top and beside each graded cell; a written answer not graded yet reads "pending".
- The hidden tests' code is removed (nbgrader's ClearHiddenTests), and an error raised while the
  hidden tests ran becomes a message only: the hidden test's own message (which case, expected,
  got) or "your code raised KeyError", never a traceback into the hidden code or the error's
  text (a KeyError's text is the hidden input).
- Figures are kept (images are embedded); only text output is limited, while grading.
- Math is converted to MathML at export (latex2mathml): browsers render it with no network and
  no MathJax, and the page loads no script from anywhere.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nbformat
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert import HTMLExporter
from nbgrader.preprocessors import ClearHiddenTests

TEMPLATES = Path(__file__).resolve().parent / "templates"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The frame of the cell's own code in an IPython traceback: "Cell In[12], line 47".
CELL_FRAME = re.compile(r"(?:Cell In\s*\[\d*\]|Input In \[\d*\]|<ipython-input-[^>]*>), line (\d+)")
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$")


def hidden_part_start(source: str, begin: str) -> int | None:
    """The 1-based line of a test cell where its hidden tests begin, None without any."""
    for number, line in enumerate(source.splitlines(), start=1):
        if begin in line:
            return number
    return None


def hide_hidden_test_errors(notebook: nbformat.NotebookNode, begin: str) -> None:
    """Replace, in place, each error raised while a cell's hidden tests ran by a message only.

    An error is the hidden tests' when the cell's own frame in the traceback is on or after
    the line `begin` (the hidden tests' start marker), or when the traceback names no line of
    the cell (then it cannot be told apart, and the safe side is to hide it).
    """
    for cell in notebook.cells:
        start = hidden_part_start(cell.source, begin) if cell.cell_type == "code" else None
        if start is None:
            continue
        for output in cell.get("outputs", []):
            if output.output_type != "error":
                continue
            frame = CELL_FRAME.search(ANSI.sub("", "\n".join(output.traceback)))
            if frame and int(frame.group(1)) < start:
                continue  # a visible test failed: the student may see all of it
            message = ANSI.sub("", output.evalue)
            if not (output.ename == "AssertionError" and message.startswith("hidden test")):
                message = (f"hidden test: your code raised {output.ename} (the hidden tests' "
                           "inputs and code are not shown)")
            output.evalue = message
            output.traceback = [f"{output.ename}: {message}"]


def markdown_math_to_mathml(text: str) -> str:
    """`$...$` and `$$...$$` in Markdown as MathML (left as it is where it does not convert)."""
    def convert(match: re.Match, display: str) -> str:
        try:
            return latex_to_mathml(match.group(1).strip(), display=display)
        except Exception:  # latex2mathml raises several kinds on LaTeX it does not know
            return match.group(0)

    text = DISPLAY_MATH.sub(lambda m: "\n\n" + convert(m, "block") + "\n\n", text)
    return INLINE_MATH.sub(lambda m: convert(m, "inline"), text)


def part_rows(parts: list[dict]) -> list[dict]:
    """Each part's score as shown: "10 / 10", "0 / 5" or "pending (10 points)"."""
    rows = []
    for part in parts:
        score, points = part["score"], part["points"]
        if score is None:
            shown, state = f"pending: graded by hand ({points:g} points)", "pending"
        else:
            shown, state = f"{score:g} / {points:g}", "zero" if score == 0 else "scored"
        rows.append({**part, "shown": shown, "state": state})
    return rows


class FeedbackWriter:
    """Writes feedback pages; build one per process (the exporter's set-up takes a while)."""

    def __init__(self, config):
        self.clear_hidden = ClearHiddenTests(config=config)
        self.begin = self.clear_hidden.begin_test_delimeter
        self.exporter = HTMLExporter(config=config, template_name="course_feedback",
                                     extra_template_basedirs=[str(TEMPLATES)])

    def write(self, autograded: nbformat.NotebookNode, parts: list[dict], notes: list[str],
              assignment: str, path: Path) -> None:
        """Write the feedback of one autograded notebook to `path` (atomically).

        `parts`: the graded parts in order, each {"id", "points", "score"} (score None: pending).
        """
        notebook = nbformat.from_dict(autograded)  # a copy: the autograded file stays whole
        hide_hidden_test_errors(notebook, self.begin)
        notebook, _ = self.clear_hidden.preprocess(notebook, {})
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = markdown_math_to_mathml(cell.source)
        rows = part_rows(parts)
        scored = sum(p["score"] for p in parts if p["score"] is not None)
        grading = {
            "assignment": assignment, "score": f"{scored:g}",
            "max_score": f"{sum(p['points'] for p in parts):g}",
            "pending_points": f"{sum(p['points'] for p in parts if p['score'] is None):g}"
            if any(p["score"] is None for p in parts) else "",
            "notes": notes, "parts": rows, "by_id": {row["id"]: row for row in rows},
        }
        body, _ = self.exporter.from_notebook_node(
            notebook, resources={"grading": grading, "metadata": {"name": path.stem}})
        write_atomically(path, body)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a new temporary file (a name no one could prepare, made
    with O_EXCL) and a rename: never half a file. The file gets open()'s usual mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        umask = os.umask(0)  # read it (mkstemp makes the file 0600; open() would not)
        os.umask(umask)
        os.fchmod(handle, 0o666 & ~umask)  # feedback is copied to students with its mode
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
