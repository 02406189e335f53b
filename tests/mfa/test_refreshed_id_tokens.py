"""ID tokens issued on refresh describe the login that opened the refresh family: the same
``auth_time``, ``amr`` and ``acr`` as the first ID token (OIDC Core §12.2). Families opened
before idp recorded them (migration 0017 left their columns null) carry neither."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import null, select, update

from idp.db import RawCursor
from idp.refresh.models import RefreshFamily
from tests.support.auth import AuthActions, RegisteredClient
from tests.support.jwt import claims_unverified
from tests.support.mfa import enrol, login_with_code

SCOPE = "openid email offline_access"


@pytest.fixture
def alice(auth: AuthActions) -> Any:
    return auth.user("alice")


@pytest.fixture
def rp(auth: AuthActions) -> RegisteredClient:
    return auth.oauth_client(scope="openid profile email offline_access")


def refresh(auth: AuthActions, rp: RegisteredClient, token: str) -> dict[str, Any]:
    resp = auth.token(rp, {"grant_type": "refresh_token", "refresh_token": token})
    assert resp.status_code == 200, resp.get_json()
    return dict(resp.get_json())


def two_refreshes(auth: AuthActions, rp: RegisteredClient) -> list[dict[str, Any]]:
    """The first ID token's claims, then those of two refreshes down the chain."""
    first = auth.tokens(rp, scope=SCOPE)
    second = refresh(auth, rp, first["refresh_token"])
    third = refresh(auth, rp, second["refresh_token"])
    return [claims_unverified(t["id_token"]) for t in (first, second, third)]


def same_login(claims: list[dict[str, Any]]) -> None:
    first = claims[0]
    for later in claims[1:]:
        assert later["iat"] >= first["iat"]
        assert (later["auth_time"], later["amr"], later["acr"]) == (
            first["auth_time"],
            first["amr"],
            first["acr"],
        )


def test_a_refreshed_id_token_keeps_a_password_logins_amr_and_acr(
    auth: AuthActions, rp: RegisteredClient, alice: Any
) -> None:
    auth.login()
    claims = two_refreshes(auth, rp)
    assert claims[0]["amr"] == ["pwd"] and claims[0]["acr"] == "1"
    same_login(claims)


def test_a_refreshed_id_token_keeps_a_totp_logins_amr_and_acr(
    auth: AuthActions, rp: RegisteredClient, alice: Any
) -> None:
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    claims = two_refreshes(auth, rp)
    assert claims[0]["amr"] == ["pwd", "otp", "mfa"] and claims[0]["acr"] == "2"
    same_login(claims)


def test_the_family_stores_amr_and_acr(
    auth: AuthActions, rp: RegisteredClient, alice: Any, svc: Any
) -> None:
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    auth.tokens(rp, scope=SCOPE)
    with svc.db.read() as s:
        [family] = s.scalars(select(RefreshFamily))
        assert (family.amr, family.acr) == (["pwd", "otp", "mfa"], "2")


def test_a_family_from_before_migration_0017_refreshes_without_amr_or_acr(
    auth: AuthActions, rp: RegisteredClient, alice: Any, svc: Any
) -> None:
    enrolled = enrol(auth)
    login_with_code(auth, enrolled.code(auth))
    first = auth.tokens(rp, scope=SCOPE)
    # What the migration leaves in rows it finds: SQL NULL in both columns.
    with svc.db.transaction() as s:
        s.execute(update(RefreshFamily).values(amr=null(), acr=null()))
    second = refresh(auth, rp, first["refresh_token"])
    claims = claims_unverified(second["id_token"])
    assert "amr" not in claims and "acr" not in claims
    assert claims["auth_time"] == claims_unverified(first["id_token"])["auth_time"]
    # And on down the chain, still without.
    third = claims_unverified(refresh(auth, rp, second["refresh_token"])["id_token"])
    assert "amr" not in third and "acr" not in third


def test_the_rotation_runs_as_many_statements_as_before(
    auth: AuthActions, rp: RegisteredClient, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """amr and acr come with the family row the rotation already reads (issue 8 measured
    the hot path): one read, spend, child, touch, access token. Nothing more."""
    auth.login()
    first = auth.tokens(rp, scope=SCOPE)
    ran: list[str] = []
    execute = RawCursor.execute

    def counted(self: RawCursor, statement: Any, params: dict[str, Any]) -> int:
        ran.append(str(statement.stmt).split()[0])
        return execute(self, statement, params)

    monkeypatch.setattr(RawCursor, "execute", counted)
    claims = claims_unverified(refresh(auth, rp, first["refresh_token"])["id_token"])
    assert claims["amr"] == ["pwd"]
    assert ran == ["SELECT", "UPDATE", "INSERT", "UPDATE", "INSERT"]
