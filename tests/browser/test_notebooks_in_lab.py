"""Every lecture notebook, run in JupyterLab in a real browser, looks right to a student.

For each notebook: open it in JupyterLab (headless Chromium), clear its outputs, Run All Cells,
then check what the page shows: no errors, no stray stderr, every figure an image, every
`ipywidgets` control a live control (not its text fallback), as many figures and widgets as the
committed notebook (executed by nbconvert, checked by nbval) holds. Where a notebook has a
slider, drag it and check that the figure it drives is redrawn. A screenshot of each notebook
goes to build/browser/.

The harness is developed against fixtures/scratch.ipynb (a figure, a slider driving a figure),
and fixtures/broken.ipynb proves that each check can fail.
"""

import json

import pytest
from lab_harness import FIXTURES, NOTEBOOKS, find_problems

SCRATCH = next(path for path in FIXTURES if path.name == "scratch.ipynb")
BROKEN = next(path for path in FIXTURES if path.name == "broken.ipynb")


def _server_path(notebook):
    return f"{'fixtures' if notebook in FIXTURES else 'notebooks'}/{notebook.name}"


@pytest.mark.parametrize("notebook", [SCRATCH, *NOTEBOOKS], ids=lambda path: path.stem)
def test_notebook_runs_and_renders_in_jupyterlab(view, screenshots, notebook):
    path = _server_path(notebook)
    view.open(path)
    completed = view.run_all()
    # The server's copy, taken when the test run started, is the committed notebook that ran.
    stored = json.loads((view.lab.root_dir / path).read_text())
    problems = find_problems(view.cells(), stored=stored)
    if not completed:
        problems.append("Run All Cells stopped before the last cell")

    if view.has_slider():
        move = view.move_first_slider()
        if move.readout_after == move.readout_before:
            problems.append(f"dragging the first slider left its value at {move.readout_before}")
        if not move.figure_changed:
            problems.append(f"slider moved {move.readout_before} -> {move.readout_after}, "
                            "but the figure it drives did not change")
        problems += [f"after moving the slider: {error[:300]!r}" for error in move.errors_after]
    elif notebook == SCRATCH:
        problems.append("the scratch notebook's slider is not on the page")

    view.scroll_to_first(".jp-OutputArea-output .widget-slider") or view.scroll_to_first(
        ".jp-OutputArea-output img"
    )
    shot = view.screenshot(screenshots / f"{notebook.stem}.png")
    problems += [f"JavaScript error in the page: {error[:300]}" for error in view.errors]
    assert problems == [], f"{notebook.name} in JupyterLab (screenshot: {shot}):\n" + "\n".join(
        problems
    )


def test_each_check_catches_what_it_is_for(view):
    """broken.ipynb has one of each problem; each check must report its own, and only that."""
    view.open(_server_path(BROKEN))
    assert view.run_all() is False  # Run All stops at the error
    # Its committed version was never run (unlike a lecture notebook): that is reported too.
    problems = find_problems(view.cells(), stored=json.loads(BROKEN.read_text()))
    expected = [
        "cell 1: figure shown as text: '<Figure size 200x200 with 0 Axes>'",
        "cell 2: widget shown as text, not as a control",
        "cell 3: wrote to stderr: 'a warning\\n'",
        "cell 5: error ZeroDivisionError: division by zero",
        "cell 6: did not run",
        "the committed notebook is not executed (6 code cells never ran)",
    ]
    assert len(problems) == len(expected), problems
    for line, problem in zip(expected, problems, strict=True):
        assert problem.startswith(line), (line, problems)

    move = view.move_first_slider()  # cell 4: its value changes, no figure follows
    assert (move.readout_before, move.readout_after != move.readout_before) == ("1.00", True)
    assert move.figure_changed is False
