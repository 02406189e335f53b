"""/login and /signup fed hostile input; ``next`` never leaves the site."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.bad_input.helpers import (
    INLINE_SCRIPT,
    MARKUP,
    assert_clean_error,
    hidden_next,
    row_counts,
    same_site,
    text_of,
)
from tests.support.auth import csrf_from

# --- /login ---------------------------------------------------------------------------

# /signup is off by default (issue 10); these tests feed it hostile input.
pytestmark = pytest.mark.parametrize("config_overrides", [{"server": {"signup_enabled": True}}])


def login_post(auth: Any, **form: Any) -> Any:
    page = auth.client.get("/login")
    data = {"csrf_token": csrf_from(text_of(page)), "next": "/account"}
    data.update(form)
    return auth.client.post("/login", data={k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("a" * 10240, "whatever-password"),
        ("alice", "p" * 10240),
        (MARKUP, "whatever-password"),
        ('"><img src=x onerror=alert(1)>', "whatever-password"),
        ("", ""),
        ("alice", ""),
        ("alice\n", "correct horse battery"),
        (" alice", "correct horse battery"),
        ("ALICE\u200b", "correct horse battery"),
        ("\ufeffalice", "correct horse battery"),
    ],
)
def test_login_bad_credentials_are_a_clean_401_page(
    auth: Any, svc: Any, alice: Any, username: str, password: str
) -> None:
    before = row_counts(svc)
    resp = login_post(auth, username=username, password=password)
    assert_clean_error(resp, json_body=False, status=401)
    assert "<img" not in text_of(resp)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("\x00", "whatever-password"),
        ("alice\x00", "whatever-password"),
        ("\x00" * 300, "whatever-password"),
        ("alice", "correct horse battery\x00"),
    ],
)
def test_login_nul_in_a_field_is_a_clean_400_page(
    auth: Any, svc: Any, alice: Any, username: str, password: str
) -> None:
    """NUL is refused in any parameter before the credentials are looked at."""
    before = row_counts(svc)
    resp = login_post(auth, username=username, password=password)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_login_form_encoding_garbage(auth: Any, svc: Any, alice: Any) -> None:
    page = auth.client.get("/login")
    token = csrf_from(text_of(page))
    before = row_counts(svc)
    body = b"csrf_token=" + token.encode() + b"&username=%ff%fe\xff&password=%zz%&next=%"
    resp = auth.client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("csrf", [None, "", "garbage", MARKUP, "x" * 5000, "other-session"])
def test_login_without_valid_csrf_is_400(
    auth: Any, app: Any, svc: Any, alice: Any, csrf: str | None
) -> None:
    if csrf == "other-session":
        other = app.test_client()
        csrf = csrf_from(text_of(other.get("/login")))
    auth.client.get("/login")
    before = row_counts(svc)
    form = {"username": "alice", "password": "correct horse battery", "next": "/account"}
    if csrf is not None:
        form["csrf_token"] = csrf
    resp = auth.client.post("/login", data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before
    assert auth.client.get("/account").status_code == 303  # still not logged in


def test_login_with_garbage_csrf_cookie_is_400(app: Any, svc: Any, alice: Any) -> None:
    client = app.test_client()
    token = csrf_from(text_of(client.get("/login")))
    fresh = app.test_client()
    before = row_counts(svc)
    resp = fresh.post(
        "/login",
        headers={"Cookie": "idp_csrf=" + "A" * 3000},
        data={"username": "alice", "password": "correct horse battery", "csrf_token": token},
    )
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


OPEN_REDIRECTS = [
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "////evil.example",
    "https://evil.example",
    "http://evil.example/account",
    "HTTPS://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/ /evil.example",
    " //evil.example",
    "\x00//evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html," + MARKUP,
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/.//evil.example",
    "/..//evil.example",
    "//evil.example@127.0.0.1",
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_login_next_never_leaves_the_site(auth: Any, alice: Any, target: str) -> None:
    page = auth.client.get("/login?" + urlencode({"next": target}))
    if "\x00" in target:
        assert page.status_code == 400, "NUL is refused in any parameter"
        return
    assert page.status_code == 200
    assert same_site(hidden_next(text_of(page))), hidden_next(text_of(page))
    resp = auth.client.post(
        "/login",
        data={
            "username": "alice",
            "password": "correct horse battery",
            "next": target,
            "csrf_token": csrf_from(text_of(page)),
        },
    )
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert same_site(location), location


@pytest.mark.parametrize("page", ["/login", "/signup"])
@pytest.mark.parametrize(
    "target", ["/account\r\nLocation: https://evil.example", "/account\nSet-Cookie: x=1", "/\r"]
)
def test_next_with_newline_is_not_followed(
    auth: Any, svc: Any, alice: Any, page: str, target: str
) -> None:
    form_page = auth.client.get(page + "?" + urlencode({"next": target}))
    assert form_page.status_code == 200
    resp = auth.client.post(
        page,
        data={
            "username": "alice" if page == "/login" else "bob",
            "password": "correct horse battery",
            "email": "bob@example.test",
            "next": target,
            "csrf_token": csrf_from(text_of(form_page)),
        },
    )
    assert resp.status_code == 303, text_of(resp)[:300]
    assert same_site(resp.headers["Location"]), resp.headers["Location"]


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example"]
)
def test_signup_next_never_leaves_the_site(auth: Any, svc: Any, target: str) -> None:
    page = auth.client.get("/signup?" + urlencode({"next": target}))
    assert page.status_code == 200
    assert same_site(hidden_next(text_of(page))), hidden_next(text_of(page))
    resp = auth.client.post(
        "/signup",
        data={
            "username": "bob",
            "password": "correct horse battery",
            "email": "bob@example.test",
            "next": target,
            "csrf_token": csrf_from(text_of(page)),
        },
    )
    assert resp.status_code == 303
    assert same_site(resp.headers["Location"]), resp.headers["Location"]


@pytest.mark.parametrize("hint", [MARKUP, '"><script>alert(1)</script>', "x" * 5000])
def test_login_page_never_reflects_login_hint_markup(client: Any, hint: str) -> None:
    resp = client.get("/login?" + urlencode({"login_hint": hint, "next": MARKUP}))
    assert resp.status_code == 200
    assert not INLINE_SCRIPT.search(text_of(resp))


# --- /signup --------------------------------------------------------------------------


def signup_post(auth: Any, **form: Any) -> Any:
    page = auth.client.get("/signup")
    data = {
        "csrf_token": csrf_from(text_of(page)),
        "username": "bob",
        "password": "correct horse battery",
        "email": "bob@example.test",
    }
    data.update(form)
    return auth.client.post("/signup", data={k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    "form",
    [
        {"email": "not-an-email"},
        {"email": "a@b@c.example"},
        {"email": "a b@example.test"},
        {"email": MARKUP + "@example.test"},
        {"email": "bob@" + MARKUP},
        {"email": '"bob"@example.test'},
        {"email": "@example.test"},
        {"email": "bob@"},
        {"email": "x" * 10000 + "@example.test"},
        {"username": MARKUP},
        {"username": '"><img src=x onerror=alert(1)>'},
        {"username": ""},
        {"username": "a" * 10240},
        {"username": "bob\x00"},
        {"username": "b\u00f6b"},
        {"username": "bob bob"},
        {"username": ".bob"},
        {"password": "short"},
        {"password": "p" * 10240},
        {"password": ""},
    ],
)
def test_signup_invalid_input_is_a_clean_400_page(
    auth: Any, svc: Any, form: dict[str, str]
) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, **form)
    assert_clean_error(resp, json_body=False, status=400)
    assert "<img" not in text_of(resp)
    assert row_counts(svc) == before


@pytest.mark.parametrize(
    "form",
    [
        {"username": "bob\n"},
        {"email": "bob@example.test\n"},
    ],
)
def test_signup_trailing_newline_is_refused(auth: Any, svc: Any, form: dict[str, str]) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, **form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("email", ["bob\x00@example.test", "bob@example.test\x00"])
def test_signup_nul_in_email_is_refused(auth: Any, svc: Any, email: str) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, email=email)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


def test_signup_taken_username_is_a_clean_400_page(auth: Any, svc: Any, alice: Any) -> None:
    before = row_counts(svc)
    resp = signup_post(auth, username="alice")
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before


@pytest.mark.parametrize("csrf", [None, "garbage", MARKUP])
def test_signup_without_valid_csrf_is_400(auth: Any, svc: Any, csrf: str | None) -> None:
    auth.client.get("/signup")
    before = row_counts(svc)
    form = {"username": "bob", "password": "correct horse battery"}
    if csrf is not None:
        form["csrf_token"] = csrf
    resp = auth.client.post("/signup", data=form)
    assert_clean_error(resp, json_body=False, status=400)
    assert row_counts(svc) == before
