"""The examples a newcomer runs first: examples/curl_flow.sh and the demo relying app's
back-channel logout endpoint (OIDC Back-Channel Logout 1.0), against a live idp."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from examples.relying_app import (
    LOGOUT_EVENT,
    SESSION_REVOKED,
    Login,
    LoginStore,
    LogoutTokenError,
    create_rp,
    validate_logout_token,
)
from idp.clients.models import Client
from idp.clock import SystemClock
from idp.operator import Actor
from tests.support.auth import PASSWORD, AuthActions
from tests.support.live import LiveServer

# Each test runs a process (the idp command, curl) or a live server.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CURL_FLOW = ROOT / "examples" / "curl_flow.sh"
ISSUER = "https://idp.example.test"
CLIENT_ID = "demo-app"
NOW = 1_800_000_000


# --- examples/curl_flow.sh --------------------------------------------------------------


def run_curl_flow(script: Path, cwd: Path, live: LiveServer, **env: str) -> str:
    result = subprocess.run(
        ["bash", str(script)],
        cwd=cwd,
        env={
            **os.environ,
            "IDP": live.url,
            "REDIRECT_URI": "https://rp.example.test/callback",
            "USERNAME": "alice",
            "PASSWORD": PASSWORD,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def assert_replay_killed_the_chain(out: str) -> None:
    assert "Refresh token reuse detected" in out
    assert 'introspect rt3:     {"active": false}' in out
    assert 'introspect access3: {"active": false}' in out
    assert "Refresh token has been revoked." in out


@pytest.fixture
def creds(auth: AuthActions) -> dict[str, str]:
    auth.user("alice")
    rp = auth.oauth_client(CLIENT_ID, scope="openid profile email offline_access")
    assert rp.secret
    return {"client_id": rp.client_id, "client_secret": rp.secret}


# The script speaks HTTP only: one storage backend is enough (each run takes seconds).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@sqlite_only
def test_curl_flow_finds_the_demo_client_from_any_directory(
    live: LiveServer, creds: dict[str, str], tmp_path: Path
) -> None:
    # A copy of the repo's layout, so that the test never touches the real instance/.
    repo = tmp_path / "repo"
    (repo / "examples").mkdir(parents=True)
    (repo / "instance").mkdir()
    shutil.copy(CURL_FLOW, repo / "examples" / "curl_flow.sh")
    (repo / "instance" / "demo_client.json").write_text(json.dumps(creds))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    out = run_curl_flow(repo / "examples" / "curl_flow.sh", elsewhere, live)

    assert_replay_killed_the_chain(out)


@sqlite_only
def test_curl_flow_reads_the_client_named_by_creds(
    live: LiveServer, creds: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "mine.json").write_text(json.dumps(creds))

    out = run_curl_flow(CURL_FLOW, tmp_path, live, CREDS="mine.json")

    assert_replay_killed_the_chain(out)


# --- validate_logout_token: OIDC Back-Channel Logout 1.0 §2.6, one check at a time -----

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})


def logout_token(header: dict[str, Any] | None = None, key: RSAKey = KEY, **claims: Any) -> str:
    body = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "j1",
        "sid": "s1",
        "sub": "u1",
        "events": {LOGOUT_EVENT: {}},
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "RS256", "typ": "logout+jwt", **(header or {})}, body, key)


def check(value: str, now: float = NOW) -> dict[str, Any]:
    keys = KeySet([KEY])
    return validate_logout_token(
        value,
        decode=lambda v: jwt.decode(v, keys, algorithms=["RS256"]),
        issuer=ISSUER,
        client_id=CLIENT_ID,
        now=lambda: now,
    )


def test_a_valid_logout_token_passes() -> None:
    assert check(logout_token())["sid"] == "s1"
    assert check(logout_token(sid=None))["sub"] == "u1"  # sub alone names the user
    assert check(logout_token(sub=None))["sid"] == "s1"
    assert check(logout_token(aud=["other", CLIENT_ID]))["sid"] == "s1"
    assert check(logout_token(header={"typ": "application/logout+jwt"}))["sid"] == "s1"
    assert check(logout_token(), now=NOW + 100)["sid"] == "s1"  # within exp


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "signed by another key": lambda: logout_token(key=OTHER_KEY),
    "not a JWT": lambda: "not.a.jwt",
    "alg none": lambda: "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
    "typ of an ID token": lambda: logout_token(header={"typ": "JWT"}),
    "another issuer": lambda: logout_token(iss="https://evil.example.test"),
    "another audience": lambda: logout_token(aud="shop"),
    "no iat": lambda: logout_token(iat=None),
    "no exp": lambda: logout_token(exp=None),
    "expired": lambda: logout_token(iat=NOW - 900, exp=NOW - 600),
    "issued in the future": lambda: logout_token(iat=NOW + 600, exp=NOW + 900),
    "neither sub nor sid": lambda: logout_token(sub=None, sid=None),
    "sid not a string": lambda: logout_token(sid=42),
    "no events": lambda: logout_token(events=None),
    "another event": lambda: logout_token(events={"https://example.test/other": {}}),
    "event not an object": lambda: logout_token(events={LOGOUT_EVENT: "yes"}),
    "a nonce": lambda: logout_token(nonce="n1"),
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_bad_logout_token_is_refused(token: Callable[[], str]) -> None:
    with pytest.raises(LogoutTokenError):
        check(token())


def test_sessions_are_ended_by_sid_or_by_sub() -> None:
    store = LoginStore()

    def login(sub: str, sid: str) -> str:
        return store.add(Login(sub, sid, {}, "id", "at", "rt", expires_at=0))

    a1, a2, b = login("alice", "s1"), login("alice", "s2"), login("bob", "s3")
    assert store.end_matching(sid="s1", sub="bob", why="x") == 0, "sid and sub must agree"
    assert store.end_matching(sid="s1", sub=None, why="killed") == 1
    assert store.get(a1) is None and store.why_ended(a1) == "killed"
    assert store.why_ended(a1) is None, "the note is shown once"
    assert store.end_matching(sid=None, sub="alice", why="all of alice") == 1
    assert store.get(a2) is None and store.get(b) is not None
    assert store.end_matching(sid=None, sub=None, why="nothing named") == 0
    assert store.get(b) is not None


# --- the relying app's /backchannel-logout against a live idp --------------------------


@pytest.fixture
def relying_app(live: LiveServer, auth: AuthActions) -> Flask:
    rp = auth.oauth_client(
        CLIENT_ID, backchannel_logout_uri="http://127.0.0.1:5001/backchannel-logout"
    )
    assert rp.secret
    return create_rp(live.url, rp.client_id, rp.secret, port=5001)


def signed_in(app: Flask, sub: str, sid: str) -> str:
    login = Login(sub, sid, {"sub": sub}, "id", "at", "rt", expires_at=time.time() + 300)
    return str(app.extensions["logins"].add(login))


def idp_logout_token(live: LiveServer, sid: str, sub: str) -> str:
    with live.svc.db.read() as s:
        client = s.get(Client, CLIENT_ID)
    return str(live.svc.notifier.logout_token(client, sid, sub))


def test_backchannel_logout_ends_the_sessions_of_that_sid(
    live: LiveServer, relying_app: Flask
) -> None:
    store = relying_app.extensions["logins"]
    phone, laptop = signed_in(relying_app, "u1", "s1"), signed_in(relying_app, "u1", "s2")

    resp = relying_app.test_client().post(
        "/backchannel-logout", data={"logout_token": idp_logout_token(live, "s1", "u1")}
    )

    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    assert store.get(phone) is None
    assert store.get(laptop) is not None, "another login of the same user stays"


@pytest.mark.parametrize(
    ("form", "why"),
    [
        ({}, "no logout_token"),
        ({"logout_token": "garbage"}, "signature"),
        ({"logout_token": logout_token()}, "signature"),  # a key idp never published
    ],
    ids=["missing", "garbage", "foreign key"],
)
def test_backchannel_logout_answers_400_to_a_bad_token(
    relying_app: Flask, form: dict[str, str], why: str
) -> None:
    key = signed_in(relying_app, "u1", "s1")

    resp = relying_app.test_client().post("/backchannel-logout", data=form)

    assert resp.status_code == 400
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["error"] == "invalid_request" and why in body["error_description"]
    assert relying_app.extensions["logins"].get(key) is not None


def test_backchannel_logout_refuses_a_token_for_another_client(
    live: LiveServer, auth: AuthActions, relying_app: Flask
) -> None:
    auth.oauth_client("shop")
    with live.svc.db.read() as s:
        shop = s.get(Client, "shop")
    key = signed_in(relying_app, "u1", "s1")

    resp = relying_app.test_client().post(
        "/backchannel-logout",
        data={"logout_token": live.svc.notifier.logout_token(shop, "s1", "u1")},
    )

    assert resp.status_code == 400
    assert "aud" in resp.get_json()["error_description"]
    assert relying_app.extensions["logins"].get(key) is not None


# --- examples/dpop_proof.py ------------------------------------------------------------


def run_example(module: str, key: Path, *args: str) -> str:
    """What ``python -m examples.MODULE --key KEY ARGS`` prints, as the README runs it."""
    done = subprocess.run(
        [sys.executable, "-m", f"examples.{module}", "--key", str(key), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_dpop_proof_prints_proofs_idp_accepts(tmp_path: Path, svc: Any) -> None:
    """The README's DPoP walk-through signs its proofs with this script."""

    def run(*args: str) -> str:
        return run_example("dpop_proof", tmp_path / "k.jwk", *args)

    url = svc.config.server.issuer + "/token"
    proof = run("POST", url)
    assert (tmp_path / "k.jwk").stat().st_mode & 0o777 == 0o600
    jkt = run("--thumbprint")
    svc.dpop.clock = SystemClock()  # the script signs with the real time
    assert svc.dpop.verify(proof, "POST", url).jkt == jkt
    with_token = run("GET", url + "?q=1", "--token", "an access token")
    assert svc.dpop.verify(with_token, "GET", url, access_token="an access token").jkt == jkt


# --- examples/client_jwt.py ------------------------------------------------------------


def test_client_jwt_signs_what_idp_accepts(tmp_path: Path, auth: AuthActions) -> None:
    """The README's private_key_jwt / PAR / JAR walk-through signs with this script."""

    def run(*args: str) -> str:
        return run_example("client_jwt", tmp_path / "c.jwk", *args)

    auth.user()
    rp = auth.oauth_client(
        "fapi-app",
        token_endpoint_auth_method="private_key_jwt",
        jwks=json.loads(run("jwks")),
        grant_types=["authorization_code", "client_credentials"],
        scope="openid api",
    )
    issuer = auth.svc.config.server.issuer
    assertion = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": run("assertion", "fapi-app", issuer),
    }
    got = auth.client.post("/token", data={"grant_type": "client_credentials", **assertion})
    assert got.status_code == 200, got.get_json()
    request = run(
        "request",
        "fapi-app",
        issuer,
        "response_type=code",
        f"redirect_uri={rp.redirect_uri}",
        "scope=openid",
        "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method=S256",
    )
    assertion["client_assertion"] = run("assertion", "fapi-app", issuer)
    pushed = auth.client.post(
        "/par", data={"client_id": "fapi-app", "request": request, **assertion}
    )
    assert pushed.status_code == 201, pushed.get_json()


# --- the relying app as a Shared Signals push receiver ------------------------------------


def test_a_kill_pushed_as_shared_signals_signs_the_relying_app_out(
    live: LiveServer, auth: AuthActions
) -> None:
    """Issue 12 item 4: idp pushes CAEP session-revoked to the demo app (as `make run`
    sets it up with idp.demo.seed_signals), which drops that login at once; a push
    without the stream's secret, or not a SET, is refused."""
    from werkzeug.serving import make_server

    from idp.ssf import streams
    from tests.support.browserless import code_flow

    auth.user()
    rp = auth.oauth_client(
        CLIENT_ID, scope="openid offline_access", redirect_uri="http://127.0.0.1/cb"
    )
    app = create_rp(live.url, CLIENT_ID, str(rp.secret), port=5001, signals_secret="s3cret")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/ssf/events"
        delivery = {
            "method": streams.PUSH,
            "endpoint_url": url,
            "authorization_header": "Bearer s3cret",
        }
        body = {"delivery": delivery, "events_requested": [SESSION_REVOKED]}
        svc = live.svc
        with svc.db.transaction() as s:
            streams.create(s, svc.clock.now(), CLIENT_ID, body, svc.pusher.outbound)
        tokens = code_flow(live.url, CLIENT_ID, str(rp.secret), "http://127.0.0.1/cb")
        sid = svc.access_tokens.decode(tokens["access_token"])["sid"]
        key = signed_in(app, "u1", sid)
        svc.actions.kill_session(sid, Actor("root"), "stolen phone")
        deadline = time.monotonic() + 10
        while app.extensions["logins"].get(key) is not None:
            assert time.monotonic() < deadline, "the push never signed the app out"
            time.sleep(0.05)
        assert "Shared Signals" in str(app.extensions["logins"].why_ended(key))
        client = app.test_client()
        headers = {"Content-Type": "application/secevent+jwt"}
        assert client.post("/ssf/events", data="x", headers=headers).status_code == 401
        wrong = client.post(
            "/ssf/events", data="not.a.set", headers={**headers, "Authorization": "Bearer s3cret"}
        )
        assert wrong.status_code == 400 and wrong.get_json()["err"] == "invalid_key"
    finally:
        server.shutdown()
        thread.join(10)
