"""idp as seen by oauth4webapi (JavaScript, node), over real HTTP.

``examples/node/login.mjs`` does the whole sign-in with oauth4webapi: discovery, PKCE
S256, nonce, RFC 9207 ``iss`` check, ID token validation, RFC 9068 access token
validation against the JWKS, userinfo. These tests run it against the live server and
check what it printed; PyJWT then checks the ID token's signature, which oauth4webapi
leaves to TLS (OIDC Core §3.1.3.7 step 6).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from examples.resource_server import create_api
from idp.refresh.models import RefreshFamily
from idp_verifier import Verifier
from tests.support.auth import PASSWORD, AuthActions
from tests.support.client_jwt import ClientKey

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"
REDIRECT = "http://127.0.0.1:9/cb"
TIMEOUT = 30


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with examples/node's dependencies installed (``npm ci``)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (deploy/dev-services.sh installs it)")
    if not (NODE_DIR / "node_modules" / "oauth4webapi" / "package.json").exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install examples/node's dependencies"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return node


def run_login(
    node: str,
    live: Any,
    client_id: str,
    secret: str | None,
    *,
    client_auth: str,
    password: str = PASSWORD,
    extra: tuple[str, ...] = (),
    client_jwk: str = "",
) -> subprocess.CompletedProcess[str]:
    """Runs login.mjs as user alice; secrets go through the environment, not argv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_PASSWORD=password, IDP_CLIENT_SECRET=secret or "", IDP_CLIENT_AUTH=client_auth)
    env.update(IDP_CLIENT_JWK=client_jwk)
    return subprocess.run(
        [
            node,
            "login.mjs",
            "--issuer",
            live.url,
            "--client-id",
            client_id,
            "--redirect-uri",
            REDIRECT,
            "--username",
            "alice",
            *extra,
        ],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def login(
    node: str,
    live: Any,
    client_id: str,
    secret: str | None,
    *,
    client_auth: str,
    extra: tuple[str, ...] = (),
    client_jwk: str = "",
) -> dict[str, Any]:
    done = run_login(
        node, live, client_id, secret, client_auth=client_auth, extra=extra, client_jwk=client_jwk
    )
    assert done.returncode == 0, done.stderr or done.stdout
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return dict(json.loads(lines[0]))


def check(
    live: Any,
    out: dict[str, Any],
    client_id: str,
    user: Any,
    scope: str = "openid profile email",
    token_type: str = "bearer",
) -> None:
    idt, at, info = out["id_token_claims"], out["access_token_claims"], out["userinfo"]
    assert idt["iss"] == at["iss"] == live.url
    assert idt["aud"] == client_id or idt["aud"] == [client_id]
    assert idt["sub"] == at["sub"] == info["sub"] == user.id
    assert idt["nonce"]
    assert idt["sid"] == at["sid"]
    assert idt["email"] == info["email"] == user.email
    assert idt["preferred_username"] == info["preferred_username"] == user.username
    assert at["client_id"] == client_id
    assert set(at["scope"].split()) == set(scope.split())
    assert out["token"]["token_type"].lower() == token_type

    # The ID token's signature, with PyJWT against the published keys.
    id_token = out["token"]["id_token"]
    keys = jwt.PyJWKClient(f"{live.url}/jwks.json", timeout=10)
    header = jwt.get_unverified_header(id_token)
    assert header["kid"] and header["alg"] == "RS256"
    claims = jwt.decode(
        id_token,
        keys.get_signing_key_from_jwt(id_token).key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=live.url,
    )
    assert claims == idt


def test_confidential_client(node, live, auth):
    alice = auth.user(name="Alice Liddell")
    rp = auth.oauth_client("node-app", redirect_uri=REDIRECT)
    out = login(node, live, rp.client_id, rp.secret, client_auth="basic")
    check(live, out, rp.client_id, alice)
    assert "refreshed" not in out  # no offline_access, no refresh token
    assert out["id_token_claims"]["name"] == out["userinfo"]["name"] == "Alice Liddell"
    assert out["browser"] == [
        "GET /authorize 302",
        "GET /login 200",
        "POST /login 303",
        "GET /authorize 302",
    ]


def test_public_client_with_max_age_and_refresh(node, live, auth):
    alice = auth.user()
    rp = auth.oauth_client("node-spa", public=True, redirect_uri=REDIRECT)
    # max_age makes oauth4webapi require and check auth_time (OIDC Core §3.1.2.1);
    # offline_access makes the script refresh once.
    out = login(
        node,
        live,
        rp.client_id,
        None,
        client_auth="none",
        extra=("--max-age", "600", "--scope", "openid profile email offline_access"),
    )
    check(live, out, rp.client_id, alice, scope="openid profile email offline_access")
    assert "auth_time" in out["id_token_claims"]
    refreshed = out["refreshed"]
    assert refreshed["rotated"] is True
    assert refreshed["id_token_claims"]["sub"] == alice.id
    assert "nonce" not in refreshed["id_token_claims"]  # OIDC Core §12.2
    assert set(refreshed["scope"].split()) == {"openid", "profile", "email", "offline_access"}


def test_third_party_client_asks_for_consent(node, live, auth):
    alice = auth.user()
    rp = auth.oauth_client("node-third-party", redirect_uri=REDIRECT, first_party=False)
    # client_secret_post this time; the script allows access on the consent page.
    out = login(node, live, rp.client_id, rp.secret, client_auth="post")
    check(live, out, rp.client_id, alice)
    assert out["browser"] == [
        "GET /authorize 302",
        "GET /login 200",
        "POST /login 303",
        "GET /authorize 200",
        "POST /authorize 303",
    ]


@pytest.mark.parametrize("config_overrides", [{"oauth": {"dpop_nonce": True}}])
def test_public_client_with_dpop_and_server_nonces(node, live, auth):
    """RFC 9449 end to end with oauth4webapi: dpop_jkt binds the code, proofs on the code
    exchange, userinfo and refresh (each first answered use_dpop_nonce, then retried with
    the nonce), and the access token checked against the proof it was sent with."""
    alice = auth.user()
    rp = auth.oauth_client("node-dpop", public=True, redirect_uri=REDIRECT)
    scope = "openid profile email offline_access"
    out = login(
        node, live, rp.client_id, None, client_auth="none", extra=("--dpop", "--scope", scope)
    )
    check(live, out, rp.client_id, alice, scope=scope, token_type="dpop")
    jkt = out["access_token_claims"]["cnf"]["jkt"]
    assert out["refreshed"]["rotated"] is True
    assert out["refreshed"]["token_type"].lower() == "dpop"
    # Without the key the token is worth nothing, even to a client that has it.
    at = out["token"]["access_token"]
    for scheme in ("Bearer", "DPoP"):
        resp = requests.get(
            live.url + "/userinfo", headers={"Authorization": f"{scheme} {at}"}, timeout=10
        )
        assert resp.status_code == 401, scheme
    with live.svc.db.read() as s:
        assert s.scalar(select(RefreshFamily.dpop_jkt)) == jkt


@pytest.mark.parametrize("config_overrides", [{"oauth": {"dpop_nonce": True}}])
def test_fapi_style_client_with_private_key_jwt_par_jar_and_dpop(node, live, auth, resource_server):
    """The FAPI 2.0 baseline through oauth4webapi: private_key_jwt at /par and /token, a
    signed request object pushed (the client requires PAR), DPoP-bound tokens."""
    alice = auth.user()
    key = ClientKey()
    rp = auth.oauth_client(
        "node-fapi",
        redirect_uri=REDIRECT,
        token_endpoint_auth_method="private_key_jwt",
        jwks=key.jwks(),
        require_pushed_authorization_requests=True,
        dpop_bound_access_tokens=True,
    )
    assert rp.secret is None
    scope = "openid profile email offline_access"
    private = json.dumps({**key.key.as_dict(private=True), "kid": key.kid})
    out = login(
        node,
        live,
        rp.client_id,
        None,
        client_auth="private_key_jwt",
        extra=("--par", "--jar", "--dpop", "--scope", scope, "--resource", resource_server),
        client_jwk=private,
    )
    check(live, out, rp.client_id, alice, scope=scope, token_type="dpop")
    assert out["refreshed"]["rotated"] is True
    assert out["browser"][0].startswith("GET /authorize 302")
    # The API (examples/resource_server.py) takes the token with a proof of the key
    # and refuses it without.
    assert out["resource"]["with_key"] == {
        "status": 200,
        "body": {"scope": scope, "sid": out["access_token_claims"]["sid"], "sub": alice.id},
    }
    assert out["resource"]["without_key"]["status"] == 401
    assert out["resource"]["without_key"]["www_authenticate"].startswith("DPoP ")


@pytest.fixture
def resource_server(live: Any, auth: AuthActions) -> Iterator[str]:
    """examples/resource_server.py over HTTP for the node-fapi client's tokens."""
    feed = auth.oauth_client(
        "api", grant_types=["client_credentials"], scope="api", redirect_uri="https://api.test/x"
    )
    verifier = Verifier(
        live.url, audience="node-fapi", client_id="api", client_secret=str(feed.secret)
    )
    server = make_server("127.0.0.1", 0, create_api(verifier))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/me"
    finally:
        server.shutdown()
        thread.join(10)
