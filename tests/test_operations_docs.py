"""docs/operations.md: its configuration reference is the one idp/config.py generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from idp import config, config_reference

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "operations.md"


def test_operations_md_holds_the_current_configuration_reference():
    text = DOC.read_text(encoding="utf-8")
    expected = config_reference.replace_between_markers(text, config_reference.markdown())
    assert text == expected, (
        "docs/operations.md's configuration reference is stale: run `make config-docs` "
        "(python -m idp.config_reference --write docs/operations.md) and commit the result"
    )


def test_the_reference_names_every_setting_with_its_variable_and_doc():
    reference = config_reference.markdown()
    for key, doc, _ in config.describe():
        section, name = key.split(".")
        assert f"### `[{section}]`" in reference
        env = f"IDP_{section.upper()}__{name.upper()}"
        assert f"| `{name}` |" in reference and f"`{env}`" in reference, key
        assert config_reference._cell(doc) in reference, key


def test_defaults_are_written_as_in_config_toml():
    reference = config_reference.markdown()
    assert '| `issuer` | string | `"http://127.0.0.1:5000"` | `IDP_SERVER__ISSUER` |' in reference
    assert "| `signup_enabled` | bool | `false` |" in reference
    assert "| `port` | int | `5000` |" in reference
    assert '| `secret_key` | string | `""` |' in reference
    assert "| `from` | string |" in reference  # the TOML name, not from_


def test_a_pipe_in_a_doc_line_stays_in_its_cell():
    assert config_reference._cell('"text" | "json"') == '"text" \\| "json"'


def test_write_rewrites_only_the_text_between_the_markers(tmp_path):
    doc = tmp_path / "ops.md"
    doc.write_text(
        f"# Title\n\nbefore\n{config_reference.BEGIN}\nold text\n{config_reference.END}\nafter\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "idp.config_reference", "--write", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout == ""
    text = doc.read_text()
    assert text.startswith(f"# Title\n\nbefore\n{config_reference.BEGIN}\n\n### `[server]`")
    assert text.endswith(f"{config_reference.END}\nafter\n")
    assert "old text" not in text


def test_markers_missing_or_out_of_order_are_refused():
    with pytest.raises(ValueError, match="BEGIN CONFIG REFERENCE"):
        config_reference.replace_between_markers("no markers", "x")
    with pytest.raises(ValueError):
        config_reference.replace_between_markers(
            f"{config_reference.END}\n{config_reference.BEGIN}\n", "x"
        )


def test_operations_md_is_linked_from_the_readmes():
    assert "docs/operations.md" in (ROOT / "README.md").read_text()
    assert "../docs/operations.md" in (ROOT / "deploy" / "README.md").read_text()
