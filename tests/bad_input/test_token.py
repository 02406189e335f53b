"""/token (RFC 6749 §3.2, §5.2; RFC 7636 §4.5) fed hostile input."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.bad_input.helpers import (
    MARKUP,
    PKCE_CASES,
    assert_clean_error,
    assert_error_redirect,
    basic,
    row_counts,
)
from tests.support.auth import REDIRECT


@pytest.mark.parametrize(
    "grant_type",
    [
        None,
        "",
        "password",
        "implicit",
        "token",
        "refresh_token",
        "CLIENT_CREDENTIALS",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:device_code",
        MARKUP,
        "x" * 5000,
    ],
)
def test_token_missing_or_unknown_grant_type(
    client: Any, svc: Any, rp: Any, grant_type: str | None
) -> None:
    """No grant_type, or a supported one without its parameters (refresh_token without the
    token), is invalid_request; anything else is unsupported_grant_type (RFC 6749 §5.2)."""
    data = {"scope": ""} if grant_type is None else {"grant_type": grant_type}
    before = row_counts(svc)
    resp = client.post("/token", data=data, headers=rp.basic())
    error = "invalid_request" if grant_type in (None, "", "refresh_token") else None
    assert_clean_error(
        resp,
        json_body=True,
        status=400,
        error=error or "unsupported_grant_type",
        description=False,
    )
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("grant_type=password", "application/x-www-form-urlencoded"),
        (json.dumps({"grant_type": "client_credentials"}), "application/json"),
    ],
)
def test_token_unsupported_grant_type_has_error_description(
    client: Any, rp: Any, body: str, content_type: str
) -> None:
    resp = client.post("/token", data=body, content_type=content_type, headers=rp.basic())
    assert_clean_error(resp, json_body=True, status=400)


@pytest.mark.parametrize("grant_type", ['pass"word', "p\u00e4ssword", "back\\slash"])
def test_token_grant_type_outside_error_charset(
    client: Any, svc: Any, rp: Any, grant_type: str
) -> None:
    before = row_counts(svc)
    resp = client.post("/token", data={"grant_type": grant_type}, headers=rp.basic())
    assert_clean_error(
        resp, json_body=True, status=400, error="unsupported_grant_type", description=False
    )
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"grant_type": "client_credentials"}), "application/json"),
        ("grant_type=client_credentials", "text/plain"),
        ("grant_type=client_credentials", "application/xml"),
        (b"grant_type=client_credentials&scope=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00\x01", "application/x-www-form-urlencoded"),
        ("grant_type=%zz%&code=%&%%", "application/x-www-form-urlencoded"),
        ("", "application/x-www-form-urlencoded"),
        ("&&&===&", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
    ],
)
def test_token_body_garbage(client: Any, svc: Any, rp: Any, body: Any, content_type: str) -> None:
    """Only a form body is read (RFC 6749 §3.2): anything else has no grant_type. An escape
    that does not decode stays literal, so ``%zz%`` is a grant type, just not a known one."""
    before = row_counts(svc)
    resp = client.post("/token", data=body, content_type=content_type, headers=rp.basic())
    literal_grant_type = body == "grant_type=%zz%&code=%&%%"
    error = "unsupported_grant_type" if literal_grant_type else "invalid_request"
    assert_clean_error(resp, json_body=True, status=400, error=error)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        basic("rp"),
        basic("rp", ""),
        basic("", "secret"),
        basic(":"),
        basic("rp", "wrong"),
        basic("rp", "wrong:with:colons"),
        basic("nope", "secret"),
        basic(MARKUP, MARKUP),
        basic("%ZZ", "%"),
        "Basic " + "A" * 20000,
        basic("rp", "x" * 10000),
        "Basic " + base64.b64encode(b"rp:secret").decode() + "====",
        "Basic\trp:secret",
        "Bearer something",
        "Digest username=rp",
        "basic",
        MARKUP,
    ],
)
def test_token_basic_auth_garbage_is_401(
    client: Any, svc: Any, rp: Any, authorization: str
) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": authorization},
    )
    assert_clean_error(resp, json_body=True, status=401, error="invalid_client")
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert row_counts(svc) == before


@pytest.mark.parametrize("raw", [b"\xff\xfe:\xff", b"rp:\xff\xfe", b"\xc0\xaf"])
def test_token_basic_auth_invalid_utf8_is_401(client: Any, svc: Any, rp: Any, raw: bytes) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )
    assert_clean_error(resp, json_body=True, status=401, error="invalid_client")
    assert row_counts(svc) == before


@pytest.mark.parametrize("how", ["basic", "basic-escaped", "post"])
def test_token_nul_in_client_id_is_refused(client: Any, svc: Any, rp: Any, how: str) -> None:
    """In the Basic header it names no client (401 invalid_client); in a form field it is
    refused with every other NUL before the client is looked up (400 invalid_request)."""
    data = {"grant_type": "client_credentials"}
    headers = {}
    if how == "basic":
        headers["Authorization"] = basic("rp\x00", "secret")
    elif how == "basic-escaped":
        headers["Authorization"] = basic("rp%00", "secret")
    else:
        data.update(client_id="rp\x00", client_secret="secret")
    before = row_counts(svc)
    resp = client.post("/token", data=data, headers=headers)
    if how == "post":
        assert_clean_error(resp, json_body=True, status=400, error="invalid_request")
    else:
        assert_clean_error(resp, json_body=True, status=401, error="invalid_client")
    assert row_counts(svc) == before


def test_token_two_client_auth_methods_are_refused(client: Any, svc: Any, rp: Any) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token",
        headers=rp.basic(),
        data={
            "grant_type": "client_credentials",
            "client_id": rp.client_id,
            "client_secret": rp.secret,
        },
    )
    # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
    assert_clean_error(resp, json_body=True, status=400, error="invalid_request")
    assert row_counts(svc) == before


def test_token_credentials_in_query_string_are_refused(client: Any, svc: Any, rp: Any) -> None:
    """RFC 6749 §2.3.1: client credentials MUST NOT be included in the request URI. The
    grant is in the body, so the only thing wrong is where the credentials are."""
    before = row_counts(svc)
    resp = client.post(
        "/token?" + urlencode({"client_id": rp.client_id, "client_secret": rp.secret}),
        data={"grant_type": "client_credentials"},
    )
    assert_clean_error(resp, json_body=True, status=401, error="invalid_client")
    assert row_counts(svc) == before


@pytest.mark.parametrize("scope", ['a"b', "\u00e9", "back\\slash"])
def test_token_client_credentials_scope_outside_error_charset(
    client: Any, svc: Any, rp: Any, scope: str
) -> None:
    before = row_counts(svc)
    resp = client.post(
        "/token", headers=rp.basic(), data={"grant_type": "client_credentials", "scope": scope}
    )
    assert_clean_error(resp, json_body=True, status=400, error="invalid_scope")
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "scope",
    [
        MARKUP,
        "openid",
        "x" * 5000,
        "a\x00b",
    ],
)
def test_token_client_credentials_bad_scope(client: Any, svc: Any, rp: Any, scope: str) -> None:
    """A scope the client may not have is invalid_scope; a NUL is refused before that."""
    before = row_counts(svc)
    resp = client.post(
        "/token", headers=rp.basic(), data={"grant_type": "client_credentials", "scope": scope}
    )
    error = "invalid_request" if "\x00" in scope else "invalid_scope"
    assert_clean_error(resp, json_body=True, status=400, error=error)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "code", [None, "", "x" * 20000, MARKUP, "\x00", "%ff", "\u00e9" * 50, "a b c"]
)
def test_token_bad_or_missing_code_is_refused(
    auth: Any, svc: Any, rp: Any, code: str | None
) -> None:
    """A code that was never issued is invalid_grant; no code at all, or one with a NUL, is
    invalid_request (RFC 6749 §5.2)."""
    data = {
        "grant_type": "authorization_code",
        "redirect_uri": rp.redirect_uri,
        "code_verifier": "v" * 50,
    }
    if code is not None:
        data["code"] = code
    before = row_counts(svc)
    resp = auth.token(rp, data)
    error = "invalid_request" if code is None or "\x00" in code else "invalid_grant"
    assert_clean_error(resp, json_body=True, status=400, error=error)
    assert row_counts(svc) == before


WRONG_VERIFIER = "wrong-" + "v" * 50


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_verifier", None),
        ("code_verifier", ""),
        ("code_verifier", WRONG_VERIFIER),
        ("code_verifier", "short"),
        ("code_verifier", MARKUP + "v" * 50),
        ("code_verifier", "v" * 10000),
        ("redirect_uri", "https://evil.example/callback"),
        ("redirect_uri", REDIRECT + "#x"),
        ("redirect_uri", None),
        ("redirect_uri", MARKUP),
    ],
)
def test_token_code_exchange_with_bad_binding_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, field: str, value: str | None
) -> None:
    """A verifier that is missing or not 43-128 unreserved characters is invalid_request
    (RFC 7636 §4.1); a well-formed one that does not match, or any other redirect_uri than
    the authorization request's, is invalid_grant (RFC 7636 §4.6, RFC 6749 §4.1.3)."""
    code, verifier, _ = auth.code_for(rp)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }
    if value is None:
        data.pop(field)
    else:
        data[field] = value
    before = row_counts(svc)
    resp = auth.token(rp, data)
    mismatch = field == "redirect_uri" or value == WRONG_VERIFIER
    error = "invalid_grant" if mismatch else "invalid_request"
    assert_clean_error(resp, json_body=True, status=400, error=error)
    assert row_counts(svc) == before


REPEATED_TOKEN = {
    "grant_type": ("grant_type", "authorization_code", "client_credentials"),
    "grant_type-same": ("grant_type", "authorization_code", "authorization_code"),
    "code-valid-first": ("code", "{code}", "garbage"),
    "code-valid-second": ("code", "garbage", "{code}"),
    "code-same": ("code", "{code}", "{code}"),
    "client_id": ("client_id", "spa", "rp"),
    "redirect_uri": ("redirect_uri", REDIRECT, "https://evil.example/cb"),
    "code_verifier": ("code_verifier", "{verifier}", "w" * 50),
}


@pytest.mark.parametrize(
    "case",
    [c for c in REPEATED_TOKEN],
)
def test_token_repeated_parameter_is_refused(
    auth: Any, svc: Any, spa: Any, logged_in: Any, case: str
) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once; the refused
    request must not burn the code."""
    code, verifier, _ = auth.code_for(spa)
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": spa.redirect_uri,
        "client_id": spa.client_id,
        "code_verifier": verifier,
    }
    name, first, second = REPEATED_TOKEN[case]
    pairs = [(k, v) for k, v in fields.items() if k != name]
    pairs += [(name, v.format(code=code, verifier=verifier)) for v in (first, second)]
    before = row_counts(svc)
    resp = auth.client.post(
        "/token", data=urlencode(pairs), content_type="application/x-www-form-urlencoded"
    )
    assert_clean_error(resp, json_body=True, status=400, error="invalid_request")
    assert row_counts(svc) == before
    # The client retries without the mistake, and the code still works.
    retry = auth.exchange(spa, code, verifier)
    assert retry.status_code == 200, retry.get_json()


class TestPkceOptionalForConfidentialClients:
    """With [oauth] pkce_required = false a confidential client may skip PKCE; the
    downgrade (a code_verifier for a code issued without a challenge) is still refused."""

    @pytest.fixture
    def config_overrides(self) -> dict[str, dict[str, Any]]:
        return {"oauth": {"pkce_required": False}}

    def test_code_verifier_without_challenge_is_refused(
        self, auth: Any, svc: Any, rp: Any, logged_in: Any
    ) -> None:
        code, _, _ = auth.code_for(rp, code_challenge=None, code_challenge_method=None)
        before = row_counts(svc)
        resp = auth.exchange(rp, code, "v" * 50)
        assert_clean_error(resp, json_body=True, status=400, error="invalid_request")
        assert row_counts(svc) == before
        # Control: the same flow without a verifier is fine.
        code, _, _ = auth.code_for(rp, code_challenge=None, code_challenge_method=None)
        assert auth.exchange(rp, code, None).status_code == 200

    @pytest.mark.parametrize("case", ["plain", "challenge-without-method", "unknown-method"])
    def test_bad_pkce_is_still_refused(
        self, auth: Any, svc: Any, rp: Any, logged_in: Any, case: str
    ) -> None:
        before = row_counts(svc)
        resp = auth.authorize(rp, **PKCE_CASES[case])
        assert_error_redirect(resp, "invalid_request")
        assert row_counts(svc) == before

    def test_public_client_without_pkce_is_still_refused(
        self, auth: Any, svc: Any, spa: Any, logged_in: Any
    ) -> None:
        before = row_counts(svc)
        resp = auth.authorize(spa, code_challenge=None, code_challenge_method=None)
        assert_error_redirect(resp, "invalid_request")
        assert row_counts(svc) == before
