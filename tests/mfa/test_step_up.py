"""amr (RFC 8176) and acr in ID tokens; acr_values, max_age and clients that require a
second factor force a step-up (OIDC Core §3.1.2.1, §5.5.1.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.bad_input.helpers import row_counts
from tests.oauth.test_registration import initial_token, register
from tests.support.auth import AuthActions, RegisteredClient, query_of
from tests.support.jwt import claims_unverified
from tests.support.mfa import Enrolled, enrol, enrol_in_session, login_with_code, send_code


@pytest.fixture
def alice(auth: AuthActions) -> Any:
    return auth.user("alice")


@pytest.fixture
def rp(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client()


def id_token_of(auth: AuthActions, rp: RegisteredClient, **extra: Any) -> dict[str, Any]:
    return claims_unverified(auth.tokens(rp, **extra)["id_token"])


def follow_login(auth: AuthActions, resp: Any, enrolled: Enrolled) -> Any:
    """From /authorize's redirect to /login: password, code, and back to /authorize."""
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    next_url = query_of(resp.headers["Location"])["next"]
    done = login_with_code(auth, enrolled.code(auth), next=next_url)
    assert done.status_code == 303, done.get_data(as_text=True)
    return auth.client.get(done.headers["Location"])


def gets_a_code(resp: Any) -> bool:
    return resp.status_code == 302 and "code" in query_of(resp.headers["Location"])


# --- amr and acr in ID tokens ---------------------------------------------------------------
def test_a_password_login_is_amr_pwd_and_acr_1(auth: AuthActions, rp: Any, alice: Any) -> None:
    auth.login()
    claims = id_token_of(auth, rp)
    assert claims["amr"] == ["pwd"] and claims["acr"] == "1"


def test_a_login_with_a_code_is_amr_otp_mfa_and_acr_2(
    auth: AuthActions, rp: Any, alice: Any
) -> None:
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    claims = id_token_of(auth, rp)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "2"


# --- acr_values and max_age -----------------------------------------------------------------
def test_acr_values_2_steps_a_password_session_up(auth: AuthActions, rp: Any, alice: Any) -> None:
    auth.login()
    enrolled = enrol_in_session(auth)  # this session is still worth acr 1
    assert gets_a_code(auth.authorize(rp))  # nothing asked: nothing to step up to
    stepped = follow_login(auth, auth.authorize(rp, acr_values="2"), enrolled)
    assert gets_a_code(stepped)
    claims = id_token_of(auth, rp, acr_values="2")
    assert claims["acr"] == "2" and "otp" in claims["amr"]


def test_acr_values_1_is_met_by_either_and_unknown_values_are_ignored(
    auth: AuthActions, rp: Any, alice: Any
) -> None:
    auth.login()
    enrol_in_session(auth)
    for values in ("1", "urn:example:unknown", "urn:example:unknown 1", "2 1"):
        assert gets_a_code(auth.authorize(rp, acr_values=values)), values


def test_acr_values_2_without_a_factor_is_answered_with_acr_1(
    auth: AuthActions, rp: Any, alice: Any
) -> None:
    """acr_values is a voluntary request: the ID token says what the login was worth."""
    auth.login()
    assert id_token_of(auth, rp, acr_values="2")["acr"] == "1"


def test_a_step_up_with_prompt_none_is_login_required(
    auth: AuthActions, rp: Any, alice: Any
) -> None:
    auth.login()
    enrol_in_session(auth)
    resp = auth.authorize(rp, acr_values="2", prompt="none")
    assert query_of(resp.headers["Location"])["error"] == "login_required"


def test_an_mfa_session_meets_acr_values_2_without_a_prompt(
    auth: AuthActions, rp: Any, alice: Any
) -> None:
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.recovery_codes[0])
    assert gets_a_code(auth.authorize(rp, acr_values="2", prompt="none"))


def test_max_age_forces_a_new_login_with_the_code(
    auth: AuthActions, rp: Any, alice: Any, clock: Any
) -> None:
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    first = id_token_of(auth, rp)
    clock.advance(120)
    assert gets_a_code(follow_login(auth, auth.authorize(rp, max_age="60"), enrolled))
    claims = id_token_of(auth, rp, max_age="60")
    assert claims["auth_time"] >= first["auth_time"] + 120
    assert claims["acr"] == "2"


def test_repeated_acr_values_is_refused(auth: AuthActions, rp: Any, alice: Any) -> None:
    auth.login()
    params = auth.authorize_params(rp)
    query = urlencode([*params.items(), ("acr_values", "1"), ("acr_values", "2")])
    resp = auth.client.get("/authorize?" + query)
    assert query_of(resp.headers["Location"])["error"] == "invalid_request"


# --- clients that require a second factor -------------------------------------------------
def test_a_client_requiring_mfa_tells_a_user_without_a_factor_to_enrol(
    auth: AuthActions, alice: Any
) -> None:
    strict = auth.oauth_client("strict", require_mfa=True)
    auth.login()
    resp = auth.authorize(strict)
    assert resp.status_code == 403
    assert 'href="/account/security"' in resp.get_data(as_text=True)
    none = auth.authorize(strict, prompt="none")
    assert query_of(none.headers["Location"])["error"] == "login_required"


def test_a_client_requiring_mfa_accepts_an_mfa_session(auth: AuthActions, alice: Any) -> None:
    strict = auth.oauth_client("strict", require_mfa=True)
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    assert id_token_of(auth, strict)["acr"] == "2"


def test_a_client_requiring_mfa_steps_a_password_session_up(auth: AuthActions, alice: Any) -> None:
    strict = auth.oauth_client("strict", require_mfa=True)
    auth.login()
    enrolled = enrol_in_session(auth)
    resp = auth.authorize(strict)
    assert not gets_a_code(resp)
    assert gets_a_code(follow_login(auth, resp, enrolled))


def test_the_code_step_of_a_step_up_is_throttled_too(auth: AuthActions, alice: Any) -> None:
    strict = auth.oauth_client("strict", require_mfa=True)
    auth.login()
    enrol_in_session(auth)
    resp = auth.authorize(strict)
    auth.login(next=query_of(resp.headers["Location"])["next"])
    statuses = [send_code(auth, f"{n:06d}").status_code for n in range(8)]
    assert 429 in statuses and 303 not in statuses


# --- registration and discovery -------------------------------------------------------------
def test_default_acr_values_at_registration_map_onto_require_mfa(client: Any, svc: Any) -> None:
    body = {"redirect_uris": ["https://rp.example.test/cb"], "default_acr_values": ["2"]}
    resp = register(client, svc, body)
    assert resp.status_code == 201, resp.get_json()
    info = resp.get_json()
    assert info["default_acr_values"] == ["2"] and info["require_mfa"] is True
    assert svc.clients.get(info["client_id"]).require_mfa
    either = register(client, svc, {**body, "default_acr_values": ["2", "1"]}).get_json()
    assert either["require_mfa"] is False  # "1" is acceptable, so nothing is required


@pytest.mark.parametrize("values", [["urn:mace:incommon:iap:silver"], "2", [2], ["2"] * 11, [""]])
def test_bad_default_acr_values_are_refused(client: Any, svc: Any, values: Any) -> None:
    body = {"redirect_uris": ["https://rp.example.test/cb"], "default_acr_values": values}
    token = initial_token(svc)
    before = row_counts(svc)
    resp = register(client, svc, body, token)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_client_metadata"
    assert row_counts(svc) == before


def test_discovery_lists_the_acr_values(client: Any) -> None:
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["acr_values_supported"] == ["1", "2"]
    assert {"acr", "amr"} <= set(doc["claims_supported"])
