"""nbgrader settings of the course, read by every `nbgrader` command run in assignments/.

`make assignments` and `make grade` (assignments/course.py) run nbgrader with this directory
as the course root; run nbgrader yourself from here and you get the same settings.
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde
from nbgrader.preprocessors import ClearHiddenTests, Execute, GetGrades
from traitlets import Integer

c = get_config()  # noqa: F821 (nbgrader defines get_config when it reads this file)

c.CourseDirectory.course_id = "intro-deep-learning"
# The course directory is this file's folder, wherever nbgrader runs from (the instructor's
# JupyterLab on a hub starts in their home; see jupyterhub_classroom.py).
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# nbgrader's exchange, where `make release` puts assignments, students submit, `make collect`
# collects and `make return-feedback` returns feedback: a folder shared by the instructor and
# every student. The students' copy of these two settings: student-config/nbgrader_config.py.
c.Exchange.root = "/srv/nbgrader/exchange"

# Per-cell time limit of student code and tests while autograding: an infinite loop is
# interrupted after this many seconds, the cell counts as failed and grading goes on. The
# slowest cell of a correct solution (assignment 3's training) takes a second or two. The
# instructor's read-only set-up cells get LimitedExecute.setup_timeout instead (below).
c.Execute.timeout = 30
# After a cell's reply, wait this long for its last outputs (nbgrader fails the whole
# submission otherwise; the default of 4 s is too short on a busy machine).
c.Execute.iopub_timeout = 30

# A deleted test cell is put back (from the gradebook) before grading, so deleting a failing
# test does not skip it. Edited test cells are always restored: they are "locked".
c.OverwriteCells.add_missing_cells = True

# Feedback shows at most this many lines of a cell's output (nbgrader's own limit).
c.LimitOutput.max_lines = 300

# Feedback shows what each test printed and why it failed, but not the hidden tests' code:
# students who get their feedback first cannot pass the hidden tests on. Plain tracebacks
# show the failing line of each frame only, not the lines around it (the hidden tests).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.Execute.extra_arguments = ["--InteractiveShell.xmode=Plain"]


class LimitedExecute(Execute):
    """nbgrader's Execute with two limits of its own.

    Time: the read-only set-up cells written by the instructor (imports, data) get
    `setup_timeout`: importing torch takes seconds on a busy machine, and interrupting an import
    would break the whole notebook. Every other cell (student code, tests) gets `timeout`.
    Grading restores read-only cells from the gradebook, so their code is the instructor's.

    Output: at most `max_output_chars` of text per cell; figures (images) are kept whole.
    nbgrader's LimitOutput cuts long outputs by lines, after the cell has run; a single huge
    line, or a loop printing until the time limit, would still be held in memory and written
    to the autograded notebook and the feedback. This cuts the output as it arrives. Error
    outputs are always kept, and a truncated stream keeps its name (nbgrader scores a test cell
    that wrote to stderr as failed).
    """

    setup_timeout = Integer(
        300, help="Time limit of the instructor's read-only, ungraded cells, in seconds."
    ).tag(config=True)
    max_output_chars = Integer(
        20_000, help="Characters of text output kept per cell (figures are not counted)."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.timeout_func = self._time_limit

    def _time_limit(self, cell):
        meta = cell.metadata.get("nbgrader", {})
        # A cell unknown to the gradebook has lost its grade_id by now (OverwriteCells).
        setup = meta.get("locked") and meta.get("grade_id") and not meta.get("grade")
        return self.setup_timeout if setup else self.timeout

    def preprocess_cell(self, cell, resources, index):
        self._room, self._cut = self.max_output_chars, set()
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or out.output_type == "error":
            return out
        data = out.get("data", {})
        # Figures are kept whole (PNG/SVG of a plot): the limit is on text.
        text = {k: v for k, v in data.items() if not k.startswith("image/")}
        size = len(out.get("text", "")) + sum(len(str(v)) for v in text.values())
        if size <= self._room:
            self._room -= size
            return out
        note = "\n... output truncated by the grader ...\n"
        kind = out.get("name", out.output_type)
        if len(text) < len(data):  # a figure with too much text: keep the figure
            for key in text:
                del data[key]
            data["text/plain"] = note
            self._room = 0
            return out
        outs.remove(out)
        if kind in self._cut:  # already cut: drop the rest of this stream
            return None
        self._cut.add(kind)
        if out.output_type == "stream":
            out.text = out.text[: self._room] + note
        else:
            out.data = {"text/plain": note}
        self._room = 0
        outs.append(out)
        return out


c.Autograde.autograde_preprocessors = [
    LimitedExecute if step is Execute else step
    for step in Autograde.class_traits()["autograde_preprocessors"].default()
]
