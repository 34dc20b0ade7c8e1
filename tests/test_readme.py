"""The README's syllabus lists every lecture notebook, once, in order, and nothing else."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_syllabus_lists_exactly_the_notebooks_in_order():
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"\]\((notebooks/\d\d_\w+\.ipynb)\)", readme)
    on_disk = sorted(f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert listed == on_disk


def test_readme_names_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
