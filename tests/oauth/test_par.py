"""Pushed authorization requests (RFC 9126): pushed, checked, used through the browser by
their request_uri alone, once; required per client or server-wide."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from idp.oauth.par import PREFIX
from tests.conftest import ISSUER
from tests.support.auth import AuthActions, RegisteredClient, csrf_from, pkce_pair, query_of
from tests.support.dpop import DPoPKey


def push(auth: AuthActions, rp: RegisteredClient, headers: Any = None, **params: Any) -> Any:
    verifier, challenge = pkce_pair()
    data = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid profile",
        "state": "pushed-state",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    data = {k: v for k, v in data.items() if v is not None}
    auth.verifier = verifier
    all_headers = dict(headers or {})
    if rp.secret is not None and "Authorization" not in all_headers:
        all_headers.update(rp.basic())
    return auth.client.post("/par", data=data, headers=all_headers)


def browse(auth: AuthActions, rp: RegisteredClient, request_uri: str, **extra: str) -> Any:
    query = {"client_id": rp.client_id, "request_uri": request_uri, **extra}
    return auth.client.get("/authorize?" + urlencode(query))


@pytest.fixture
def rp(auth: AuthActions) -> RegisteredClient:
    auth.user()
    return auth.oauth_client()


def test_a_pushed_request_is_used_by_its_request_uri(auth: AuthActions, rp: Any) -> None:
    pushed = push(auth, rp)
    assert pushed.status_code == 201, pushed.get_json()
    assert pushed.headers["Cache-Control"] == "no-store"
    body = pushed.get_json()
    assert body["request_uri"].startswith(PREFIX) and body["expires_in"] == 90
    # Not logged in: the login page comes back to the request_uri, not to its parameters.
    first = browse(auth, rp, body["request_uri"])
    assert first.status_code == 302 and first.headers["Location"].startswith("/login?")
    next_url = query_of(first.headers["Location"])["next"]
    assert set(parse_qs(urlsplit(next_url).query)) == {"client_id", "request_uri"}
    auth.login(next=next_url)
    answer = auth.client.get(next_url)
    q = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(rp.redirect_uri)
    assert q["state"] == "pushed-state" and q["iss"] == ISSUER
    tokens = auth.exchange(rp, q["code"], auth.verifier)
    assert tokens.status_code == 200, tokens.get_json()
    # Used: the same request_uri again is refused, on a page (no redirect).
    again = browse(auth, rp, body["request_uri"])
    assert again.status_code == 400 and "invalid_request_uri" in again.get_data(as_text=True)


def test_parameters_in_the_browser_do_not_override_the_pushed_ones(
    auth: AuthActions, rp: Any
) -> None:
    auth.login()
    uri = push(auth, rp).get_json()["request_uri"]
    answer = browse(auth, rp, uri, state="from-the-browser", redirect_uri="https://evil.example/")
    assert answer.headers["Location"].startswith(rp.redirect_uri)
    assert query_of(answer.headers["Location"])["state"] == "pushed-state"


@pytest.mark.parametrize("case", ["expired", "another client", "unknown"])
def test_a_request_uri_that_is_not_good_is_an_error_page(
    auth: AuthActions, rp: Any, clock: Any, case: str
) -> None:
    auth.login()
    other = auth.oauth_client("other")
    uri = push(auth, rp).get_json()["request_uri"]
    if case == "expired":
        clock.advance(91)
        resp = browse(auth, rp, uri)
    elif case == "another client":
        resp = browse(auth, other, uri)
    else:
        resp = browse(auth, rp, PREFIX + "not-one-we-gave")
    assert resp.status_code == 400 and "invalid_request_uri" in resp.get_data(as_text=True)


def test_a_request_uri_not_from_par_is_not_supported(auth: AuthActions, rp: Any) -> None:
    auth.login()
    resp = auth.authorize(rp, request_uri="https://rp.example.test/request.jwt")
    assert query_of(resp.headers["Location"])["error"] == "request_uri_not_supported"


def test_a_started_request_lives_through_a_slow_login(
    auth: AuthActions, rp: Any, clock: Any
) -> None:
    uri = push(auth, rp).get_json()["request_uri"]
    first = browse(auth, rp, uri)
    next_url = query_of(first.headers["Location"])["next"]
    clock.advance(300)  # five minutes to remember the password
    auth.login(next=next_url)
    assert "code" in query_of(auth.client.get(next_url).headers["Location"])


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"redirect_uri": "https://evil.example/cb"}, 400, "invalid_request"),
        ({"response_type": "token"}, 400, "unsupported_response_type"),
        ({"request_uri": PREFIX + "x"}, 400, "invalid_request"),
        ({"client_id": "other"}, 400, "invalid_request"),
        ({"code_challenge_method": "plain"}, 400, "invalid_request"),
    ],
)
def test_a_bad_push_is_refused_and_nothing_is_kept(
    auth: AuthActions, rp: Any, svc: Any, change: dict[str, str], status: int, error: str
) -> None:
    auth.oauth_client("other")
    resp = push(auth, rp, **change)
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["error"] == error
    assert pushed_count(svc) == 0


def pushed_count(svc: Any) -> int:
    from sqlalchemy import func, select

    from idp.oauth.models import PushedRequest

    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(PushedRequest)) or 0)


def test_a_push_needs_client_authentication(auth: AuthActions, rp: Any, svc: Any) -> None:
    wrong = RegisteredClient(rp.client_id, "wrong", rp.redirect_uri)
    resp = push(auth, wrong)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    anonymous = push(auth, RegisteredClient(rp.client_id, None, rp.redirect_uri))
    assert anonymous.get_json()["error"] == "invalid_client"
    repeated = auth.client.post(
        "/par", data=MultiDict([("state", "a"), ("state", "b")]), headers=rp.basic()
    )
    assert repeated.status_code == 400
    assert pushed_count(svc) == 0


def test_a_public_client_pushes_with_its_client_id(auth: AuthActions) -> None:
    auth.user()
    auth.login()
    spa = auth.oauth_client("spa", public=True)
    uri = push(auth, spa).get_json()["request_uri"]
    q = query_of(browse(auth, spa, uri).headers["Location"])
    assert auth.exchange(spa, q["code"], auth.verifier).status_code == 200
    no_pkce = push(auth, spa, code_challenge=None, code_challenge_method=None)
    assert no_pkce.status_code == 400


def _front_channel_refused_par_accepted(auth: AuthActions, rp: RegisteredClient) -> None:
    front = auth.authorize(rp)
    assert query_of(front.headers["Location"])["error"] == "invalid_request"
    uri = push(auth, rp).get_json()["request_uri"]
    assert "code" in query_of(browse(auth, rp, uri).headers["Location"])


def test_par_can_be_required_of_a_client(auth: AuthActions) -> None:
    auth.user()
    auth.login()
    rp = auth.oauth_client(require_pushed_authorization_requests=True)
    _front_channel_refused_par_accepted(auth, rp)
    other = auth.oauth_client("other")
    assert "code" in query_of(auth.authorize(other).headers["Location"])


@pytest.mark.parametrize(
    "config_overrides", [{"oauth": {"require_pushed_authorization_requests": True}}]
)
def test_par_can_be_required_of_every_client(auth: AuthActions, client: Any) -> None:
    auth.user()
    auth.login()
    _front_channel_refused_par_accepted(auth, auth.oauth_client())
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["require_pushed_authorization_requests"] is True


def test_a_dpop_proof_at_par_binds_the_code(auth: AuthActions, rp: Any, svc: Any) -> None:
    auth.login()
    key = DPoPKey()
    proof = key.proof("POST", ISSUER + "/par", svc.clock.now().timestamp())
    uri = push(auth, rp, headers={"DPoP": proof, **rp.basic()}).get_json()["request_uri"]
    code = query_of(browse(auth, rp, uri).headers["Location"])["code"]
    refused = auth.exchange(rp, code, auth.verifier)
    assert refused.get_json()["error"] == "invalid_grant"


def test_consent_for_a_pushed_request_posts_back_to_its_request_uri(auth: AuthActions) -> None:
    auth.user()
    auth.login()
    third = auth.oauth_client("third", first_party=False)
    uri = push(auth, third).get_json()["request_uri"]
    page = browse(auth, third, uri)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "code_challenge" not in html and "request_uri" in html
    action = html.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    resp = auth.client.post(action, data={"decision": "allow", "csrf_token": csrf_from(html)})
    q = query_of(resp.headers["Location"])
    assert q["state"] == "pushed-state" and "code" in q


def test_discovery_names_the_par_endpoint(client: Any) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["pushed_authorization_request_endpoint"] == ISSUER + "/par"
    assert meta["require_pushed_authorization_requests"] is False
