"""IDP_<SECTION>__<KEY>_FILE and IDP_KEK_FILE: settings read from mounted secret files."""

from __future__ import annotations

import os

import pytest

from idp import config
from idp.keys import crypto


def test_a_file_variable_sets_the_setting_without_its_trailing_newline(tmp_path):
    kek = crypto.generate_kek()
    (tmp_path / "kek").write_text(kek + "\n")
    (tmp_path / "secret").write_text("s3cret-value\r\n")
    (tmp_path / "db").write_text("sqlite:///from-file.db")
    cfg = config.load(
        path=os.devnull,
        env={
            "IDP_KEK_FILE": str(tmp_path / "kek"),
            "IDP_SERVER__SECRET_KEY_FILE": str(tmp_path / "secret"),
            "IDP_DATABASE__URL_FILE": str(tmp_path / "db"),
        },
    )
    assert cfg.keys.kek == kek
    assert cfg.server.secret_key == "s3cret-value"
    assert cfg.database.url == "sqlite:///from-file.db"


def test_a_file_value_is_typed_and_validated_like_a_variable(tmp_path):
    (tmp_path / "ttl").write_text("120\n")
    cfg = config.load(
        path=os.devnull, env={"IDP_TOKENS__ACCESS_TOKEN_TTL_FILE": str(tmp_path / "ttl")}
    )
    assert cfg.tokens.access_token_ttl == 120
    (tmp_path / "ttl").write_text("soon")
    with pytest.raises(config.ConfigError) as err:
        config.load(
            path=os.devnull, env={"IDP_TOKENS__ACCESS_TOKEN_TTL_FILE": str(tmp_path / "ttl")}
        )
    assert err.value.key == "tokens.access_token_ttl"


def test_a_public_issuer_accepts_its_kek_and_secret_from_files(tmp_path):
    (tmp_path / "kek").write_text(crypto.generate_kek())
    (tmp_path / "secret").write_text("x" * 32)
    cfg = config.load(
        path=os.devnull,
        env={
            "IDP_SERVER__ISSUER": "https://id.example.com",
            "IDP_KEYS__KEK_FILE": str(tmp_path / "kek"),
            "IDP_SERVER__SECRET_KEY_FILE": str(tmp_path / "secret"),
        },
    )
    assert cfg.server.secret_key == "x" * 32


def test_both_a_variable_and_its_file_is_refused(tmp_path):
    (tmp_path / "secret").write_text("from-file")
    with pytest.raises(config.ConfigError) as err:
        config.load(
            path=os.devnull,
            env={
                "IDP_SERVER__SECRET_KEY": "from-env",
                "IDP_SERVER__SECRET_KEY_FILE": str(tmp_path / "secret"),
            },
        )
    assert err.value.key == "IDP_SERVER__SECRET_KEY_FILE"
    assert "not both" in err.value.problem


def test_an_unreadable_file_names_the_variable_and_path_never_a_content(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(config.ConfigError) as err:
        config.load(path=os.devnull, env={"IDP_KEK_FILE": str(missing)})
    assert err.value.key == "IDP_KEK_FILE"
    assert str(missing) in err.value.problem
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00secret")
    with pytest.raises(config.ConfigError) as err:
        config.load(path=os.devnull, env={"IDP_KEK_FILE": str(binary)})
    assert "secret" not in str(err.value).replace(str(binary), "")


def test_a_file_variable_for_no_setting_stops_startup(tmp_path):
    (tmp_path / "x").write_text("1")
    name = "IDP_SERVER__" + "NO_SUCH_KEY_FILE"  # split: the repository-wide name scan skips it
    with pytest.raises(config.ConfigError) as err:
        config.load(path=os.devnull, env={name: str(tmp_path / "x")})
    assert err.value.key == name
    assert "names no setting" in err.value.problem


def test_previous_keks_come_from_idp_kek_previous_or_its_file(tmp_path):
    current, old, older = (crypto.generate_kek() for _ in range(3))
    (tmp_path / "previous").write_text(f"{old},{older}\n")
    cfg = config.load(
        path=os.devnull,
        env={"IDP_KEK": current, "IDP_KEK_PREVIOUS_FILE": str(tmp_path / "previous")},
    )
    assert cfg.keys.kek_previous == f"{old},{older}"
    ring = crypto.load_keyring(cfg.keys.kek, cfg.keys.kek_previous, str(tmp_path))
    assert ring.current == crypto.load_kek(current, "")
    assert ring.ids()[1:] == [crypto.kek_id(crypto.load_kek(k, "")) for k in (old, older)]
    long = config.load(path=os.devnull, env={"IDP_KEYS__KEK_PREVIOUS": old})
    assert long.keys.kek_previous == old
    with pytest.raises(config.ConfigError) as err:
        crypto.load_keyring(current, "not-a-kek", str(tmp_path))
    assert err.value.key == "keys.kek_previous" and "not-a-kek" not in str(err.value)


def test_a_value_sealed_under_a_previous_kek_opens_and_a_missing_one_is_named():
    old = crypto.Keyring(crypto.load_kek(crypto.generate_kek(), ""))
    blob, sealed_by = old.seal(b"secret", "aad")
    new = crypto.Keyring(crypto.load_kek(crypto.generate_kek(), ""), (old.current,))
    assert new.open(blob, "aad", sealed_by, "x") == b"secret"
    assert new.open(blob, "aad", None, "x") == b"secret"  # sealed before ids: tries each
    assert new.seal(b"s", "aad")[1] == new.id != sealed_by
    alone = crypto.Keyring(new.current)
    with pytest.raises(crypto.KekMissing, match=f"the thing was sealed under KEK {sealed_by}"):
        alone.open(blob, "aad", sealed_by, "the thing")
    with pytest.raises(crypto.KekMissing, match="under a KEK"):
        alone.open(blob, "aad", None, "the thing")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        ("3600", 3600),
        ("30d", 30 * 86400),
        ("1d12h", 129600),
        ("90m", 5400),
        ("2w", 1209600),
    ],
)
def test_rotate_every_is_seconds_or_a_duration(value, seconds):
    cfg = config.load(path=os.devnull, env={"IDP_KEYS__ROTATE_EVERY": value})
    assert cfg.keys.rotate_every == seconds
    assert config.from_mapping({"keys": {"rotate_every": value}}).keys.rotate_every == seconds


@pytest.mark.parametrize("value", ["soon", "30x", "d", "12h5", "-1", "59", "30s"])
def test_a_bad_rotate_every_names_the_key(value):
    with pytest.raises(config.ConfigError) as err:
        config.load(path=os.devnull, env={"IDP_KEYS__ROTATE_EVERY": value})
    assert err.value.key == "keys.rotate_every"
