"""idp-verifier is its own distribution: a resource server installs it without Flask,
SQLAlchemy or idp (issue 12 item 4)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import idp_verifier

DISTRIBUTION = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a fresh interpreter
def test_importing_it_loads_neither_flask_nor_sqlalchemy_nor_idp():
    code = (
        "import sys; import idp_verifier; from idp_verifier import Verifier; "
        "loaded = [m for m in ('flask', 'sqlalchemy', 'idp', 'redis') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_its_distribution_depends_on_jose_only():
    project = tomllib.loads((DISTRIBUTION / "pyproject.toml").read_text())["project"]
    assert project["name"] == "idp-verifier"
    assert [d.split(">")[0] for d in project["dependencies"]] == ["joserfc"]
    assert "optional-dependencies" not in project


def test_it_is_imported_from_the_distribution_directory():
    """`make install` installs ./verifier (editable): the package a resource server
    gets is this one, not a copy inside idp."""
    assert Path(idp_verifier.__file__).resolve().parent == DISTRIBUTION / "idp_verifier"
