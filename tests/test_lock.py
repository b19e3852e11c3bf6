"""requirements.lock: every dependency pyproject names (base and the test, hf and bench extras) has one
exact pin that its specifier accepts, torch and its CUDA-only packages have none, and every install
the Makefile runs is constrained by the lock.

python -m pytest tests/test_lock.py
"""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
EXTRAS = ("test", "hf", "bench")
UNLOCKED = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
"""Canonical names the lock must not pin: the Makefile installs torch (CPU) only when .venv has none,
so a GPU user's CUDA build, and the CUDA-only packages it brings, stay in place."""
INSTALL_TARGETS = ("$(VENV)/.installed", "$(VENV)/.installed-test")


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    own = canonicalize_name(project["name"])
    return [req for req in map(Requirement, lines) if canonicalize_name(req.name) != own]


def lock_pins() -> list[tuple[NormalizedName, str]]:
    """(canonical name, version) of each line of the lock, comments and blank lines left out."""
    pins = []
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        assert match, f"requirements.lock: not a name==version pin: {line!r}"
        pins.append((canonicalize_name(match[1]), match[2]))
    return pins


def makefile_recipe(target: str) -> tuple[str, list[str]]:
    """The prerequisites line and the recipe lines (tab-indented, tab removed) of a Makefile target."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line[1:])
    return lines[start], recipe


def test_every_pyproject_requirement_but_torch_has_one_pin_its_specifier_accepts() -> None:
    # given pyproject's requirements (base, test, hf, bench) and the lock's pins
    pins = lock_pins()
    requirements = [req for req in pyproject_requirements() if canonicalize_name(req.name) != "torch"]
    assert len(requirements) > 20  # the parse found them all, not an empty list that passes anything
    for req in requirements:
        # when the pins for its name are looked up
        versions = [version for name, version in pins if name == canonicalize_name(req.name)]
        # then there is exactly one, and pyproject's range contains it
        assert len(versions) == 1, f"{req.name}: {len(versions)} pins in requirements.lock"
        assert req.specifier.contains(Version(versions[0]), prereleases=True), (
            f"{req.name}=={versions[0]} in requirements.lock is outside pyproject's {req}"
        )


def test_lock_leaves_torch_and_cuda_packages_out_and_pins_each_name_once() -> None:
    # given the lock's pins
    names = [name for name, _ in lock_pins()]
    # then torch, triton, nvidia-* and cuda-* are absent (a pin would replace a GPU user's build)
    assert [name for name in names if UNLOCKED.match(name)] == []
    # and no name is pinned twice, however it is spelled (Foo_Bar, foo-bar, foo.bar)
    assert len(names) == len(set(names)), sorted({name for name in names if names.count(name) > 1})


def test_lock_header_says_how_to_regenerate_it() -> None:
    # given the lock's comment header
    header = [line for line in LOCK.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    # then it names the command that regenerates it, and make knows that target
    assert any("make lock" in line for line in header)
    assert makefile_recipe("lock")[1], "Makefile: no recipe for lock"


@pytest.mark.parametrize("target", INSTALL_TARGETS)
def test_makefile_installs_are_constrained_by_the_lock_and_rerun_when_it_changes(target: str) -> None:
    # given an install target of the Makefile
    prerequisites, recipe = makefile_recipe(target)
    installs = [line for line in recipe if re.search(r"\binstall\b", line)]
    # then each pip install in it, torch's included, is constrained by the lock
    assert any(" -e " in line for line in installs), f"{target}: no editable install of rmcore"
    for line in installs:
        assert "-c requirements.lock" in line, f"{target}: unconstrained install: {line}"
    # and a changed lock makes it run again
    assert "requirements.lock" in prerequisites.split("|")[0].split()
