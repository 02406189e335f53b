"""The `idp` command as users' scripts call it (SPEC §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from idp import migrate
from tests.conftest import TEST_KEK


@pytest.fixture
def run(tmp_path):
    env = {
        **os.environ,
        "IDP_SERVER__INSTANCE_PATH": str(tmp_path),
        "IDP_DATABASE__URL": f"sqlite:///{tmp_path}/cli.db",
        "IDP_KEK": TEST_KEK,
        "IDP_CONFIG": os.devnull,
    }
    env.pop("IDP_REDIS__URL", None)

    def run(*args, stdin=None, check=True):
        proc = subprocess.run(
            [sys.executable, "-m", "idp.cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    migrate.upgrade(f"sqlite:///{tmp_path}/cli.db")
    return run


def test_db_upgrade_command(tmp_path):
    env = {
        **os.environ,
        "IDP_DATABASE__URL": f"sqlite:///{tmp_path}/up.db",
        "IDP_CONFIG": os.devnull,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "idp.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0 and "database is at head" in proc.stdout


def test_users_create_reads_password_from_stdin(run):
    out = json.loads(
        run(
            "users",
            "create",
            "carol",
            "--password-stdin",
            "--email",
            "carol@example.test",
            "--admin",
            stdin="a long password\n",
        ).stdout
    )
    assert out["username"] == "carol" and out["admin"] is True
    dup = run(
        "users", "create", "carol", "--password-stdin", stdin="a long password\n", check=False
    )
    assert dup.returncode == 1 and "taken" in dup.stderr


def test_clients_create_prints_one_json_object(run):
    out = run(
        "clients",
        "create",
        "shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--redirect-uri",
        "https://shop.example/cb2",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--scope",
        "openid email",
        "--claim",
        "tier=gold",
        "--backchannel-logout-uri",
        "https://shop.example/bcl",
    ).stdout
    data = json.loads(out)
    assert data["client_id"] == "shop" and len(data["client_secret"]) >= 43
    assert data["redirect_uris"] == ["https://shop.example/cb", "https://shop.example/cb2"]
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    assert data["claims"] == {"tier": "gold"}
    public = json.loads(
        run("clients", "create", "spa", "--public", "--redirect-uri", "http://127.0.0.1/cb").stdout
    )
    assert "client_secret" not in public
    assert public["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize(
    "args",
    [
        ["--redirect-uri", "http://evil.example/cb"],
        ["--redirect-uri", "https://x.example/cb#frag"],
        ["--redirect-uri", "javascript:alert(1)"],
        ["--redirect-uri", "https://x.example/cb", "--claim", "iss=me"],
        ["--redirect-uri", "https://x.example/cb", "--claim", "novalue"],
        ["--public", "--grant", "client_credentials"],
    ],
)
def test_clients_create_refuses_unsafe_registrations(run, args):
    proc = run("clients", "create", "bad", *args, check=False)
    assert proc.returncode != 0
    assert proc.stderr.startswith(("idp: ", "Usage", "Error")), proc.stderr


def test_keys_rotate_and_list(run):
    before = [json.loads(line) for line in run("keys", "list").stdout.splitlines()]
    rotated = json.loads(run("keys", "rotate").stdout)["active"]
    after = [json.loads(line) for line in run("keys", "list").stdout.splitlines()]
    states = {k["kid"]: k["state"] for k in after}
    assert all(states[kid] == "active" for kid in rotated)
    assert any(k["state"] == "retired" for k in after) or not before
    assert {"ES256", "RS256"} <= {k["alg"] for k in after}


@pytest.fixture
def live_session(run, tmp_path):
    """A user logged in through the app on the CLI's database; returns (app, browser)."""
    from idp import create_app
    from tests.support.auth import AuthActions

    run("users", "create", "dave", "--password-stdin", stdin="correct horse battery\n")
    app = create_app(
        {
            "server": {"instance_path": str(tmp_path), "secret_key": "k"},
            "database": {"url": f"sqlite:///{tmp_path}/cli.db"},
            "keys": {"kek": TEST_KEK},
        }
    )
    browser = AuthActions(app, app.test_client())
    assert browser.login("dave").status_code == 303
    yield app, browser
    app.extensions["idp"].db.dispose()


def test_sessions_list_and_kill(run, live_session):
    _, browser = live_session
    [row] = [
        json.loads(line) for line in run("sessions", "list", "--user", "dave").stdout.splitlines()
    ]
    assert row["user"] == "dave" and row["ended_at"] is None
    out = json.loads(run("sessions", "kill", row["sid"], "--reason", "lost phone").stdout)
    assert out == {"sid": row["sid"], "killed": True, "reason": "lost phone"}
    assert browser.client.get("/account").status_code == 303
    assert run("sessions", "list", "--user", "dave").stdout == ""
    assert run("sessions", "kill", "nope", check=False).returncode == 1


def test_tokens_revoke_user_kills_everything(run, live_session):
    _, browser = live_session
    out = json.loads(run("tokens", "revoke-user", "dave").stdout)
    assert out == {"user": "dave", "sessions_killed": 1}
    assert browser.client.get("/account").status_code == 303


def test_users_disable_and_enable(run, live_session):
    _, browser = live_session
    run("users", "disable", "dave")
    assert browser.client.get("/account").status_code == 303
    assert browser.login("dave").status_code == 401
    run("users", "enable", "dave")
    assert browser.login("dave").status_code == 303


def test_clients_rotate_secret_and_revoke_tokens(run, live_session):
    app, _ = live_session
    created = json.loads(
        run("clients", "create", "batch", "--grant", "client_credentials", "--scope", "jobs").stdout
    )
    client = app.test_client()
    old = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("batch", created["client_secret"]),
    )
    assert old.status_code == 200
    new = json.loads(run("clients", "rotate-secret", "batch").stdout)["client_secret"]
    assert (
        client.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("batch", created["client_secret"]),
        ).status_code
        == 401
    )
    fresh = client.post("/token", data={"grant_type": "client_credentials"}, auth=("batch", new))
    assert fresh.status_code == 200
    out = json.loads(run("clients", "revoke-tokens", "batch").stdout)
    assert out["client_id"] == "batch"
    info = client.post(
        "/introspect", data={"token": fresh.get_json()["access_token"]}, auth=("batch", new)
    )
    assert info.get_json() == {"active": False}
    listed = [json.loads(line)["client_id"] for line in run("clients", "list").stdout.splitlines()]
    assert "batch" in listed
