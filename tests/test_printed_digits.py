"""The committed notebook outputs print no digit that a different CPU or BLAS kernel would change.

Reads the outputs stored in notebooks/*.ipynb (no kernel runs here). Three kinds of noise fail:

- a noise-level quantity printed as its value: a number in scientific notation below 1e-7 (or
  0.0e+00), e.g. a gradient check's relative error `2.4e-09` or a numpy-vs-torch difference
  `1.1e-16`. Show a verdict against a stated bound instead: `relative error < 1e-7: True`;
- a blown-up value, 1e10 or more in scientific notation (`6.2e+42`): its digits are rounding
  noise amplified; say "diverged";
- in an output about a loss or an accuracy (training results), a number with more than
  MAX_TRAINED_DIGITS significant digits (`0.447168`).

Which digits of a training result survive a kernel change was measured by running the notebooks
under ATEN_CPU_CAPABILITY=default/avx2 and OPENBLAS_CORETYPE=Prescott/Sandybridge/Haswell;
`make test` re-runs the notebooks under ATEN_CPU_CAPABILITY=default. Checker lines (PASS, FAIL,
"not attempted yet") print the checked case and are left to tests/test_checks.py; cells tagged
nbval-ignore-output (timings of this machine) are not compared by nbval either.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_TRAINED_DIGITS = 4
SCIENTIFIC = re.compile(r"(?<![\w.])([<>]=?\s*)?([-+]?\d\.\d+e[-+]?\d+)")
DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?![\d.]*e[-+]?\d)")
TRAINING_WORDS = re.compile(r"loss|accuracy", re.IGNORECASE)
CHECKER_LINE = re.compile(r"^\s*(PASS|FAIL|check_\w+|.*not attempted yet)")


def significant_digits(number: str) -> int:
    """Significant digits of a printed decimal: '0.0357' -> 3, '1.000' -> 4, '25.815' -> 5."""
    return len(number.lstrip("+-").replace(".", "").lstrip("0")) or 1


def noise_in(text: str) -> list[str]:
    """The printed numbers in `text` whose digits a kernel change would move."""
    lines = [line for line in text.splitlines() if not CHECKER_LINE.match(line)]
    found = []
    for line in lines:
        for bound, number in SCIENTIFIC.findall(line):
            if not bound and (abs(float(number)) < 1e-7 or abs(float(number)) >= 1e10):
                found.append(number)
    if TRAINING_WORDS.search("\n".join(lines)):
        found += [number for line in lines for number in DECIMAL.findall(line)
                  if significant_digits(number) > MAX_TRAINED_DIGITS]
    return found


def _outputs(notebook: Path):
    """(cell number as nbval counts, text) of each compared output of the notebook's code cells."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    for number, cell in enumerate(cells):
        if "nbval-ignore-output" in cell["metadata"].get("tags", []):
            continue
        for output in cell["outputs"]:
            if output["output_type"] == "stream" and output["name"] == "stdout":
                yield number, "".join(output["text"])
            elif output["output_type"] in ("execute_result", "display_data"):
                yield number, "".join(output.get("data", {}).get("text/plain", ""))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_prints_no_noise_digits(notebook):
    noisy = {f"cell {number}": found for number, text in _outputs(notebook)
             if (found := noise_in(text))}
    assert noisy == {}, f"{notebook.name} prints digits that depend on the CPU: {noisy}"


@pytest.mark.parametrize("text, noise", [
    ("relative error 2.4e-09", ["2.4e-09"]),
    ("largest difference: 0.0e+00", ["0.0e+00"]),
    ("after 10 epochs | 6.2e+42", ["6.2e+42"]),
    ("final training loss\nSGD | 0.447168 | 0.447168 | True", ["0.447168", "0.447168"]),
    ("relative error < 1e-7: True", []),
    ("max difference < 1.0e-12", []),
    ("final loss 0.0357, accuracy 98.9%, epoch 24", []),
    ("weights [1.7397 0.8837]", []),  # no training result: closed-form values keep their digits
    ("PASS check_adam_step [t = 1]: eps=1e-08 expected 2.604e-09 got 2.604e-09", []),
])
def test_the_rule_finds_noise_and_only_noise(text, noise):
    assert noise_in(text) == noise
