"""The `idp` command as users' scripts call it (SPEC §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import TEST_KEK


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "IDP_SERVER__INSTANCE_PATH": str(tmp_path),
           "IDP_DATABASE__URL": f"sqlite:///{tmp_path}/cli.db", "IDP_KEK": TEST_KEK,
           "IDP_CONFIG": os.devnull}
    env.pop("IDP_REDIS__URL", None)

    def run(*args, stdin=None, check=True):
        proc = subprocess.run([sys.executable, "-m", "idp.cli", *args], env=env, input=stdin,
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    run("db", "upgrade")
    return run


def test_users_create_reads_password_from_stdin(run):
    out = json.loads(run("users", "create", "carol", "--password-stdin", "--email",
                         "carol@example.test", "--admin", stdin="a long password\n").stdout)
    assert out["username"] == "carol" and out["admin"] is True
    dup = run("users", "create", "carol", "--password-stdin", stdin="a long password\n",
              check=False)
    assert dup.returncode == 1 and "taken" in dup.stderr


def test_clients_create_prints_one_json_object(run):
    out = run("clients", "create", "shop", "--redirect-uri", "https://shop.example/cb",
              "--redirect-uri", "https://shop.example/cb2", "--grant", "authorization_code",
              "--grant", "refresh_token", "--scope", "openid email", "--claim", "tier=gold",
              "--backchannel-logout-uri", "https://shop.example/bcl").stdout
    data = json.loads(out)
    assert data["client_id"] == "shop" and len(data["client_secret"]) >= 43
    assert data["redirect_uris"] == ["https://shop.example/cb", "https://shop.example/cb2"]
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    assert data["claims"] == {"tier": "gold"}
    public = json.loads(run("clients", "create", "spa", "--public", "--redirect-uri",
                            "http://127.0.0.1/cb").stdout)
    assert "client_secret" not in public
    assert public["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize("args", [
    ["--redirect-uri", "http://evil.example/cb"],
    ["--redirect-uri", "https://x.example/cb#frag"],
    ["--redirect-uri", "javascript:alert(1)"],
    ["--redirect-uri", "https://x.example/cb", "--claim", "iss=me"],
    ["--redirect-uri", "https://x.example/cb", "--claim", "novalue"],
    ["--public", "--grant", "client_credentials"],
])
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
