"""The lock files pin every dependency pyproject.toml declares, at a version its specifier allows."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
HINT = "pyproject.toml and the lock disagree: run `make lock` and commit both lock files"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _pins(path: Path) -> dict[str, str]:
    """Package name (canonical) -> pinned version, from a pip-compile output file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared(group: str | None) -> list[Requirement]:
    """The requirements of [project] dependencies, or of one optional-dependencies group."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(line) for line in lines]


def _problems(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    """Requirements the pins leave out or pin outside their specifier; extras' own requirements too."""
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        version = pins.get(name)
        if version is None:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} but the lock pins {version}")
        for extra in requirement.extras:
            try:
                wanted = [Requirement(line) for line in requires(requirement.name) or []]
            except PackageNotFoundError:
                continue  # not installed here: its extra's packages cannot be read, the pin above still holds
            for sub in wanted:
                if sub.marker is not None and sub.marker.evaluate({"extra": extra}) and \
                        canonicalize_name(sub.name) not in pins:
                    problems.append(f"{sub.name} (from {requirement}) is not pinned")
    return problems


@pytest.mark.parametrize(("lock", "groups"), [(RUNTIME_LOCK, [None]), (DEV_LOCK, [None, "dev"])],
                         ids=["runtime", "dev"])
def test_every_declared_dependency_is_pinned_within_its_specifier(lock: Path, groups: list[str | None]) -> None:
    pins = _pins(lock)
    assert [p for group in groups for p in _problems(_declared(group), pins)] == [], HINT


def test_the_dev_lock_keeps_the_runtime_versions() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    assert {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version} == {}, \
        HINT
