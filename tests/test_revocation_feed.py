"""The revocation feed and the offline verifier: a kill reaches resource servers that
verify JWTs offline (SPEC §6 "Revocation feed")."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import requests
from sqlalchemy import select

from examples.resource_server import create_api
from idp.operator import Actor
from idp.ssf.models import SsfStream
from idp_verifier import InvalidToken, SystemClock, Verifier
from tests.support.browserless import code_flow
from tests.support.dpop import DPoPKey
from tests.support.jwt import verify as pyjwt_verify

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(auth, live):
    auth.user()
    rp = auth.oauth_client(
        "shop", scope="openid offline_access", redirect_uri="http://127.0.0.1/cb"
    )
    api = auth.oauth_client(
        "shop-api",
        grant_types=["client_credentials"],
        scope="orders",
        redirect_uri="https://api.example.test/x",
    )
    tokens = code_flow(live.url, "shop", rp.secret, "http://127.0.0.1/cb")
    jwks = requests.get(live.url + "/jwks.json", timeout=5).json()
    sid = pyjwt_verify(tokens["access_token"], jwks, "shop", live.url)["sid"]
    return live, api, tokens, sid


def test_feed_requires_client_authentication(setup):
    live, *_ = setup
    assert requests.get(live.url + "/revocations", timeout=5).status_code == 401
    bad = requests.get(live.url + "/revocations", auth=("shop-api", "wrong"), timeout=5)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def test_feed_lists_a_killed_session_with_a_cursor(setup):
    live, api, _, sid = setup
    first = requests.get(
        live.url + "/revocations", auth=(api.client_id, api.secret), timeout=5
    ).json()
    live.svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
    after = requests.get(
        live.url + "/revocations",
        params={"after": first["cursor"]},
        auth=(api.client_id, api.secret),
        timeout=5,
    ).json()
    [entry] = after["revocations"]
    assert entry["type"] == "sid" and entry["value"] == sid and entry["exp"] > 0
    again = requests.get(
        live.url + "/revocations",
        params={"after": after["cursor"]},
        auth=(api.client_id, api.secret),
        timeout=5,
    ).json()
    assert again["revocations"] == [] and again["cursor"] == after["cursor"]


@pytest.mark.parametrize(
    "params",
    [
        {"after": "x"},
        {"wait": "99"},
        {"after": "-1"},
        {"after": str(2**63)},  # past any database integer (was a 500 on SQLite)
        {"after": "9" * 400},
        {"wait": "nan"},
    ],
)
def test_feed_refuses_bad_parameters(setup, params):
    live, api, *_ = setup
    resp = requests.get(
        live.url + "/revocations", params=params, auth=(api.client_id, api.secret), timeout=5
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_long_poll_returns_when_a_revocation_arrives(setup):
    live, api, _, sid = setup
    cursor = requests.get(
        live.url + "/revocations", auth=(api.client_id, api.secret), timeout=5
    ).json()["cursor"]
    got: dict = {}

    def wait_for_entry() -> None:
        got["resp"] = requests.get(
            live.url + "/revocations",
            params={"after": cursor, "wait": 20},
            auth=(api.client_id, api.secret),
            timeout=30,
        ).json()

    waiter = threading.Thread(target=wait_for_entry)
    waiter.start()
    live.svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
    waiter.join(30)
    assert [e["value"] for e in got["resp"]["revocations"]] == [sid]


def test_offline_verifier_honours_the_feed(setup):
    live, api, tokens, sid = setup
    verifier = Verifier(
        live.url, audience="shop", client_id=api.client_id, client_secret=api.secret
    )
    verifier.poll()
    claims = verifier.verify(tokens["access_token"])
    assert claims["sid"] == sid
    with pytest.raises(InvalidToken, match="audience"):
        Verifier(
            live.url, audience="other", client_id=api.client_id, client_secret=api.secret
        ).verify(tokens["access_token"])
    with pytest.raises(InvalidToken, match="typ"):
        verifier.verify(tokens["id_token"])
    live.svc.killer.kill_session(sid, actor="test", action="session.kill", reason="stolen")
    assert verifier.poll() == 1
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(tokens["access_token"])


def test_offline_verifier_honours_revoking_all_tokens_of_a_client(setup):
    """Issue 10 item 2: "revoke all tokens of a client" reaches the feed, so resource
    servers refuse what introspection already calls inactive."""
    live, api, tokens, _ = setup
    verifier = Verifier(
        live.url, audience="shop", client_id=api.client_id, client_secret=api.secret
    )
    verifier.poll()
    assert verifier.verify(tokens["access_token"])
    assert live.svc.actions.revoke_client("shop", Actor("test"), "leaked") == 1
    entries = verifier_entries(live, api)
    [client_entry] = [e for e in entries if e["type"] == "client"]
    assert client_entry["value"] == "shop" and client_entry["issued_before"] > 0
    verifier.poll()
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(tokens["access_token"])


def test_offline_verifier_honours_revoking_all_tokens_of_a_user(setup):
    live, api, tokens, _ = setup
    verifier = Verifier(
        live.url, audience="shop", client_id=api.client_id, client_secret=api.secret
    )
    verifier.poll()
    claims = verifier.verify(tokens["access_token"])
    live.svc.actions.revoke_user(claims["sub"], Actor("test"), "phished")
    verifier.poll()
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(tokens["access_token"])
    [user_entry] = [e for e in verifier_entries(live, api) if e["type"] == "user"]
    assert user_entry["value"] == claims["sub"]


def verifier_entries(live, api):
    resp = requests.get(
        f"{live.url}/revocations?after=0", auth=(api.client_id, api.secret), timeout=5
    )
    assert resp.status_code == 200
    return resp.json()["revocations"]


def test_example_resource_server_rejects_a_killed_session(setup):
    live, api, tokens, sid = setup
    verifier = Verifier(
        live.url, audience="shop", client_id=api.client_id, client_secret=api.secret
    )
    verifier.poll()
    client = create_api(verifier).test_client()
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert client.get("/api/me", headers=bearer).get_json()["sid"] == sid
    live.svc.killer.kill_session(sid, actor="test", action="session.kill", reason="stolen")
    verifier.poll()
    resp = client.get("/api/me", headers=bearer)
    assert resp.status_code == 401 and resp.get_json()["error_description"] == "revoked"


def test_the_verifier_fails_closed_when_the_feed_is_stale(setup):
    """Issue 10 item 10: following the feed, a verifier that has not heard from idp for
    max_feed_age seconds refuses every token (a revocation may have been missed)."""
    live, api, tokens, _ = setup
    clock = AheadClock()
    verifier = Verifier(
        live.url,
        audience="shop",
        client_id=api.client_id,
        client_secret=api.secret,
        clock=clock,
    )
    verifier.start(wait=1)
    try:
        assert verifier.verify(tokens["access_token"])
        clock.ahead = verifier.max_feed_age + 1  # as if idp went unreachable meanwhile
        with pytest.raises(InvalidToken, match="feed unavailable"):
            verifier.verify(tokens["access_token"])
        verifier.poll()  # idp answers again
        assert verifier.verify(tokens["access_token"])
    finally:
        verifier.stop()


class AheadClock(SystemClock):
    """The system's clock, with the feed's clock moved on by ``ahead`` seconds."""

    ahead = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.ahead


def test_forged_kids_cannot_make_the_verifier_hammer_the_jwks(setup):
    live, api, tokens, _ = setup
    verifier = Verifier(
        live.url, audience="shop", client_id=api.client_id, client_secret=api.secret
    )
    fetched: list[str] = []
    real_get = verifier._get

    def counting_get(url, *args, **kwargs):
        fetched.append(url)
        return real_get(url, *args, **kwargs)

    verifier._get = counting_get  # type: ignore[method-assign]
    verifier.verify(tokens["access_token"])
    header, payload, signature = tokens["access_token"].split(".")
    for i in range(20):
        forged_header = (
            base64.urlsafe_b64encode(
                json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": f"forged-{i}"}).encode()
            )
            .rstrip(b"=")
            .decode()
        )
        with pytest.raises(InvalidToken):
            verifier.verify(f"{forged_header}.{payload}.{signature}")
    jwks_fetches = [u for u in fetched if u.endswith("/jwks.json")]
    assert len(jwks_fetches) <= 2  # the first load, then at most one refetch a minute


def test_example_resource_server_needs_the_key_of_a_dpop_bound_token(setup):
    """RFC 9449 §7 at a resource server (idp.verifier): a bound token works only with the
    DPoP scheme and a fresh proof of its key for this request."""
    live, api, _, _ = setup
    key = DPoPKey()
    issued = requests.post(
        live.url + "/token",
        data={"grant_type": "client_credentials", "scope": "orders"},
        auth=(api.client_id, api.secret),
        headers={"DPoP": key.proof("POST", live.url + "/token", time.time())},
        timeout=5,
    ).json()
    assert issued["token_type"] == "DPoP"
    at = issued["access_token"]
    verifier = Verifier(
        live.url, audience="shop-api", client_id=api.client_id, client_secret=api.secret
    )
    client = create_api(verifier).test_client()
    url = "http://localhost/api/me"

    def me(scheme, proof=None):
        headers = {"Authorization": f"{scheme} {at}"}
        if proof:
            headers["DPoP"] = proof
        return client.get("/api/me", headers=headers)

    proof = key.proof("GET", url, time.time(), access_token=at)
    assert me("DPoP", proof).status_code == 200
    replay = me("DPoP", proof)
    assert replay.status_code == 401 and replay.get_json()["error"] == "invalid_dpop_proof"
    stolen = me("Bearer")
    assert stolen.status_code == 401 and stolen.headers["WWW-Authenticate"].startswith("DPoP")
    assert me("DPoP").status_code == 401
    thief = DPoPKey().proof("GET", url, time.time(), access_token=at)
    assert me("DPoP", thief).get_json()["error"] == "invalid_dpop_proof"
    elsewhere = key.proof("GET", "http://localhost/api/other", time.time(), access_token=at)
    assert me("DPoP", elsewhere).status_code == 401


@pytest.mark.parametrize("config_overrides", [{"ssf": {"poll_wait_seconds": 2}}])
def test_a_verifier_following_shared_signals_refuses_a_killed_session(auth, live):
    """idp.verifier as an SSF receiver: it makes its own poll stream, and a kill reaches
    it as a CAEP session-revoked (issue 12 item 4)."""
    auth.user()
    rp = auth.oauth_client(
        "shop", scope="openid offline_access", redirect_uri="http://127.0.0.1/cb"
    )
    rx = auth.oauth_client(
        "shop-rx", grant_types=["client_credentials"], scope="ssf", redirect_uri="https://rx.test/x"
    )
    tokens = code_flow(live.url, "shop", rp.secret, "http://127.0.0.1/cb")
    verifier = Verifier(
        live.url, audience="shop", client_id="shop-rx", client_secret=rx.secret, signals=True
    )
    verifier.start(wait=5)
    try:
        claims = verifier.verify(tokens["access_token"])
        live.svc.actions.kill_session(claims["sid"], Actor("root"), "stolen")
        deadline = time.monotonic() + 20
        while True:
            try:
                verifier.verify(tokens["access_token"])
            except InvalidToken as exc:
                assert str(exc) == "revoked"
                break
            assert time.monotonic() < deadline, "the kill never reached the verifier"
            time.sleep(0.05)
    finally:
        verifier.stop()
        assert verifier._thread is not None
        verifier._thread.join(10)  # its poll ends within poll_wait_seconds


def test_a_verifier_following_shared_signals_fails_closed_while_its_stream_is_paused(auth, live):
    """An operator pauses the verifier's stream: kills are held there, so the verifier
    refuses every token from the stream-updated event on, until the stream is enabled
    again (SSF 1.0 §8.1.5, issue 12 items 2 and 4)."""
    auth.user()
    rp = auth.oauth_client(
        "shop", scope="openid offline_access", redirect_uri="http://127.0.0.1/cb"
    )
    rx = auth.oauth_client(
        "shop-rx", grant_types=["client_credentials"], scope="ssf", redirect_uri="https://rx.test/x"
    )
    tokens = code_flow(live.url, "shop", rp.secret, "http://127.0.0.1/cb")
    verifier = Verifier(
        live.url, audience="shop", client_id="shop-rx", client_secret=rx.secret, signals=True
    )
    verifier.poll()
    assert verifier.verify(tokens["access_token"])
    with live.svc.db.read() as s:
        [stream_id] = s.scalars(select(SsfStream.id)).all()
    live.svc.actions.set_stream_status(stream_id, "paused", Actor("root"), "maintenance")
    verifier.poll()
    with pytest.raises(InvalidToken, match="stream is paused"):
        verifier.verify(tokens["access_token"])
    live.svc.actions.set_stream_status(stream_id, "enabled", Actor("root"), "done")
    verifier.poll()
    assert verifier.verify(tokens["access_token"])


def test_a_verifier_accepts_a_pushed_security_event_token(auth, live):
    """idp.verifier as an SSF push receiver (RFC 8935): ``accept_set`` verifies the SET
    as a poll's are and applies it at once; anything else is refused (answer 400) and
    changes nothing."""
    from idp.ssf.delivery import sign
    from idp.ssf.events import SESSION_REVOKED, session_subject

    auth.user()
    rp = auth.oauth_client(
        "shop", scope="openid offline_access", redirect_uri="http://127.0.0.1/cb"
    )
    tokens = code_flow(live.url, "shop", rp.secret, "http://127.0.0.1/cb")
    verifier = Verifier(
        live.url, audience="shop", client_id="shop-rx", client_secret="unused", signals=True
    )
    claims = verifier.verify(tokens["access_token"])

    def event(**changes):
        body = {
            "iss": live.url,
            "aud": "shop-rx",
            "iat": int(time.time()),
            "jti": "j1",
            "sub_id": session_subject(live.url, claims["sid"], claims["sub"]),
            "events": {SESSION_REVOKED: {"event_timestamp": int(time.time())}},
        }
        return sign(live.svc.oauth.issuer, {**body, **changes})

    for bad, error in (
        ("", "invalid_request"),
        ("not a jwt", "invalid_key"),
        ("x" * 20000, "invalid_request"),
        (event(aud="another-rx"), "invalid_audience"),
        (event(iss="https://elsewhere.test"), "invalid_issuer"),
        (tokens["access_token"], "invalid_request"),  # a JWT from idp, but not a SET
        (event()[:-4] + "AAAA", "invalid_key"),  # the signature broken
    ):
        with pytest.raises(InvalidToken) as refused:
            verifier.accept_set(bad)
        assert refused.value.error == error
        assert verifier.verify(tokens["access_token"])["sid"] == claims["sid"]
    got = verifier.accept_set(event())
    assert got["jti"] == "j1"
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(tokens["access_token"])
