"""/logout and /account fed hostile input; nothing ends without the user's say."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.bad_input.helpers import (
    INLINE_SCRIPT,
    MARKUP,
    assert_clean_error,
    row_counts,
    text_of,
    unsigned_jwt,
)
from tests.support.auth import REDIRECT, csrf_from

# --- /logout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": "https://evil.example/bye", "client_id": "rp"},
        {"post_logout_redirect_uri": "javascript:alert(1)", "client_id": "rp"},
        {"post_logout_redirect_uri": MARKUP, "client_id": "rp", "state": MARKUP},
        {"post_logout_redirect_uri": REDIRECT, "client_id": "nope"},
        {"post_logout_redirect_uri": REDIRECT, "client_id": MARKUP},
        {"post_logout_redirect_uri": REDIRECT, "client_id": "x" * 5000},
        {"post_logout_redirect_uri": REDIRECT},
        {"post_logout_redirect_uri": REDIRECT, "id_token_hint": "a.b.c"},
        {"post_logout_redirect_uri": REDIRECT, "id_token_hint": "x" * 7000},
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_unregistered_post_logout_redirect_is_html_400(
    auth: Any, svc: Any, rp: Any, params: dict[str, str], method: str
) -> None:
    before = row_counts(svc)
    if method == "GET":
        resp = auth.client.get("/logout?" + urlencode(params))
    else:
        page = auth.client.get("/login")
        resp = auth.client.post("/logout", data={**params, "csrf_token": csrf_from(text_of(page))})
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_logout_nul_in_client_id_is_html_400(auth: Any, svc: Any, rp: Any) -> None:
    before = row_counts(svc)
    resp = auth.client.get(
        "/logout?" + urlencode({"client_id": "rp\x00", "post_logout_redirect_uri": REDIRECT})
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "x" * 7000, MARKUP, "alg-none"])
def test_logout_garbage_hint_does_not_log_out(
    auth: Any, svc: Any, client: Any, forge: Any, logged_in: Any, hint: str
) -> None:
    if hint == "alg-none":
        hint = unsigned_jwt({"alg": "none", "typ": "JWT"}, forge.claims())
    before = row_counts(svc)
    resp = client.get("/logout?" + urlencode({"id_token_hint": hint, "state": MARKUP}))
    assert resp.status_code == 200  # the confirmation page, nothing done
    assert not INLINE_SCRIPT.search(text_of(resp))
    assert row_counts(svc) == before
    assert client.get("/account").status_code == 200


def test_logout_access_token_as_hint_does_not_log_out(
    client: Any, svc: Any, tokens: dict[str, Any]
) -> None:
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["access_token"]}))
    assert resp.status_code == 200
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize("csrf", [None, "garbage", MARKUP])
def test_logout_post_without_valid_csrf_is_400(
    auth: Any, svc: Any, client: Any, logged_in: Any, csrf: str | None
) -> None:
    before = row_counts(svc)
    form = {"confirm": "yes"}
    if csrf is not None:
        form["csrf_token"] = csrf
    resp = client.post("/logout", data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before
    assert client.get("/account").status_code == 200


def test_logout_hostile_confirm_does_not_log_out(client: Any, svc: Any, logged_in: Any) -> None:
    token = csrf_from(text_of(client.get("/logout")))
    resp = client.post("/logout", data={"confirm": MARKUP, "csrf_token": token, "state": MARKUP})
    assert resp.status_code == 200
    assert not INLINE_SCRIPT.search(text_of(resp))
    assert client.get("/account").status_code == 200


# --- /account and cookies -------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie", ["x", "A" * 4000, MARKUP.replace(";", ""), "%00%ff", "\u00e9" * 10, '"quoted"']
)
def test_account_with_garbage_session_cookie_goes_to_login(
    app: Any, svc: Any, alice: Any, cookie: str
) -> None:
    client = app.test_client()
    before = row_counts(svc)
    resp = client.get("/account", headers={"Cookie": "idp_session=" + cookie})
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/login")
    assert row_counts(svc) == before


@pytest.mark.parametrize("query", ["x=" + MARKUP, "next=//evil.example", "%ff=%zz"])
def test_account_ignores_junk_query(client: Any, logged_in: Any, query: str) -> None:
    resp = client.get("/account?" + query)
    assert resp.status_code == 200
    assert not INLINE_SCRIPT.search(text_of(resp))
    assert "evil.example" not in text_of(resp)
