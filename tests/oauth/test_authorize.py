"""The authorization endpoint as a table of checks (RFC 6749 §4.1.1, RFC 7636, RFC 9207,
RFC 9700, OIDC Core §3.1.2)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from idp.accounts.models import Consent
from idp.oauth.models import AuthorizationCode
from tests.conftest import ISSUER
from tests.support.auth import csrf_from, query_of


def codes(svc):
    with svc.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuthorizationCode))


@pytest.fixture
def logged_in(auth):
    auth.user()
    auth.login()
    return auth


def error_redirect(resp, rp):
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"].startswith(rp.redirect_uri + "?")
    q = query_of(resp.headers["Location"])
    assert q["iss"] == ISSUER
    return q


def test_not_logged_in_goes_to_login_and_comes_back(auth):
    auth.user()
    rp = auth.oauth_client()
    resp = auth.authorize(rp, login_hint="alice")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=%2Fauthorize")
    assert "login_hint=alice" in resp.headers["Location"]
    next_url = query_of(resp.headers["Location"])["next"]
    back = auth.login(next=next_url)
    assert back.status_code == 303 and back.headers["Location"] == next_url
    final = auth.client.get(next_url)
    assert "code" in query_of(final.headers["Location"])


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "nope"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "https://rp.example.test/callback/"},
        {"redirect_uri": "https://rp.example.test/callback?x=1"},
        {"redirect_uri": "HTTPS://rp.example.test/callback"},
    ],
)
def test_bad_client_or_redirect_uri_never_redirects(logged_in, svc, change):
    rp = logged_in.oauth_client()
    resp = logged_in.authorize(rp, **change)
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    assert codes(svc) == 0


def test_loopback_redirect_may_vary_only_in_port(logged_in):
    native = logged_in.oauth_client("native", public=True, redirect_uri="http://127.0.0.1/cb")
    ok = logged_in.authorize(native, redirect_uri="http://127.0.0.1:53117/cb")
    assert ok.status_code == 302 and ok.headers["Location"].startswith("http://127.0.0.1:53117/cb?")
    bad = logged_in.authorize(native, redirect_uri="http://127.0.0.1:53117/other")
    assert bad.status_code == 400


def test_only_native_apps_may_vary_the_loopback_port(logged_in):
    """RFC 8252 §7.3 is for native apps (public clients); a confidential client's
    redirect URI matches exactly (issue 10 item 5)."""
    rp = logged_in.oauth_client(redirect_uri="http://127.0.0.1/cb")
    assert logged_in.authorize(rp, redirect_uri="http://127.0.0.1:53117/cb").status_code == 400
    assert logged_in.authorize(rp, redirect_uri="http://127.0.0.1/cb").status_code == 302


def test_a_native_app_is_asked_again_whatever_was_consented(logged_in):
    """RFC 8252 §8.6: on a loopback redirect any local program can claim a public
    client's id, so remembered consent is not honoured: prompt=none gets
    consent_required, and without it the user sees the consent page."""
    native = logged_in.oauth_client(
        "native", public=True, first_party=False, redirect_uri="http://127.0.0.1/cb"
    )
    page = logged_in.authorize(native)
    assert page.status_code == 200 and "decision" in page.get_data(as_text=True)
    params = logged_in.authorize_params(native)
    allowed = logged_in.client.post(
        "/authorize?" + urlencode(params),
        data={"decision": "allow", "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert allowed.status_code == 303
    silent = logged_in.authorize(native, prompt="none")
    assert silent.status_code == 302
    assert query_of(silent.headers["Location"])["error"] == "consent_required"
    again = logged_in.authorize(native)
    assert again.status_code == 200 and "decision" in again.get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"request_uri": "https://rp.example.test/req"}, "request_uri_not_supported"),
        ({"response_mode": "form_post"}, "invalid_request"),
    ],
)
def test_invalid_requests_are_reported_to_the_validated_redirect_uri(logged_in, svc, change, error):
    rp = logged_in.oauth_client()
    resp = logged_in.authorize(rp, state="st8", **change)
    q = error_redirect(resp, rp)
    assert q["error"] == error
    assert q["state"] == "st8"
    assert "code" not in q
    assert codes(svc) == 0


def test_public_client_must_use_pkce(logged_in):
    rp = logged_in.oauth_client("spa", public=True)
    resp = logged_in.authorize(rp, code_challenge=None, code_challenge_method=None)
    assert error_redirect(resp, rp)["error"] == "invalid_request"


@pytest.mark.parametrize("config_overrides", [{"oauth": {"pkce_required": False}}])
def test_confidential_client_may_skip_pkce_when_configured(logged_in, config_overrides):
    rp = logged_in.oauth_client()
    code, _, _ = logged_in.code_for(rp, code_challenge=None, code_challenge_method=None)
    assert logged_in.exchange(rp, code, None).status_code == 200


def test_unknown_parameters_are_ignored(logged_in):
    rp = logged_in.oauth_client()
    resp = logged_in.authorize(rp, foo="bar", ui_locales="de")
    assert "code" in query_of(resp.headers["Location"])


def test_prompt_none_without_session_answers_login_required(auth):
    auth.user()
    rp = auth.oauth_client()
    q = error_redirect(auth.authorize(rp, prompt="none", state="x"), rp)
    assert q["error"] == "login_required" and q["state"] == "x"


def test_prompt_login_forces_a_fresh_login(logged_in):
    rp = logged_in.oauth_client()
    resp = logged_in.authorize(rp, prompt="login")
    assert resp.headers["Location"].startswith("/login?")
    next_url = query_of(resp.headers["Location"])["next"]
    assert "prompt" not in next_url
    logged_in.login(next=next_url)
    assert "code" in query_of(logged_in.client.get(next_url).headers["Location"])


def test_max_age_exceeded_asks_for_login_again(logged_in, clock):
    rp = logged_in.oauth_client()
    clock.advance(120)
    assert logged_in.authorize(rp, max_age="60").headers["Location"].startswith("/login?")
    assert "code" in query_of(logged_in.authorize(rp, max_age="600").headers["Location"])


def test_a_consent_posted_after_max_age_keeps_its_fields_out_of_next(logged_in, clock):
    """Issue 10: the login redirect of a stale consent POST carries the authorization
    request, not the form's decision or CSRF token."""
    rp = logged_in.oauth_client(first_party=False)
    params = logged_in.authorize_params(rp, max_age="60")
    page = logged_in.client.get("/authorize?" + urlencode(params))
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    clock.advance(120)
    resp = logged_in.client.post(
        "/authorize?" + urlencode(params), data={"decision": "allow", "csrf_token": token}
    )
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?")
    next_url = query_of(resp.headers["Location"])["next"]
    assert "csrf_token" not in next_url and "decision" not in next_url and token not in next_url
    assert "client_id=" in next_url and "max_age=60" in next_url


def test_third_party_client_asks_for_consent_and_remembers_it(logged_in, svc):
    rp = logged_in.oauth_client(first_party=False, name="Photo <b>Printer</b>")
    params = logged_in.authorize_params(rp)
    page = logged_in.client.get("/authorize?" + urlencode(params))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Photo &lt;b&gt;Printer&lt;/b&gt; wants to" in html
    resp = logged_in.client.post(
        "/authorize?" + urlencode(params), data={"decision": "allow", "csrf_token": csrf_from(html)}
    )
    assert resp.status_code == 303
    assert "code" in query_of(resp.headers["Location"])
    with svc.db.transaction() as s:
        assert s.scalar(select(Consent.scope)) == "openid profile email"
    again = logged_in.authorize(rp)
    assert again.status_code == 302 and "code" in query_of(again.headers["Location"])
    # prompt=consent asks again even when remembered.
    assert logged_in.authorize(rp, prompt="consent").status_code == 200


def test_denied_consent_returns_access_denied(logged_in, svc):
    rp = logged_in.oauth_client(first_party=False)
    params = logged_in.authorize_params(rp)
    page = logged_in.client.get("/authorize?" + urlencode(params))
    resp = logged_in.client.post(
        "/authorize?" + urlencode(params),
        data={"decision": "deny", "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert resp.status_code == 303
    q = query_of(resp.headers["Location"])
    assert q["error"] == "access_denied" and q["iss"] == ISSUER
    assert codes(svc) == 0


def test_an_authorization_request_may_be_posted_as_a_form(logged_in):
    """OIDC Core §3.1.2.1: POST with the parameters form-encoded, no CSRF token (it only
    starts a flow); a consent page then posts the decision back to the same request."""
    first = logged_in.oauth_client()
    resp = logged_in.client.post("/authorize", data=logged_in.authorize_params(first))
    assert resp.status_code == 303 and "code" in query_of(resp.headers["Location"])
    third = logged_in.oauth_client("third", first_party=False)
    page = logged_in.client.post("/authorize", data=logged_in.authorize_params(third))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    found = re.search(r'<form method="post" action="([^"]+)"', html)
    assert found is not None
    action = found[1].replace("&amp;", "&")
    assert "client_id=third" in action and "csrf_token" not in action
    decided = logged_in.client.post(
        action, data={"decision": "allow", "csrf_token": csrf_from(html)}
    )
    assert decided.status_code == 303 and "code" in query_of(decided.headers["Location"])


def test_consent_post_needs_csrf_token(logged_in, svc):
    rp = logged_in.oauth_client(first_party=False)
    params = logged_in.authorize_params(rp)
    resp = logged_in.client.post("/authorize?" + urlencode(params), data={"decision": "allow"})
    assert resp.status_code == 400
    assert codes(svc) == 0


def test_prompt_none_without_consent_answers_consent_required(logged_in):
    rp = logged_in.oauth_client(first_party=False)
    assert error_redirect(logged_in.authorize(rp, prompt="none"), rp)["error"] == "consent_required"


def test_scope_is_narrowed_to_what_the_client_may_ask(logged_in):
    rp = logged_in.oauth_client(scope="openid email")
    tokens = logged_in.tokens(rp, scope="openid email profile admin")
    assert tokens["scope"] == "openid email"


def test_authorize_sends_no_cors_headers(logged_in):
    rp = logged_in.oauth_client()
    resp = logged_in.authorize(rp)
    assert resp.status_code == 302 and "code" in query_of(resp.headers["Location"])
    assert "Access-Control-Allow-Origin" not in resp.headers


# --- id_token_hint (OIDC Core §3.1.2.1) --------------------------------------------


def test_id_token_hint_of_the_signed_in_user_answers_prompt_none(logged_in, clock):
    rp = logged_in.oauth_client()
    hint = logged_in.tokens(rp)["id_token"]
    clock.advance(7200)  # an expired ID token is still a hint
    logged_in.client.get("/account")  # the session stays alive
    resp = logged_in.authorize(rp, prompt="none", id_token_hint=hint)
    assert "code" in query_of(resp.headers["Location"]), resp.headers["Location"]


def test_id_token_hint_of_another_user_is_not_answered_by_this_session(logged_in):
    rp = logged_in.oauth_client()
    hint_for_alice = logged_in.tokens(rp)["id_token"]
    logged_in.user("bob")
    logged_in.login("bob")
    q = error_redirect(
        logged_in.authorize(rp, prompt="none", id_token_hint=hint_for_alice, state="s"), rp
    )
    assert q["error"] == "login_required" and q["state"] == "s"
    resp = logged_in.authorize(rp, id_token_hint=hint_for_alice)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?")
    next_url = query_of(resp.headers["Location"])["next"]
    logged_in.login("alice", next=next_url)
    assert "code" in query_of(logged_in.client.get(next_url).headers["Location"])


@pytest.mark.parametrize("kind", ["access_token", "garbage", "foreign"])
def test_id_token_hint_that_is_not_our_id_token_is_invalid_request(logged_in, kind):
    from joserfc import jwt
    from joserfc.jwk import ECKey

    rp = logged_in.oauth_client()
    issued = logged_in.tokens(rp)
    hint = {
        "access_token": issued["access_token"],
        "garbage": "not.a.jwt",
        "foreign": jwt.encode(
            {"alg": "ES256"},
            {"iss": ISSUER, "sub": "x", "aud": "rp"},
            ECKey.generate_key("P-256"),
        ),
    }[kind]
    before = codes(logged_in.svc)
    q = error_redirect(logged_in.authorize(rp, id_token_hint=hint, state="s"), rp)
    assert q["error"] == "invalid_request" and "id_token_hint" in q["error_description"]
    assert codes(logged_in.svc) == before
