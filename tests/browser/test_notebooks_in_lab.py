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
    view.open(_server_path(notebook))
    completed = view.run_all()
    problems = find_problems(view.cells(), stored=json.loads(notebook.read_text()))
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
    """broken.ipynb shows a figure as text, a widget that cannot render, and an error."""
    view.open(_server_path(BROKEN))
    assert view.run_all() is False  # Run All stops at the error
    problems = find_problems(view.cells())
    expected = {
        "figure shown as text": "cell 1: figure shown as text: '<Figure size 200x200 with 0 Axes>'",
        "widget": "cell 2: widget shown as text, not as a control",
        "error": "cell 3: error ZeroDivisionError: division by zero",
        "not run": "cell 4: did not run",
    }
    for what, line in expected.items():
        assert any(problem.startswith(line) for problem in problems), (what, problems)
    assert len(problems) == len(expected), problems
