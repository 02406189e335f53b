"""requirements.lock (`make lock`) pins every runtime dependency of pyproject.toml, within
its range and with hashes, so the image installs exactly what was tested. Offline: the
extras' own requirements come from the installed distributions' metadata."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def runtime_requirements() -> list[Requirement]:
    """The dependencies, and the tracing extra's (the image can turn tracing on)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    tracing = project["optional-dependencies"]["tracing"]
    return [Requirement(r) for r in project["dependencies"] + tracing]


def lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range():
    pins = lock()
    for req in runtime_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]} outside {req.specifier}: "
            "run `make lock`"
        )


def test_every_runtime_dependency_has_an_upper_bound():
    for req in runtime_requirements():
        assert any(s.operator in {"<", "<=", "==", "~="} for s in req.specifier), req


def test_the_requirements_of_each_extra_are_pinned_too():
    pins = lock()
    for req in runtime_requirements():
        for extra in req.extras:
            needed = [
                Requirement(r)
                for r in importlib.metadata.requires(req.name) or []
                if Requirement(r).marker is not None
                and Requirement(r).marker.evaluate({"extra": extra})  # type: ignore[union-attr]
            ]
            assert needed, f"{req.name}[{extra}] requires nothing installed here"
            for dep in needed:
                assert canonicalize_name(dep.name) in pins, f"{req.name}[{extra}] needs {dep}"


def test_every_pin_has_a_hash():
    text = (ROOT / "requirements.lock").read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if PIN.match(block):
            assert "--hash=sha256:" in block, block.splitlines()[0]
