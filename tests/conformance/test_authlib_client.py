"""idp as seen by authlib's OAuth client, over real HTTP.

The relying app is authlib's ``OAuth2Session`` (discovery, PKCE S256, client
authentication, token request), the browser a ``requests.Session`` that fills idp's
login form, and the tokens are checked with PyJWT against ``/jwks.json``: code written
independently of idp's own (authlib's server side, joserfc), so a shared
misunderstanding of the standards cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import jwt
import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc import rpinitiated
from authlib.oidc.discovery import OpenIDProviderMetadata

from tests.support.auth import PASSWORD, csrf_from, query_of

# Nobody listens here: the browser stops at the redirect and hands its URL to the app.
REDIRECT = "http://127.0.0.1:9/cb"
TIMEOUT = 10
OFFLINE_SCOPE = "openid profile email offline_access"
NEXT_RE = re.compile(r'name="next" value="([^"]*)"')


@pytest.fixture
def meta(live: Any) -> dict[str, Any]:
    resp = requests.get(f"{live.url}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    return dict(resp.json())


@pytest.fixture
def jwks_client(meta: dict[str, Any]) -> jwt.PyJWKClient:
    # An unknown kid sends the verifier back to jwks_uri (OIDC Core §10.1.1): no cooldown,
    # since a test may be the first to use an algorithm, whose key idp then makes.
    return jwt.PyJWKClient(meta["jwks_uri"], timeout=TIMEOUT, cooldown_duration=0)


RelyingApp = Callable[..., OAuth2Session]


@pytest.fixture
def relying_app() -> Iterator[RelyingApp]:
    """Makes authlib OAuth2Sessions (the relying app's side), closed after the test."""
    made: list[OAuth2Session] = []

    def make(client_id: str, client_secret: str | None, **kw: Any) -> OAuth2Session:
        kw.setdefault("redirect_uri", REDIRECT)
        kw.setdefault("code_challenge_method", "S256")
        made.append(OAuth2Session(client_id, client_secret, default_timeout=TIMEOUT, **kw))
        return made[-1]

    yield make
    for session in made:
        session.close()


def sign_in(
    browser: requests.Session,
    authorization_url: str,
    username: str = "alice",
    password: str = PASSWORD,
) -> str:
    """Plays the user agent from the authorization URL to the redirect back to the client;
    returns the redirect's URL without requesting it."""
    resp = browser.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302, resp.text
    login_url = urljoin(authorization_url, resp.headers["Location"])
    assert urlsplit(login_url).path == "/login"

    page = browser.get(login_url, allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    next_field = NEXT_RE.search(page.text)
    assert next_field, "login form has no next field"
    resp = browser.post(
        urljoin(login_url, "/login"),
        data={
            "csrf_token": csrf_from(page.text),
            "next": html.unescape(next_field.group(1)),
            "username": username,
            "password": password,
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert resp.status_code == 303, resp.text

    back = urljoin(login_url, resp.headers["Location"])
    assert urlsplit(back).path == "/authorize"
    resp = browser.get(back, allow_redirects=False, timeout=TIMEOUT)
    assert resp.status_code == 302, resp.text
    return str(resp.headers["Location"])


def half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 at_hash: left half of the hash the JWS alg uses (SHA-512 for
    Ed25519), base64url without padding."""
    digest = (hashlib.sha512 if alg == "EdDSA" else getattr(hashlib, f"sha{alg[2:]}"))(
        value.encode()
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def verify_jwt(
    jwks_client: jwt.PyJWKClient, token: str, *, issuer: str, audience: str, require: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    header = jwt.get_unverified_header(token)
    assert header.get("kid"), "every token header names its key"
    key = jwks_client.get_signing_key_from_jwt(token)
    assert header["alg"] == key.algorithm_name  # the alg the JWKS publishes for that kid
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        issuer=issuer,
        audience=audience,
        options={"require": require},
    )
    return dict(header), dict(claims)


def code_flow(
    live: Any,
    meta: dict[str, Any],
    relying_app: RelyingApp,
    client_id: str,
    client_secret: str | None,
    auth_method: str,
    scope: str = "openid profile email",
) -> tuple[dict[str, Any], str]:
    """authlib as the relying app; returns (token response, nonce)."""
    rp = relying_app(client_id, client_secret, scope=scope, token_endpoint_auth_method=auth_method)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    request = query_of(url)
    assert request["code_challenge_method"] == "S256" and request["code_challenge"]

    with requests.Session() as browser:
        location = sign_in(browser, url)
    assert location.startswith(REDIRECT + "?")
    response = query_of(location)
    assert response["state"] == state
    assert response["iss"] == meta["issuer"] == live.url  # RFC 9207
    assert "error" not in response

    # authlib checks the state again and sends code, redirect_uri and code_verifier.
    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )
    return dict(token), nonce


def check_tokens(
    live: Any,
    meta: dict[str, Any],
    jwks_client: jwt.PyJWKClient,
    token: dict[str, Any],
    client_id: str,
    user: Any,
    nonce: str,
    id_token_alg: str = "RS256",
) -> dict[str, Any]:
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] > 0
    assert set(token["scope"].split()) == {"openid", "profile", "email"}

    at_header, at = verify_jwt(
        jwks_client,
        token["access_token"],
        issuer=live.url,
        audience=client_id,
        require=["iss", "sub", "aud", "exp", "iat", "jti"],
    )
    assert at_header["typ"].lower() in {"at+jwt", "application/at+jwt"}  # RFC 9068 §2.1
    assert at["sub"] == user.id
    assert at["client_id"] == client_id
    assert at["scope"] == token["scope"]
    assert at["sid"]

    id_header, idt = verify_jwt(
        jwks_client,
        token["id_token"],
        issuer=live.url,
        audience=client_id,
        require=["iss", "sub", "aud", "exp", "iat", "auth_time"],
    )
    assert id_header["alg"] == id_token_alg
    assert id_header["alg"] in meta["id_token_signing_alg_values_supported"]
    assert id_header.get("typ", "JWT") != "at+jwt"
    assert idt["sub"] == user.id
    assert idt["nonce"] == nonce
    assert idt["at_hash"] == half_hash(token["access_token"], id_header["alg"])
    assert idt.get("azp", client_id) == client_id
    assert idt["auth_time"] <= idt["iat"] < idt["exp"]
    assert idt["sid"] == at["sid"]
    assert idt["email"] == user.email
    assert idt["preferred_username"] == user.username

    resp = requests.get(
        meta["userinfo_endpoint"],
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    info = resp.json()
    assert info["sub"] == idt["sub"]  # OIDC Core §5.3.2
    assert info["email"] == user.email
    assert info["preferred_username"] == user.username
    return idt


def test_discovery_documents_are_valid_metadata(live, meta):
    assert meta["issuer"] == live.url
    OpenIDProviderMetadata(meta).validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True

    resp = requests.get(f"{live.url}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    assert resp.status_code == 200
    rfc8414 = resp.json()
    AuthorizationServerMetadata(rfc8414).validate()
    assert rfc8414["issuer"] == live.url


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client(live, auth, meta, jwks_client, relying_app, auth_method):
    alice = auth.user()
    rp = auth.oauth_client("conf-app", redirect_uri=REDIRECT)
    token, nonce = code_flow(live, meta, relying_app, rp.client_id, rp.secret, auth_method)
    check_tokens(live, meta, jwks_client, token, rp.client_id, alice, nonce)


def test_public_client(live, auth, meta, jwks_client, relying_app):
    alice = auth.user()
    rp = auth.oauth_client("spa", public=True, redirect_uri=REDIRECT)
    assert rp.secret is None
    token, nonce = code_flow(live, meta, relying_app, rp.client_id, None, "none")
    check_tokens(live, meta, jwks_client, token, rp.client_id, alice, nonce)


def test_id_token_signed_with_registered_alg(live, auth, meta, jwks_client, relying_app):
    alice = auth.user()
    for alg in ("ES256", "EdDSA"):
        rp = auth.oauth_client(f"app-{alg.lower()}", redirect_uri=REDIRECT, id_token_alg=alg)
        token, nonce = code_flow(
            live, meta, relying_app, rp.client_id, rp.secret, "client_secret_basic"
        )
        check_tokens(live, meta, jwks_client, token, rp.client_id, alice, nonce, id_token_alg=alg)


def test_token_endpoint_refuses_wrong_secret_then_wrong_verifier(live, auth, meta, relying_app):
    auth.user()
    rp = auth.oauth_client("conf-app", redirect_uri=REDIRECT)
    app = relying_app(rp.client_id, rp.secret, scope="openid")
    verifier = secrets.token_urlsafe(48)
    url, state = app.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier
    )
    with requests.Session() as browser:
        location = sign_in(browser, url)

    impostor = relying_app(rp.client_id, "not-the-secret", scope="openid")
    with pytest.raises(OAuthError) as exc:
        impostor.fetch_token(
            meta["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
    assert exc.value.error == "invalid_client"  # RFC 6749 §5.2

    with pytest.raises(OAuthError) as exc:
        app.fetch_token(
            meta["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=secrets.token_urlsafe(48),
        )
    assert exc.value.error == "invalid_grant"  # RFC 7636 §4.6


def test_client_credentials_and_jwks(live, auth, meta, jwks_client, relying_app):
    svc = auth.oauth_client(
        "worker",
        redirect_uri=REDIRECT,
        first_party=False,
        grant_types=["client_credentials"],
        scope="reports:read",
    )
    app = relying_app(svc.client_id, svc.secret, scope="reports:read")
    token = app.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "reports:read"
    assert "refresh_token" not in token and "id_token" not in token  # RFC 6749 §4.4.3
    header, at = verify_jwt(
        jwks_client,
        token["access_token"],
        issuer=live.url,
        audience=svc.client_id,
        require=["iss", "sub", "aud", "exp", "iat", "jti"],
    )
    assert header["typ"].lower() in {"at+jwt", "application/at+jwt"}
    assert at["client_id"] == at["sub"] == svc.client_id
    assert at["scope"] == "reports:read"
    assert "sid" not in at

    # Not usable at userinfo: there is no user behind it, and no openid scope (RFC 6750 §3.1).
    resp = requests.get(
        meta["userinfo_endpoint"],
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"

    resp = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
    assert resp.status_code == 200
    assert "max-age=" in resp.headers["Cache-Control"]
    assert resp.headers.get("ETag")
    keys = resp.json()["keys"]
    assert header["kid"] in {k["kid"] for k in keys}
    for jwk in keys:
        assert jwk["kid"] and jwk["alg"] and jwk.get("use", "sig") == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "private key material"
        jwt.PyJWK(jwk)  # PyJWT can load every key


def test_replayed_code_is_refused_and_revokes_its_token(live, auth, meta, relying_app):
    auth.user()
    rp = auth.oauth_client("conf-app", redirect_uri=REDIRECT)
    app = relying_app(rp.client_id, rp.secret, scope="openid")
    verifier = secrets.token_urlsafe(48)
    url, state = app.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier
    )
    with requests.Session() as browser:
        location = sign_in(browser, url)
    token = app.fetch_token(
        meta["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )
    with pytest.raises(OAuthError) as exc:
        app.fetch_token(
            meta["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
    assert exc.value.error == "invalid_grant"  # RFC 6749 §4.1.2, §5.2
    resp = requests.get(
        meta["userinfo_endpoint"],
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert resp.status_code == 401  # RFC 9700 §4.2.4: what the code gave is revoked


AUTHORIZATION_ERRORS = [
    ("no PKCE from a public client", {}, "invalid_request"),
    (
        "plain PKCE",
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        "invalid_request",
    ),
    (
        "PKCE without method, which means plain (RFC 7636 §4.3)",
        {"code_challenge": "x" * 43},
        "invalid_request",
    ),
    (
        "prompt=none without a session",
        {"code_verifier": secrets.token_urlsafe(48), "prompt": "none"},
        "login_required",
    ),
]


def test_authorization_errors_redirect_with_state_and_iss(live, auth, meta, relying_app):
    rp = auth.oauth_client("spa", public=True, redirect_uri=REDIRECT)
    app = relying_app(rp.client_id, None, scope="openid", token_endpoint_auth_method="none")
    for case, request_kw, error in AUTHORIZATION_ERRORS:
        url, state = app.create_authorization_url(meta["authorization_endpoint"], **request_kw)
        with requests.Session() as browser:  # no idp session
            resp = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
        assert resp.status_code == 302, case
        assert resp.headers["Location"].startswith(REDIRECT + "?"), case
        response = query_of(resp.headers["Location"])
        assert "code" not in response, case
        assert response["error"] == error, case  # RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6
        assert response["state"] == state, case
        assert response["iss"] == live.url, case  # RFC 9207 §2: error responses carry iss


def test_refresh_rotates_and_keeps_the_id_token_subject(live, auth, meta, jwks_client, relying_app):
    alice = auth.user()
    rp = auth.oauth_client("conf-app", redirect_uri=REDIRECT)
    token, nonce = code_flow(
        live, meta, relying_app, rp.client_id, rp.secret, "client_secret_basic", scope=OFFLINE_SCOPE
    )
    assert token["refresh_token"]
    _, first = verify_jwt(
        jwks_client,
        token["id_token"],
        issuer=live.url,
        audience=rp.client_id,
        require=["sub", "auth_time"],
    )
    assert first["nonce"] == nonce

    app = relying_app(rp.client_id, rp.secret)
    new = dict(app.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"]))
    assert new["refresh_token"] != token["refresh_token"]  # rotation (RFC 9700 §4.14.2)
    assert new["access_token"] != token["access_token"]
    assert set(new["scope"].split()) == set(OFFLINE_SCOPE.split())  # RFC 6749 §6
    at_header, at = verify_jwt(
        jwks_client,
        new["access_token"],
        issuer=live.url,
        audience=rp.client_id,
        require=["sub", "jti", "exp"],
    )
    assert at_header["typ"].lower() in {"at+jwt", "application/at+jwt"}
    assert at["sub"] == alice.id
    # OIDC Core §12.2: same iss, sub, aud and auth_time; a new iat; no nonce.
    header, idt = verify_jwt(
        jwks_client,
        new["id_token"],
        issuer=live.url,
        audience=rp.client_id,
        require=["sub", "iat", "auth_time"],
    )
    assert idt["sub"] == first["sub"] == alice.id
    assert idt["auth_time"] == first["auth_time"]
    assert idt["iat"] >= first["iat"]
    assert "nonce" not in idt
    assert idt["at_hash"] == half_hash(new["access_token"], header["alg"])

    # RFC 7662: the new access token and refresh token are active, for this client and user.
    for value, hint in (
        (new["access_token"], "access_token"),
        (new["refresh_token"], "refresh_token"),
    ):
        resp = app.introspect_token(
            meta["introspection_endpoint"], token=value, token_type_hint=hint
        )
        assert resp.status_code == 200
        info = resp.json()
        assert info["active"] is True, hint
        assert info["client_id"] == rp.client_id and info["sub"] == alice.id, hint
        assert set(info["scope"].split()) == set(OFFLINE_SCOPE.split()), hint
        assert info["exp"] > info["iat"], hint

    # RFC 7009: revoking the refresh token; the refresh token no longer works, and
    # (§2.1 SHOULD, SPEC §6) neither do the access tokens of its grant.
    resp = app.revoke_token(
        meta["revocation_endpoint"], token=new["refresh_token"], token_type_hint="refresh_token"
    )
    assert resp.status_code == 200
    with pytest.raises(OAuthError) as exc:
        app.refresh_token(meta["token_endpoint"], refresh_token=new["refresh_token"])
    assert exc.value.error == "invalid_grant"
    resp = app.introspect_token(meta["introspection_endpoint"], token=new["access_token"])
    assert resp.json() == {"active": False}
    resp = requests.get(
        meta["userinfo_endpoint"],
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {new['access_token']}"},
    )
    assert resp.status_code == 401


def test_refresh_token_reuse_revokes_the_family(live, auth, meta, relying_app):
    auth.user()
    rp = auth.oauth_client("spa", public=True, redirect_uri=REDIRECT)
    token, _ = code_flow(live, meta, relying_app, rp.client_id, None, "none", scope=OFFLINE_SCOPE)
    app = relying_app(rp.client_id, None, token_endpoint_auth_method="none")
    new = dict(app.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"]))
    with pytest.raises(OAuthError) as exc:  # the spent token again: reuse (RFC 9700 §4.14.2)
        app.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert exc.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as exc:  # the whole family is gone, the newest token too
        app.refresh_token(meta["token_endpoint"], refresh_token=new["refresh_token"])
    assert exc.value.error == "invalid_grant"
    resp = requests.get(
        meta["userinfo_endpoint"],
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {new['access_token']}"},
    )
    assert resp.status_code == 401


def test_introspection_token_type_is_an_oauth_token_type(live, auth, meta, relying_app):
    """RFC 7662 §2.2: ``token_type`` is the type "as defined in Section 5.1 of OAuth 2.0",
    i.e. the token endpoint's ``token_type`` ("Bearer"), not a token_type_hint value."""
    worker = auth.oauth_client("worker", grant_types=["client_credentials"], scope="api")
    app = relying_app(worker.client_id, worker.secret, scope="api")
    token = app.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    resp = app.introspect_token(meta["introspection_endpoint"], token=token["access_token"])
    assert resp.status_code == 200
    info = resp.json()
    assert info["active"] is True
    assert info["token_type"].lower() == token["token_type"].lower() == "bearer"
