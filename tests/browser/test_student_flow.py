"""A self-paced student's session in JupyterLab, in a real browser, on their own working copy.

`make working-copies` gives the student a git-ignored copy of the notebooks (here under
build/, which git ignores too, so the test never touches a real student's work/). JupyterLab,
serving the course folder as `make lab` does, opens the copy of notebook 01 and runs it: the
exercise's checker says "not attempted yet". The student types a wrong answer (FAIL, in red, with
a hint), then a right one (PASS), opens the folded solution and saves. The saved answer is in
the working copy; the tracked notebooks are unchanged and git ignores the copy.
"""

import json
import subprocess

import pytest
from lab_harness import ROOT, JupyterLab, NotebookView

WORK = "build/browser-student-work"
NOTEBOOK = f"{WORK}/01_perceptron.ipynb"
FUNCTION = "my_count_mistakes"

WRONG = '''def my_count_mistakes(X, y, w, w0):
    """My first try: the fraction, not the count."""
    return float(np.mean((w0 + X @ w > 0) != y))


checks.check_count_mistakes(my_count_mistakes)'''

RIGHT = '''def my_count_mistakes(X, y, w, w0):
    """Count the samples the step perceptron gets wrong."""
    return int(np.sum((w0 + X @ w > 0).astype(int) != y))


checks.check_count_mistakes(my_count_mistakes)'''

# The exercise cell's index, its rendered output text, and the colour of its first word.
_EXERCISE_JS = """
(name) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const index = panel.content.widgets.findIndex(cell => cell.model.type === 'code'
      && cell.model.sharedModel.getSource().includes('def ' + name));
  const cell = panel.content.widgets[index];
  const out = cell.outputArea.node;
  const first = out.querySelector('pre span');
  return {index, text: out.innerText, colour: first ? getComputedStyle(first).color : null,
          count: cell.model.executionCount};
}
"""


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """JupyterLab on the course folder, as `make lab` serves it, with fresh working copies."""
    subprocess.run(["rm", "-rf", WORK], cwd=ROOT, check=True)
    made = subprocess.run(["make", "--no-print-directory", "working-copies", f"WORK={WORK}"],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    assert "Added: 00_why_deep_learning.ipynb" in made.stdout
    server = JupyterLab(ROOT, tmp_path_factory.mktemp("student-lab-state")).start()
    try:
        yield server
    finally:
        server.stop()


def _exercise(view) -> dict:
    return view.page.evaluate(_EXERCISE_JS, FUNCTION)


def _run_cell_with(view, index: int, source: str) -> dict:
    """Click into the cell's editor, replace its text by typing `source`, press Shift+Enter."""
    page = view.page
    editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.scroll_into_view_if_needed()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(source)
    before = _exercise(view)["count"]
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        """([name, before]) => {
            const panel = window.jupyterapp.shell.currentWidget;
            const cell = panel.content.widgets.find(c => c.model.type === 'code'
                && c.model.sharedModel.getSource().includes('def ' + name));
            return cell.model.executionCount !== before && cell.model.executionCount !== null
                && panel.sessionContext.session.kernel.status === 'idle'
                && cell.outputArea.node.innerText.length > 0;
        }""", arg=[FUNCTION, before], timeout=60_000)
    return _exercise(view)


def test_a_student_solves_an_exercise_in_their_working_copy(chromium, student_lab, screenshots):
    page = chromium.new_page()
    page.set_default_timeout(60_000)
    view = NotebookView(page, student_lab).load()
    try:
        view.open(NOTEBOOK)
        assert view.run_all()
        stub = _exercise(view)
        assert "TODO check_count_mistakes: not attempted yet." in stub["text"]

        wrong = _run_cell_with(view, stub["index"], WRONG)
        assert wrong["text"].startswith("FAIL check_count_mistakes:"), wrong["text"]
        assert "Hint:" in wrong["text"] and "Formula:" not in wrong["text"]
        assert wrong["colour"] == "rgb(183, 28, 28)", wrong  # FAIL in red
        view.screenshot(screenshots / "student-fail.png")

        right = _run_cell_with(view, stub["index"], RIGHT)
        assert right["text"].startswith("PASS check_count_mistakes: all 4 cases passed."), right
        assert right["colour"] == "rgb(27, 122, 27)"  # PASS in green

        # The solution, folded under the exercise: closed until the student opens it.
        solution = page.locator(".jp-Notebook .jp-Cell").nth(stub["index"] + 1).locator("details")
        solution.scroll_into_view_if_needed()
        code = solution.locator("pre")
        assert not code.is_visible()
        solution.locator("summary").click()
        assert code.is_visible() and "def my_count_mistakes" in code.inner_text()
        view.screenshot(screenshots / "student-solution.png")

        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    finally:
        view.close_all()
        page.close()

    saved = json.loads((ROOT / NOTEBOOK).read_text())
    assert any("The fraction" not in "".join(c["source"]) and "Count the samples the step"
               in "".join(c["source"]) for c in saved["cells"])
    tracked = subprocess.run(["git", "status", "--porcelain", "--", "notebooks", WORK], cwd=ROOT,
                             capture_output=True, text=True, check=True)
    assert tracked.stdout == ""  # the tracked notebooks are untouched; the copy is ignored
    ignored = subprocess.run(["git", "check-ignore", "-q", NOTEBOOK], cwd=ROOT)
    assert ignored.returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", "work/01_perceptron.ipynb"],
                          cwd=ROOT).returncode == 0


@pytest.mark.parametrize("name", ["01_perceptron", "02_activation_functions",
                                  "05_gradient_descent"])
def test_widgets_on_opening_show_or_the_cell_says_to_run_it(chromium, student_lab, name):
    """Opened, not run: each widget output is a live control, or its cell says to run it."""
    page = chromium.new_page()
    page.set_default_timeout(60_000)
    view = NotebookView(page, student_lab).load()
    try:
        view.open(f"{WORK}/{name}.ipynb")
        view.wait_for_images()
        cells = view.cells()
        sources = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
                                   .map(cell => cell.model.sharedModel.getSource())""")
    finally:
        view.close_all()
        page.close()
    widget_cells = [c for c in cells if any("widget-view" in " ".join(o.mime_types)
                                            for o in c.outputs)]
    assert widget_cells, name
    for cell in widget_cells:
        live = all(o.widget_views > 0 for o in cell.outputs if o.mime_types)
        first_line = sources[cell.index].splitlines()[0]
        print(name, cell.index, "live" if live else "text fallback", first_line)
        assert live or ("run this cell" in first_line and first_line.startswith("#"))
