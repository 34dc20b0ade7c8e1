"""Print the requirements of `make test-lowest`: dlhelpers' dependencies at their lower bounds.

Each `name>=low,...` of pyproject.toml's [project].dependencies becomes `name==low`; the test
tools (pytest, pytest-xdist, hypothesis) come at the lock's versions. The unit tests then run
against exactly the oldest releases pyproject.toml allows, so its lower bounds are true.
"""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = ("pytest", "pytest-xdist", "hypothesis")


def lowest_pins(pyproject_text: str) -> list[str]:
    pins = []
    for line in tomllib.loads(pyproject_text)["project"]["dependencies"]:
        requirement = Requirement(line)
        lows = [s.version for s in requirement.specifier if s.operator == ">="]
        if len(lows) != 1:
            raise ValueError(f"{line!r} needs exactly one lower bound (>=) to be tested")
        pins.append(f"{requirement.name}=={lows[0]}")
    return pins


def locked_test_tools(lock_text: str) -> list[str]:
    return [m.group(0) for tool in TEST_TOOLS
            for m in [re.search(rf"^{tool}==\S+", lock_text, flags=re.MULTILINE)] if m]


if __name__ == "__main__":
    pins = lowest_pins((ROOT / "pyproject.toml").read_text())
    pins += locked_test_tools((ROOT / "requirements" / "lock.txt").read_text())
    print(" ".join(pins))
