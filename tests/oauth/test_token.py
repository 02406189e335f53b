"""The token endpoint: code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5) and client
credentials (§4.4)."""

from __future__ import annotations

import pytest

from tests.conftest import ISSUER
from tests.support.auth import pkce_pair
from tests.support.jwt import verify


@pytest.fixture
def logged_in(auth):
    auth.user()
    auth.login()
    return auth


def bearer(token):
    return {"Authorization": "Bearer " + token}


def test_code_is_single_use_and_a_replay_revokes_what_it_issued(logged_in, client):
    rp = logged_in.oauth_client()
    code, verifier, _ = logged_in.code_for(rp)
    first = logged_in.exchange(rp, code, verifier)
    assert first.status_code == 200
    access = first.get_json()["access_token"]
    assert client.get("/userinfo", headers=bearer(access)).status_code == 200
    replay = logged_in.exchange(rp, code, verifier)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=bearer(access)).status_code == 401


def test_code_expires_after_60_seconds(logged_in, clock):
    rp = logged_in.oauth_client()
    in_time, in_time_verifier, _ = logged_in.code_for(rp)
    late, late_verifier, _ = logged_in.code_for(rp)
    clock.advance(59)
    assert logged_in.exchange(rp, in_time, in_time_verifier).status_code == 200
    clock.advance(2)
    resp = logged_in.exchange(rp, late, late_verifier)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_code_is_bound_to_the_client(logged_in):
    rp = logged_in.oauth_client()
    other = logged_in.oauth_client("other")
    code, verifier, _ = logged_in.code_for(rp)
    resp = logged_in.token(
        other,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert resp.get_json()["error"] == "invalid_grant"
    # ...and trying it burns nothing for the rightful client? It must not: codes are
    # looked up per client, so the real client still redeems it.
    assert logged_in.exchange(rp, code, verifier).status_code == 200


def test_code_is_bound_to_the_redirect_uri(logged_in):
    rp = logged_in.oauth_client()
    code, verifier, _ = logged_in.code_for(rp)
    resp = logged_in.token(
        rp,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://rp.example.test/other",
            "code_verifier": verifier,
        },
    )
    assert resp.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("verifier", "error"),
    [("wrong" * 10, "invalid_grant"), (None, "invalid_request")],
    ids=["wrong", "missing"],
)
def test_pkce_verifier_must_match(logged_in, verifier, error):
    """RFC 7636 §4.6: a verifier that does not match is invalid_grant; none at all, for a
    code issued with a challenge, is a missing parameter (invalid_request)."""
    rp = logged_in.oauth_client()
    code, _, _ = logged_in.code_for(rp)
    resp = logged_in.exchange(rp, code, verifier)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == error


@pytest.mark.parametrize("config_overrides", [{"oauth": {"pkce_required": False}}])
def test_verifier_without_challenge_is_refused(logged_in, config_overrides):
    rp = logged_in.oauth_client()
    code, _, _ = logged_in.code_for(rp, code_challenge=None, code_challenge_method=None)
    resp = logged_in.exchange(rp, code, pkce_pair()[0])
    assert resp.get_json()["error"] == "invalid_request"


def test_public_client_exchanges_with_pkce_and_no_secret(logged_in, client):
    rp = logged_in.oauth_client("spa", public=True)
    code, verifier, _ = logged_in.code_for(rp)
    resp = logged_in.exchange(rp, code, verifier)
    assert resp.status_code == 200
    verify(resp.get_json()["id_token"], client.get("/jwks.json").get_json(), "spa", ISSUER)


def test_client_secret_post_works_and_wrong_secret_is_invalid_client(logged_in):
    rp = logged_in.oauth_client()
    code, verifier, _ = logged_in.code_for(rp)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }
    bad = logged_in.client.post(
        "/token", data={**data, "client_id": rp.client_id, "client_secret": "wrong"}
    )
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_client"
    ok = logged_in.token(rp, data, auth="post")
    assert ok.status_code == 200


def test_client_credentials_issues_short_lived_token_without_refresh(auth, client, svc):
    cc = auth.oauth_client(
        "svc",
        grant_types=["client_credentials"],
        scope="api:read api:write",
        redirect_uri="https://svc.example.test/unused",
    )
    resp = auth.token(cc, {"grant_type": "client_credentials", "scope": "api:read"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    assert body["scope"] == "api:read"
    claims = verify(body["access_token"], client.get("/jwks.json").get_json(), "svc", ISSUER)
    assert claims["sub"] == "svc" and claims["client_id"] == "svc"
    assert claims["exp"] - claims["iat"] == svc.config.tokens.client_credentials_ttl
    assert "sid" not in claims


def test_client_credentials_refuses_unknown_scope(auth):
    cc = auth.oauth_client(
        "svc",
        grant_types=["client_credentials"],
        scope="api:read",
        redirect_uri="https://svc.example.test/unused",
    )
    resp = auth.token(cc, {"grant_type": "client_credentials", "scope": "api:read admin"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_scope"
    resp = auth.token(cc, {"grant_type": "client_credentials", "scope": "openid"})
    assert resp.get_json()["error"] == "invalid_scope"


def test_grant_not_registered_for_client_is_unauthorized_client(logged_in):
    rp = logged_in.oauth_client()
    resp = logged_in.token(rp, {"grant_type": "client_credentials"})
    assert resp.get_json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:x", ""])
def test_unsupported_grants_are_refused(logged_in, grant_type):
    rp = logged_in.oauth_client()
    resp = logged_in.token(rp, {"grant_type": grant_type, "username": "alice", "password": "x"})
    assert resp.status_code == 400
    # an empty grant_type is a missing one (RFC 6749 §5.2)
    error = "invalid_request" if grant_type == "" else "unsupported_grant_type"
    assert resp.get_json()["error"] == error


def test_private_claims_cannot_override_registered_claims(auth):
    from idp.clients.services import ClientError

    with pytest.raises(ClientError):
        auth.oauth_client(claims={"sub": "admin"})


def test_private_claims_can_map_user_attributes(logged_in, svc, client):
    from sqlalchemy import update

    from idp.accounts.models import User

    with svc.db.transaction() as s:
        s.execute(update(User).values(attributes={"department": "research"}))
    rp = logged_in.oauth_client(claims={"dept": "user:department", "plan": "gold"})
    tokens = logged_in.tokens(rp)
    claims = verify(tokens["access_token"], client.get("/jwks.json").get_json(), "rp", ISSUER)
    assert claims["dept"] == "research" and claims["plan"] == "gold"


def test_disabled_user_cannot_redeem_code(logged_in, svc):
    from sqlalchemy import update

    from idp.accounts.models import User

    rp = logged_in.oauth_client()
    code, verifier, _ = logged_in.code_for(rp)
    with svc.db.transaction() as s:
        s.execute(update(User).values(disabled=True))
    assert logged_in.exchange(rp, code, verifier).get_json()["error"] == "invalid_grant"


def test_userinfo_refuses_expired_and_foreign_tokens(logged_in, client, clock):
    rp = logged_in.oauth_client()
    tokens = logged_in.tokens(rp)
    resp = client.get("/userinfo", headers=bearer(tokens["id_token"]))
    assert resp.status_code == 401, "an ID token is not an access token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    clock.advance(301)
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.get("/userinfo").status_code == 401
