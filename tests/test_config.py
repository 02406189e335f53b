"""One typed config: defaults, config.toml mirror, env overrides, fail-fast errors."""

from __future__ import annotations

import os
import re
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
        ({"oauth": {"registration": "maybe"}}, "oauth.registration"),
        ({"oauth": {"registration": True}}, "oauth.registration"),
        ({"nosuchsection": {}}, "nosuchsection"),
        ({"redis": {"url": "http://x"}}, "redis.url"),
        ({"redis": {"url": "redis+sentinel://h:26379"}}, "redis.url"),
        ({"redis": {"url": "redis+sentinel://h/idp"}}, "redis.url"),
        ({"redis": {"url": "redis+sentinel://h:26379/idp/x"}}, "redis.url"),
        ({"redis": {"url": "redis+sentinel://h:26379/idp?master=x"}}, "redis.url"),
        ({"database": {"url": "nope://x"}}, "database.url"),
        ({"database": {"url": "postgresql+nope://u:p@h/db"}}, "database.url"),
        ({"database": {"url": "not a url"}}, "database.url"),
        ({"database": {"url": "postgresql+psycopg://u:p@h:port/db"}}, "database.url"),
    ],
)
def test_bad_values_name_the_key(data, key):
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(data)
    assert err.value.key == key


def test_a_sentinel_url_names_its_sentinels_service_and_database():
    from idp.state.redis_client import parse_sentinel

    url = "redis+sentinel://u:pw@a:26379,[::1]:26380/idp/2?sentinel_password=s"
    assert config.from_mapping({"redis": {"url": url}}).redis.url == url
    assert parse_sentinel(url) == {
        "sentinels": [("a", 26379), ("::1", 26380)],
        "service": "idp",
        "db": 2,
        "username": "u",
        "password": "pw",
        "sentinel_password": "s",
    }


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


def test_a_database_url_whose_driver_is_not_installed_names_the_key(monkeypatch):
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    def missing() -> None:
        raise ModuleNotFoundError("No module named 'sqlite3'")

    monkeypatch.setattr(SQLiteDialect_pysqlite, "import_dbapi", missing)
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping({"database": {"url": "sqlite:///x.db"}})
    assert err.value.key == "database.url"
    assert "not installed" in err.value.problem


def test_a_bad_database_url_never_repeats_its_password():
    for url in ("postgresql+nope://idp:s3cret@db/idp", "idp:s3cret@db", "pg://u:s3cret@h:x/d"):
        with pytest.raises(config.ConfigError) as err:
            config.from_mapping({"database": {"url": url}})
        assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("IDP_SERVER__PROT", "IDP_SERVER__PORT"),
        ("IDP_DATABASE_URL", "IDP_DATABASE__URL"),
        ("IDP_server__port", "IDP_SERVER__PORT"),
        ("IDP_CONIFG", "IDP_CONFIG"),
        ("IDP_NOPE__X", None),
    ],
)
def test_an_idp_variable_that_names_no_setting_is_an_error_naming_it(name, suggestion):
    with pytest.raises(config.ConfigError) as err:
        config.load(path=os.devnull, env={name: "x"})
    assert err.value.key == name
    assert err.value.problem.startswith("names no setting")
    if suggestion:
        assert f"did you mean {suggestion}?" in err.value.problem


def test_idp_variables_read_elsewhere_in_the_repository_are_allowed():
    env = {name: "x" for name in config.OTHER_IDP_VARIABLES}
    cfg = config.load(path=os.devnull, env={**env, "IDP_KEK": "abc"})
    assert cfg.keys.kek == "abc"


def test_every_idp_variable_the_repository_uses_is_a_setting_or_listed():
    """A new IDP_ variable in deploy/, examples/, bench/ or the tests must be added to
    config.OTHER_IDP_VARIABLES, or idp would refuse to start beside it."""
    known = config.env_names() | set(config.OTHER_IDP_VARIABLES)
    # Each setting (and IDP_KEK, IDP_KEK_PREVIOUS) may instead be read from the file its
    # _FILE names.
    known |= {f"{name}_FILE" for name in config.env_names() | set(config.SHORT_NAMES)}
    deliberate_typos = {ROOT / "tests" / "test_config.py", ROOT / "tests" / "test_cli.py"}
    files = [ROOT / "Makefile"] + [
        p
        for top in ("deploy", "examples", "bench", "tests")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and "node_modules" not in p.parts and p not in deliberate_typos
    ]
    unknown = set()
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for name in re.findall(r"\bIDP_[A-Z0-9_]*[A-Z0-9]\b", text):
            if name not in known:
                unknown.add(f"{file.relative_to(ROOT)}: {name}")
    assert not unknown, sorted(unknown)


def test_config_file_is_idp_config_else_config_toml_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.config_file(env={}) is None
    (tmp_path / "config.toml").write_text("")
    assert config.config_file(env={}) == tmp_path.resolve() / "config.toml"
    assert config.config_file(env={"IDP_CONFIG": "/etc/idp.toml"}) == Path("/etc/idp.toml")


def test_a_public_issuer_refuses_to_start_on_development_secrets():
    public = {"server": {"issuer": "https://login.example.com"}}
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(public, {})
    assert err.value.key == "keys.kek"
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(public, {"IDP_KEYS__KEK": "k" * 43})
    assert err.value.key == "server.secret_key"
    both = {"IDP_KEYS__KEK": "k" * 43, "IDP_SERVER__SECRET_KEY": "s" * 32}
    assert config.from_mapping(public, both).server.issuer == "https://login.example.com"
    # Loopback development keeps its generated secrets.
    assert config.from_mapping({"server": {"issuer": "https://127.0.0.1:8443"}}, {})
