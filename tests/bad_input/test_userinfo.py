"""/userinfo (OIDC Core §5.3, RFC 6750, RFC 9068 §4) fed garbage and forged tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.bad_input.helpers import (
    MARKUP,
    assert_clean_error,
    b64url,
    row_counts,
    unsigned_jwt,
)
from tests.conftest import ISSUER


def assert_invalid_token(resp: Any) -> None:
    """A presented token that fails: 401 invalid_token in the body and the challenge."""
    assert_clean_error(resp, json_body=True, status=401, error="invalid_token")
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def assert_no_token(resp: Any) -> None:
    """No Bearer token where RFC 6750 §2.1/§2.2 look: 401 with a bare ``Bearer`` challenge,
    no error code in it (§3.1: the request lacks any authentication information)."""
    assert_clean_error(resp, json_body=True, status=401, error="invalid_request")
    assert resp.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic " + base64.b64encode(b"rp:secret").decode(),
        "Token abc",
        MARKUP,
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_without_a_bearer_token_is_a_bare_401_challenge(
    client: Any, svc: Any, authorization: str | None, method: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before = row_counts(svc)
    resp = client.open("/userinfo", method=method, headers=headers)
    assert_no_token(resp)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer x",
        "Bearer a.b.c",
        "Bearer ...",
        "Bearer " + "A" * 10000,
        "Bearer " + ".".join(["A" * 3000] * 3),
        "Bearer " + MARKUP,
        "Bearer \u00e9\u00e9",
        "Bearer eyJhbGciOiJub25lIn0",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_garbage_bearer_is_401(
    client: Any, svc: Any, authorization: str, method: str
) -> None:
    before = row_counts(svc)
    resp = client.open("/userinfo", method=method, headers={"Authorization": authorization})
    assert_invalid_token(resp)
    assert row_counts(svc) == before


def forged_token(forge: Any, client: Any, case: str) -> str:
    c = forge.claims
    at = {"typ": "at+jwt"}
    if case.startswith("alg-"):
        alg = "NONE" if case == "alg-NONE" else "none"
        token = unsigned_jwt({"alg": alg, "typ": "at+jwt", "kid": forge.kid}, c())
        return token[:-1] if case == "alg-none-no-signature" else token
    if case == "hs256-with-public-key":
        # The classic confusion: the published RSA key used as an HMAC secret.
        jwk = forge.rsa_public_jwk
        header = {"alg": "HS256", "typ": "at+jwt", "kid": jwk["kid"]}
        signing_input = ".".join(
            [b64url(json.dumps(header).encode()), b64url(json.dumps(c()).encode())]
        )
        sig = hmac.new(json.dumps(jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64url(sig)
    real_key_cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "wrong-typ": ({"typ": "JWT"}, c()),
        "logout-typ": ({"typ": "logout+jwt"}, c()),
        "no-typ": ({}, c()),
        "crit-header": ({**at, "crit": ["exp"]}, c()),
        "wrong-issuer": (at, c(iss="https://evil.example")),
        "issuer-trailing-slash": (at, c(iss=ISSUER + "/")),
        "expired": (at, c(exp=forge.issued_at - 3600)),
        "just-expired": (at, c(exp=forge.issued_at)),
        "not-yet-valid": (at, c(nbf=forge.issued_at + 3600)),
        "no-exp": (at, c(exp=None)),
        "string-exp": (at, c(exp="soon")),
        "no-scope-openid": (at, c(scope="profile")),
        "unknown-sub": (at, c(sub="nobody")),
        "markup-sub": (at, c(sub=MARKUP)),
    }
    if case in real_key_cases:
        return str(forge.real(*real_key_cases[case]))
    if case == "attacker-key-same-kid":
        return str(forge.attacker({**at, "kid": forge.kid}, c()))
    if case == "attacker-key-embedded-jwk":
        return str(forge.attacker({**at, "kid": forge.kid, "jwk": forge.attacker_jwk}, c()))
    if case == "attacker-key-jku":
        return str(forge.attacker({**at, "kid": "evil", "jku": "https://evil.example/jwks"}, c()))
    if case == "unknown-kid":
        token = str(forge.real(at, c()))
        head = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        head["kid"] = "nope"
        return ".".join([b64url(json.dumps(head).encode()), *token.split(".")[1:]])
    if case == "signature-stripped":
        return str(forge.real(at, c())).rsplit(".", 1)[0] + "."
    if case == "five-parts-jwe-shape":
        return "a.b.c.d.e"
    raise AssertionError(case)


FORGED = [
    "alg-none",
    "alg-none-no-signature",
    "alg-NONE",
    "hs256-with-public-key",
    "wrong-typ",
    "logout-typ",
    "no-typ",
    "crit-header",
    "wrong-issuer",
    "issuer-trailing-slash",
    "expired",
    "just-expired",
    "not-yet-valid",
    "no-exp",
    "string-exp",
    "unknown-sub",
    "markup-sub",
    "attacker-key-same-kid",
    "attacker-key-embedded-jwk",
    "attacker-key-jku",
    "unknown-kid",
    "signature-stripped",
    "five-parts-jwe-shape",
]


def test_userinfo_forge_control_well_formed_token_is_accepted(client: Any, forge: Any) -> None:
    """The forger is sound: without a defect its token passes, so each 401 below is the
    check it targets, not a broken fixture."""
    token = forge.real({"typ": "at+jwt"}, forge.claims())
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + token}).status_code == 200


@pytest.mark.parametrize("case", FORGED)
def test_userinfo_forged_access_token_is_401(client: Any, svc: Any, forge: Any, case: str) -> None:
    token = forged_token(forge, client, case)
    before = row_counts(svc)
    for method in ("GET", "POST"):
        resp = client.open("/userinfo", method=method, headers={"Authorization": "Bearer " + token})
        assert_invalid_token(resp)
    assert row_counts(svc) == before


def test_userinfo_token_without_openid_scope_is_403(client: Any, forge: Any) -> None:
    resp = client.get(
        "/userinfo",
        headers={"Authorization": "Bearer " + forged_token(forge, client, "no-scope-openid")},
    )
    assert_clean_error(resp, json_body=True, status=403, error="insufficient_scope")


def test_userinfo_id_token_is_not_an_access_token(
    client: Any, svc: Any, tokens: dict[str, Any]
) -> None:
    before = row_counts(svc)
    for method in ("GET", "POST"):
        resp = client.open(
            "/userinfo", method=method, headers={"Authorization": "Bearer " + tokens["id_token"]}
        )
        assert_invalid_token(resp)
    assert row_counts(svc) == before


def test_userinfo_token_in_two_places_is_400(client: Any, svc: Any, tokens: dict[str, Any]) -> None:
    """RFC 6750 §2/§3.1: more than one method of sending the token is invalid_request."""
    resp = client.post(
        "/userinfo",
        headers={"Authorization": "Bearer " + tokens["access_token"]},
        data={"access_token": tokens["access_token"]},
    )
    assert_clean_error(resp, json_body=True, status=400, error="invalid_request")


@pytest.mark.parametrize("where", ["query", "json-body", "cookie"])
def test_userinfo_token_outside_header_or_form_is_401(
    client: Any, tokens: dict[str, Any], where: str
) -> None:
    token = tokens["access_token"]
    if where == "query":
        resp = client.get("/userinfo?" + urlencode({"access_token": token}))
    elif where == "json-body":
        resp = client.post("/userinfo", json={"access_token": token})
    else:
        resp = client.get("/userinfo", headers={"Cookie": f"access_token={token}"})
    assert_no_token(resp)


def test_userinfo_tampered_real_token_is_401(client: Any, tokens: dict[str, Any]) -> None:
    head, payload, sig = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = ".".join([head, b64url(json.dumps(claims).encode()), sig])
    assert_invalid_token(client.get("/userinfo", headers={"Authorization": "Bearer " + forged}))
