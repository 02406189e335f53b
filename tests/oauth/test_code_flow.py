"""The authorization code flow end to end (RFC 6749 §4.1, OIDC Core §3.1)."""

from __future__ import annotations

import base64
import hashlib

from tests.conftest import ISSUER
from tests.support.auth import query_of
from tests.support.jwt import header, verify


def jwks(client):
    return client.get("/jwks.json").get_json()


def test_login_then_authorize_returns_code_with_state_and_iss(auth):
    auth.user()
    rp = auth.oauth_client()
    auth.login()
    params = auth.authorize_params(rp)
    resp = auth.client.get("/authorize", query_string=params)
    assert resp.status_code == 302
    q = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(rp.redirect_uri + "?")
    assert q["state"] == params["state"]
    assert q["iss"] == ISSUER
    assert len(q["code"]) >= 40


def test_code_exchange_returns_rfc9068_access_token_and_id_token(auth, client):
    alice = auth.user(name="Alice Liddell")
    rp = auth.oauth_client(claims={"tenant": "acme"})
    auth.login()
    code, verifier, params = auth.code_for(rp)
    resp = auth.exchange(rp, code, verifier)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    keys = jwks(client)

    at_header = header(body["access_token"])
    assert at_header["typ"] == "at+jwt" and at_header["alg"] == "ES256"
    assert at_header["kid"] in {k["kid"] for k in keys["keys"]}
    at = verify(body["access_token"], keys, audience=rp.client_id, issuer=ISSUER)
    assert at["sub"] == alice.id
    assert at["client_id"] == rp.client_id
    assert at["scope"] == "openid profile email"
    assert at["sid"] and at["jti"]
    assert at["exp"] - at["iat"] == 300
    assert at["tenant"] == "acme"

    id_header = header(body["id_token"])
    assert id_header["alg"] == "RS256"
    idt = verify(body["id_token"], keys, audience=rp.client_id, issuer=ISSUER)
    assert idt["nonce"] == params["nonce"]
    assert idt["sid"] == at["sid"]
    assert idt["auth_time"] <= idt["iat"]
    # OIDC Core §3.1.3.6: the left half of the SHA-256 of the access token, base64url.
    digest = hashlib.sha256(body["access_token"].encode("ascii")).digest()
    assert idt["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert idt["email"] == "alice@example.test"
    assert idt["name"] == "Alice Liddell"
    assert idt["tenant"] == "acme"


def test_userinfo_returns_claims_for_granted_scopes(auth, client):
    auth.user()
    rp = auth.oauth_client()
    auth.login()
    tokens = auth.tokens(rp, scope="openid email")
    resp = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert resp.status_code == 200
    info = resp.get_json()
    assert info["email"] == "alice@example.test"
    assert "preferred_username" not in info
    post = client.post("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert post.get_json() == info
