"""One typed config: defaults, config.toml mirror, env overrides, fail-fast errors."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from idp import config

ROOT = Path(__file__).resolve().parent.parent


def test_config_toml_mirrors_every_setting_with_its_default():
    data = tomllib.loads((ROOT / "config.toml").read_text())
    for key, doc, default in config.describe():
        section, name = key.split(".")
        assert data[section][name] == default, key
        assert doc
    assert config.from_mapping(data) == config.Config()


def test_environment_overrides_file_values(tmp_path):
    file = tmp_path / "idp.toml"
    file.write_text("[tokens]\naccess_token_ttl = 120\n[server]\nsignup_enabled = true\n")
    cfg = config.load(
        env={
            "IDP_CONFIG": str(file),
            "IDP_TOKENS__ACCESS_TOKEN_TTL": "60",
            "IDP_SERVER__SIGNUP_ENABLED": "false",
            "IDP_DATABASE__URL": "sqlite:///x.db",
        }
    )
    assert cfg.tokens.access_token_ttl == 60
    assert cfg.server.signup_enabled is False
    assert cfg.database.url == "sqlite:///x.db"


def test_idp_kek_is_the_short_name_of_keys_kek():
    cfg = config.load(path=os.devnull, env={"IDP_KEK": "abc"})
    assert cfg.keys.kek == "abc"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"tokens": {"access_token_ttl": "soon"}}, "tokens.access_token_ttl"),
        ({"tokens": {"access_token_ttl": -5}}, "tokens.access_token_ttl"),
        ({"tokens": {"authorization_code_ttl": 600}}, "tokens.authorization_code_ttl"),
        ({"tokens": {"access_token_alg": "HS256"}}, "tokens.access_token_alg"),
        ({"tokens": {"refresh_reuse_grace_seconds": 61}}, "tokens.refresh_reuse_grace_seconds"),
        ({"server": {"issuer": "http://idp.example.com"}}, "server.issuer"),
        ({"server": {"issuer": "ftp://x"}}, "server.issuer"),
        ({"server": {"signup_enabled": "maybe"}}, "server.signup_enabled"),
        ({"server": {"nonsense": 1}}, "server.nonsense"),
        ({"nosuchsection": {}}, "nosuchsection"),
        ({"redis": {"url": "http://x"}}, "redis.url"),
    ],
)
def test_bad_values_name_the_key(data, key):
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(data)
    assert err.value.key == key


def test_bad_value_stops_the_command_with_exit_2_and_one_line(tmp_path):
    env = {
        **os.environ,
        "IDP_TOKENS__ACCESS_TOKEN_TTL": "banana",
        "IDP_SERVER__INSTANCE_PATH": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "idp.cli", "keys", "list"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "idp: configuration error: tokens.access_token_ttl: expected an integer, got 'banana'"
    ]


def test_insecure_development_defaults_are_warned_about(caplog):
    warnings = config.warn_insecure(config.Config())
    assert any("plain http" in w for w in warnings)
    assert any("IDP_KEK" in w for w in warnings)
    assert "insecure setting" in caplog.text
