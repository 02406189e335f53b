"""/authorize (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2.1) fed hostile input."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt as pyjwt
import pytest

from tests.bad_input.helpers import (
    CHALLENGE,
    INLINE_SCRIPT,
    MARKUP,
    PKCE_CASES,
    assert_clean_error,
    assert_error_redirect,
    row_counts,
    text_of,
)
from tests.support.auth import REDIRECT, csrf_from

# --- /authorize: who may be redirected to ---------------------------------------------


def authorize_query(**params: Any) -> str:
    return "/authorize?" + urlencode(params)


@pytest.mark.parametrize(
    "client_id",
    [
        None,
        "",
        "nope",
        MARKUP,
        "x" * 5000,
        "rp ",
        " rp",
        "RP",
        "rp\n",
        "\u0433p",
        "../rp",
    ],
)
@pytest.mark.parametrize("with_session", [False, True])
def test_authorize_unknown_client_is_html_400_without_redirect(
    auth: Any, svc: Any, rp: Any, alice: Any, client_id: str | None, with_session: bool
) -> None:
    if with_session:
        auth.login()
    params = auth.authorize_params(rp, client_id=client_id, state=MARKUP)  # None: left out
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + urlencode(params))
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("client_id", ["\x00", "rp\x00"])
def test_authorize_nul_in_client_id_is_html_400(
    auth: Any,
    svc: Any,
    rp: Any,
    client_id: str,
) -> None:
    before = row_counts(svc)
    resp = auth.client.get(
        "/authorize?" + urlencode(auth.authorize_params(rp, client_id=client_id))
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        REDIRECT + "#frag",
        REDIRECT + "#",
        "javascript:alert(1)",
        "javascript://rp.example.test/callback%0aalert(1)",
        "data:text/html," + MARKUP,
        "http://rp.example.test/callback",
        "HTTPS://rp.example.test/callback",
        REDIRECT + "/",
        REDIRECT + "?x=1",
        REDIRECT + "/../evil",
        REDIRECT + "%00",
        "https://rp.example.test.evil.example/callback",
        "https://rp.example.test@evil.example/callback",
        "//evil.example/callback",
        "/callback",
        MARKUP,
        REDIRECT + "x" * 4000,
    ],
)
@pytest.mark.parametrize("with_session", [False, True])
def test_authorize_unregistered_redirect_uri_is_html_400_without_redirect(
    auth: Any, svc: Any, rp: Any, alice: Any, redirect_uri: str, with_session: bool
) -> None:
    if with_session:
        auth.login()
    before = row_counts(svc)
    resp = auth.authorize(rp, redirect_uri=redirect_uri, state=MARKUP)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example\\@rp.example.test/callback",
        'https://evil.example/"callback',
        "https://evil.example/caf\u00e9",
    ],
)
def test_authorize_redirect_uri_outside_error_charset_is_html_400(
    auth: Any, svc: Any, rp: Any, redirect_uri: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, redirect_uri=redirect_uri)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "raw",
    [
        "client_id=%ff%fe%fd&response_type=code",
        "client_id=rp&redirect_uri=%zz%&response_type=code",
        "client_id=rp&redirect_uri=https%3A%2F%2Frp.example.test%2Fcallback%ff&response_type=code",
        "%&%%&client_id=%",
        "client_id=%C0%AFrp&response_type=code",
    ],
)
def test_authorize_encoding_garbage_in_client_or_redirect_is_html_400(
    auth: Any, svc: Any, rp: Any, logged_in: Any, raw: str
) -> None:
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + raw)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("raw", ["client_id=rp&&&&response_type=code&=&==&redirect_uri"])
def test_authorize_empty_pairs_are_ignored_and_the_rest_judged(
    auth: Any, svc: Any, rp: Any, logged_in: Any, raw: str
) -> None:
    """An empty redirect_uri is an absent one: the registered URI hears that PKCE is missing."""
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + raw)
    assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before


# --- /authorize: what is asked ------------------------------------------------------


@pytest.mark.parametrize(
    "response_type",
    [
        "token",
        "id_token",
        "code token",
        "code id_token",
        "id_token token",
        "code id_token token",
        "none",
        "CODE",
        "code code",
        MARKUP,
        "",
    ],
)
def test_authorize_other_response_types_are_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, response_type: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, response_type=response_type)
    assert_error_redirect(resp, "unsupported_response_type")
    assert row_counts(svc) == before


@pytest.mark.parametrize("response_type", ['code"', "t\u00f6ken", "code\\"])
def test_authorize_response_type_outside_error_charset_is_html_400(
    auth: Any, svc: Any, rp: Any, logged_in: Any, response_type: str
) -> None:
    """RFC 6749 §4.1.2.1 error values cannot carry these characters; rather than redirect
    with a mangled error, idp answers a page."""
    before = row_counts(svc)
    resp = auth.authorize(rp, response_type=response_type)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_authorize_implicit_with_unknown_client_is_html_400(
    auth: Any, svc: Any, logged_in: Any
) -> None:
    before = row_counts(svc)
    resp = auth.client.get(
        authorize_query(
            response_type="token",
            client_id="nope",
            redirect_uri="https://evil.example/cb",
            state="s",
        )
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("case", list(PKCE_CASES))
@pytest.mark.parametrize("public", [False, True])
def test_authorize_bad_pkce_is_refused(
    auth: Any, svc: Any, rp: Any, spa: Any, logged_in: Any, case: str, public: bool
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(spa if public else rp, **PKCE_CASES[case])
    assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before


def test_authorize_public_client_without_pkce_is_refused(
    auth: Any, svc: Any, spa: Any, logged_in: Any
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(spa, code_challenge=None, code_challenge_method=None)
    assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "extra",
    [
        {"max_age": "-1"},
        {"max_age": "abc"},
        {"max_age": "1.5"},
        {"max_age": "99999999999"},
        {"max_age": "0x10"},
        {"max_age": " 10"},
        {"max_age": MARKUP},
        {"prompt": "bogus"},
        {"prompt": MARKUP},
        {"prompt": "none login bogus"},
    ],
)
def test_authorize_bad_optional_parameters_are_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, extra: dict[str, str]
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, **extra)
    assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before


@pytest.mark.parametrize("max_age", ["\u00b2", "\u2460", "\u00b9\u00b2"])
def test_authorize_unicode_digit_max_age_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, max_age: str
) -> None:
    before = row_counts(svc)
    resp = auth.authorize(rp, max_age=max_age)
    assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before


@pytest.mark.parametrize("nonce", ["n" * 600, "n" * 5000])
def test_authorize_nonce_longer_than_512_is_invalid_request(
    auth: Any, svc: Any, rp: Any, logged_in: Any, nonce: str
) -> None:
    """The nonce is stored (512 characters at most) and echoed in the ID token: a longer one
    is refused up front, the same way on every backend, and one of 512 goes through."""
    before = row_counts(svc)
    resp = auth.authorize(rp, nonce=nonce)
    assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before
    code, verifier, _ = auth.code_for(rp, nonce=nonce[:512])
    id_token = auth.exchange(rp, code, verifier).get_json()["id_token"]
    assert pyjwt.decode(id_token, options={"verify_signature": False})["nonce"] == nonce[:512]


REPEATED_AUTHORIZE = {
    "client_id": ("client_id", "rp", "nope"),
    "client_id-same": ("client_id", "rp", "rp"),
    "redirect_uri": ("redirect_uri", REDIRECT, "https://evil.example/cb"),
    "redirect_uri-same": ("redirect_uri", REDIRECT, REDIRECT),
    "response_type": ("response_type", "code", "token"),
    "scope": ("scope", "openid", "openid email"),
    "state": ("state", "one", "two"),
    "code_challenge": ("code_challenge", CHALLENGE, "b" * 43),
    "code_challenge_method": ("code_challenge_method", "S256", "plain"),
    "nonce": ("nonce", "one", "two"),
}


@pytest.mark.parametrize(
    "case",
    [c for c in REPEATED_AUTHORIZE],
)
def test_authorize_repeated_parameter_is_refused(
    auth: Any, svc: Any, rp: Any, logged_in: Any, case: str
) -> None:
    name, first, second = REPEATED_AUTHORIZE[case]
    params = list(auth.authorize_params(rp).items())
    params = [(k, v) for k, v in params if k != name] + [(name, first), (name, second)]
    before = row_counts(svc)
    resp = auth.client.get("/authorize?" + urlencode(params))
    if name in ("response_type", "client_id", "redirect_uri", "scope", "state"):
        # RFC 6749 §3.1's own parameters are checked (by authlib) before the redirect URI is
        # known: which client, which URI, which state would the error go to? None: a page.
        assert_clean_error(resp, json_body=False, status=400)
    else:
        assert_error_redirect(resp, "invalid_request")
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "form",
    [
        {"decision": "allow"},
        {"decision": "allow", "csrf_token": "garbage"},
        {"decision": "allow", "csrf_token": MARKUP},
        {"decision": "allow", "csrf_token": "x" * 5000},
    ],
)
def test_authorize_post_without_valid_csrf_is_400(
    auth: Any, svc: Any, rp: Any, logged_in: Any, form: dict[str, str]
) -> None:
    before = row_counts(svc)
    resp = auth.client.post("/authorize?" + urlencode(auth.authorize_params(rp)), data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_authorize_post_with_hostile_decision_never_500s(auth: Any, svc: Any, alice: Any) -> None:
    third = auth.oauth_client("third", first_party=False)
    auth.login()
    page = auth.client.get("/authorize?" + urlencode(auth.authorize_params(third)))
    assert page.status_code == 200
    token = csrf_from(text_of(page))
    before = row_counts(svc)
    resp = auth.client.post(
        "/authorize?" + urlencode(auth.authorize_params(third)),
        data={"decision": MARKUP, "csrf_token": token},
    )
    assert resp.status_code == 200  # the consent page again, nothing decided
    assert not INLINE_SCRIPT.search(text_of(resp))
    assert row_counts(svc) == before
