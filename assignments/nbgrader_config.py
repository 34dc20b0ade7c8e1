"""nbgrader settings of the course, read by every `nbgrader` command run in assignments/.

`make assignments` and `make grade` (assignments/course.py) run nbgrader with this directory
as the course root; run nbgrader yourself from here and you get the same settings.
"""

from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from traitlets import Integer

c = get_config()  # noqa: F821 (nbgrader defines get_config when it reads this file)

c.CourseDirectory.course_id = "intro-deep-learning"

# Per-cell time limit while autograding: an infinite loop is interrupted after this many
# seconds, the cell counts as failed and grading goes on. The slowest cell of a correct
# solution (assignment 3's training) takes a few seconds.
c.Execute.timeout = 60

# A deleted test cell is put back (from the gradebook) before grading, so deleting a failing
# test does not skip it. Edited test cells are always restored: they are "locked".
c.OverwriteCells.add_missing_cells = True

# Feedback shows at most this many lines of a cell's output (nbgrader's own limit).
c.LimitOutput.max_lines = 300


class LimitedExecute(Execute):
    """nbgrader's Execute that keeps at most `max_output_chars` of a cell's output.

    nbgrader's LimitOutput cuts long outputs by lines, after the cell has run; a single huge
    line, or a loop printing until the time limit, would still be held in memory and written
    to the autograded notebook and the feedback. This cuts the output as it arrives. Error
    outputs are always kept, and a truncated stream keeps its name (nbgrader scores a test
    cell that wrote to stderr as failed).
    """

    max_output_chars = Integer(
        20_000, help="Characters of output kept per cell; the rest is dropped."
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        self._room, self._cut = self.max_output_chars, set()
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or out.output_type == "error":
            return out
        size = len(out.get("text", "")) + sum(len(str(v)) for v in out.get("data", {}).values())
        if size <= self._room:
            self._room -= size
            return out
        outs.remove(out)
        kind = out.get("name", out.output_type)
        if kind in self._cut:  # already cut: drop the rest of this stream
            return None
        self._cut.add(kind)
        note = "\n... output truncated by the grader ...\n"
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
