"""pyproject.toml and environment.yml must list the same packages with the same bounds."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return _by_name(lines)


def _environment_requirements() -> dict[str, str]:
    # environment.yml's pip section: lines "      - name<bounds>" after "- pip:".
    lines, in_pip = [], False
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        text = raw.split("#", 1)[0].rstrip()
        if text.strip() == "- pip:":
            in_pip = True
        elif in_pip and text.strip().startswith("- ") and not text.strip().startswith("- -e"):
            lines.append(text.strip()[2:])
    return _by_name(lines)


def _by_name(lines: list[str]) -> dict[str, str]:
    requirements = [Requirement(line) for line in lines]
    return {r.name.lower(): str(r.specifier) for r in requirements}


def test_environment_yml_matches_pyproject():
    pyproject, environment = _pyproject_requirements(), _environment_requirements()
    assert pyproject, "no dependencies read from pyproject.toml"
    assert environment == pyproject


def test_torch_is_pinned_to_the_cpu_build_on_disk():
    assert _pyproject_requirements()["torch"] == "==2.13.0"
