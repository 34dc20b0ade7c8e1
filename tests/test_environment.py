"""The course environment's lock agrees with pyproject.toml, and environment.yml with the lock.

requirements/lock.txt (pip-compile, `make lock`) pins every package of the course environment:
dlhelpers' dependencies and all its extras. It must satisfy every requirement pyproject.toml
states, hold nothing pyproject.toml no longer asks for, and install PyTorch's CPU build.
"""

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith(("#", " ")):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def _environment_yml_pins() -> list[str]:
    # environment.yml's pip section: lines "      - name==version" after "- pip:".
    pins, in_pip = [], False
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        text = raw.split("#", 1)[0].strip()
        if text == "- pip:":
            in_pip = True
        elif in_pip and text.startswith("- ") and "==" in text:
            pins.append(text[2:])
    return pins


def test_lock_satisfies_every_requirement_of_pyproject():
    lock = _lock()
    requirements = _pyproject_requirements()
    assert requirements, "no requirements read from pyproject.toml"
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is not in {LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(lock[name], prereleases=True), \
            f"{LOCK.name} pins {name}=={lock[name]}, pyproject.toml asks {requirement}"


def test_lock_holds_only_what_pyproject_asks_for():
    # pip-compile marks each top-level package "via dlhelpers (pyproject.toml)".
    blocks = re.split(r"\n(?=\S)", LOCK.read_text())  # a pin and its "# via" lines
    direct = {canonicalize_name(block.split("==")[0]) for block in blocks
              if "dlhelpers (pyproject.toml)" in block}
    asked = {canonicalize_name(r.name) for r in _pyproject_requirements()}
    assert direct == asked, "run `make lock`"


def test_lock_pins_torchs_public_version_and_no_cuda():
    # `==2.13.0` takes the CPU build (2.13.0+cpu) where pip finds one, PyPI's build elsewhere:
    # PyPI has no `+cpu` builds, so a `+cpu` pin would fail on macOS and Windows.
    lock = _lock()
    assert lock["torch"] == Version("2.13.0")
    cuda = [name for name in lock if name.startswith(("nvidia-", "triton", "cuda"))]
    assert cuda == []


def test_environment_yml_has_the_locks_versions():
    pins = _environment_yml_pins()
    lock = _lock()
    assert {canonicalize_name(p.split("==")[0]): Version(p.split("==")[1]) for p in pins} == lock
    assert len(pins) == len(lock)


def test_environment_yml_is_what_make_lock_writes():
    path = ROOT / "requirements" / "environment_yml.py"
    spec = importlib.util.spec_from_file_location("environment_yml", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "environment.yml").read_text() == module.environment_yml(LOCK.read_text())


def test_the_library_keeps_a_torch_that_is_already_installed():
    # dlhelpers' own dependency on torch is a range; only the course environment pins it.
    torch = [r for r in _pyproject_requirements() if r.name == "torch"]
    assert str(torch[0].specifier) != "==2.13.0", "the library must not pin torch"
