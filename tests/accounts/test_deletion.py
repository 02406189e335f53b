"""Deleting a user (issue 13 item 7; ASVS 7.4.2; GDPR art. 17): one transaction kills
everything they hold, tells Shared Signals receivers (session-revoked, account-purged),
removes their personal data from every table, and leaves the audit trail a pseudonym."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from idp.accounts import erasure
from idp.accounts.models import User
from idp.audit.models import AuditEvent, SecurityEvent
from idp.audit.services import security_event
from idp.keys.crypto import load_kek
from idp.models import Base
from idp.operator import Actor
from tests.accounts.test_consents import consented_tokens, introspect, refresh
from tests.conftest import ISSUER, TEST_KEK
from tests.ssf.test_transmitter import Receiver, verify_set
from tests.support.auth import AuthActions

pytestmark = pytest.mark.usefixtures("no_background_worker")

OPS = Actor("ops", "192.0.2.7")
PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
# Distinctive, so that finding them anywhere in the database means they were left behind.
USERNAME, EMAIL, NAME = "zelda.quux", "Zelda.Quux@mail.example", "Zelda Quuxington"
# Table columns the user id may stay in, until they expire: what receivers and resource
# servers still need to act on the deletion (idp.accounts.erasure).
ID_MAY_STAY = {"revocations", "ssf_events", "backchannel_deliveries"}


def every_value(svc: Any) -> dict[str, list[str]]:
    """Every value of every row of every table, as text, by table."""
    found: dict[str, list[str]] = {}
    with svc.db.read() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                found.setdefault(table.name, []).extend(
                    json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
                    for v in row
                )
    return found


def tables_mentioning(svc: Any, *terms: str) -> set[str]:
    wanted = [t.lower() for t in terms]
    return {
        table
        for table, values in every_value(svc).items()
        if any(w in v.lower() for v in values for w in wanted)
    }


class Zelda:
    """A user who has left traces everywhere: created by an operator, logged in twice,
    consented to a third-party app, holds its tokens, had a refresh token reused, and had
    a login lockout recorded under her name as someone typed it."""

    def __init__(self, app: Any, auth: AuthActions, svc: Any) -> None:
        self.user = svc.actions.create_user(
            OPS, USERNAME, "correct horse battery", email=EMAIL, name=NAME
        )
        self.id = str(self.user.id)
        self.rp = auth.oauth_client(
            "photos",
            first_party=False,
            scope="openid email profile offline_access",
            backchannel_logout_uri="https://photos.example.test/bcl",
        )
        self.rs = auth.oauth_client(
            "rs",
            grant_types=["client_credentials"],
            scope="api",
            redirect_uri="https://rs.example.test/unused",
        )
        self.browser = AuthActions(app, app.test_client())
        assert self.browser.login(USERNAME, "correct horse battery").status_code == 303
        stolen = consented_tokens(self.browser, self.rp)
        newer = refresh(self.browser, self.rp, stolen["refresh_token"]).get_json()
        assert refresh(self.browser, self.rp, stolen["refresh_token"]).status_code == 400
        assert "refresh_token" in newer  # reuse: a security event, the session killed
        assert self.browser.login(USERNAME, "correct horse battery").status_code == 303
        self.tokens = self.browser.tokens(self.rp, scope="openid email offline_access")
        security_event(svc.db, svc.clock, "login_locked", username="ZELDA.quux", ip="192.0.2.9")


@pytest.fixture
def zelda(app: Any, auth: AuthActions, svc: Any) -> Zelda:
    return Zelda(app, auth, svc)


def test_a_deleted_users_tokens_stop_working_and_their_data_is_gone(
    auth: AuthActions, svc: Any, zelda: Zelda
) -> None:
    assert tables_mentioning(svc, USERNAME, EMAIL, NAME)  # the test can see them
    assert introspect(auth, zelda.rs, zelda.tokens["access_token"])["active"] is True
    deleted = svc.actions.delete_user(zelda.id, OPS, "erasure request from zelda.quux")
    assert deleted is not None and deleted.sessions_killed == 1
    # Nothing she held works any more.
    assert introspect(auth, zelda.rs, zelda.tokens["access_token"]) == {"active": False}
    assert introspect(auth, zelda.rs, zelda.tokens["refresh_token"]) == {"active": False}
    refused = refresh(zelda.browser, zelda.rp, zelda.tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    userinfo = auth.client.get(
        "/userinfo", headers={"Authorization": f"Bearer {zelda.tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    assert zelda.browser.client.get("/account").status_code == 303
    # Her name, username and email are nowhere in the database, in any case.
    assert tables_mentioning(svc, USERNAME, EMAIL, NAME) == set()
    assert tables_mentioning(svc, zelda.id) <= ID_MAY_STAY
    # (A login attempt with the name is counted under the name typed, account or not.)
    assert zelda.browser.login(USERNAME, "correct horse battery").status_code == 401


def test_the_audit_trail_names_a_deleted_user_by_one_stable_pseudonym(
    svc: Any, zelda: Zelda
) -> None:
    deleted = svc.actions.delete_user(zelda.id, OPS, "erasure request from Zelda Quuxington")
    assert deleted is not None
    key = erasure.pseudonym_key(load_kek(TEST_KEK, ""))
    alias = erasure.pseudonym(key, zelda.id)
    assert deleted.pseudonym == alias and alias.startswith("deleted-user-") and len(alias) == 29
    with svc.db.read() as s:
        events = {e.action: e for e in s.scalars(select(AuditEvent))}
        security = list(s.scalars(select(SecurityEvent)))
    assert events["user.delete"].target == alias and events["user.delete"].actor == "ops"
    assert events["user.delete"].reason == f"erasure request from {alias}"
    assert (
        events["user.create"].target == alias and events["user.create"].details["username"] == alias
    )
    assert events["login"].actor == alias
    assert events["consent.grant"].actor == alias
    assert events["session.kill"].details["user"] == alias
    reuse = [e for e in security if e.kind == "refresh_token_reuse"]
    assert reuse and all(e.user_id == alias for e in reuse)
    [locked] = [e for e in security if e.kind == "login_locked"]
    assert locked.details["username"] == alias and locked.details["ip"] == "192.0.2.9"


def test_receivers_hear_session_revoked_and_account_purged(
    auth: AuthActions, client: Any, svc: Any, zelda: Zelda
) -> None:
    rx = Receiver(auth)
    stream = rx.create(events_requested=[REVOKED, PURGED])
    assert set(stream["events_delivered"]) == {REVOKED, PURGED}
    svc.actions.delete_user(zelda.id, OPS, "erased")
    got = rx.poll(stream)
    claims = [verify_set(client, token, "rx") for token in got["sets"].values()]
    kinds = sorted(next(iter(c["events"])) for c in claims)
    assert kinds == [REVOKED, PURGED]
    [purged] = [c for c in claims if PURGED in c["events"]]
    assert purged["sub_id"] == {"format": "iss_sub", "iss": ISSUER, "sub": zelda.id}
    assert len({c["txn"] for c in claims}) == 1  # one transaction (RFC 8417 §2.2)
    assert "erased" in json.dumps(claims) and USERNAME not in json.dumps(claims)


def test_the_username_is_free_again_and_the_new_account_is_someone_else(
    svc: Any, zelda: Zelda
) -> None:
    first = svc.actions.delete_user(zelda.id, OPS, "erased")
    assert first is not None
    again = svc.actions.create_user(OPS, USERNAME, None, email=EMAIL)
    assert again.id != zelda.id
    with svc.db.read() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.target == again.id)).one()
        assert s.scalar(select(User.id).where(User.username == USERNAME)) == again.id
    assert svc.actions.delete_user(again.id, OPS, "again").pseudonym != first.pseudonym


def test_a_deletion_that_fails_before_its_commit_leaves_everything(
    auth: AuthActions, svc: Any, zelda: Zelda, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: Any, **__: Any) -> int:
        raise RuntimeError("crash before the commit")

    monkeypatch.setattr(erasure, "pseudonymize_records", crash)
    before = every_value(svc)
    with pytest.raises(RuntimeError, match="crash"):
        svc.actions.delete_user(zelda.id, OPS, "erased")
    assert every_value(svc) == before
    assert introspect(auth, zelda.rs, zelda.tokens["access_token"])["active"] is True
    assert zelda.browser.client.get("/account").status_code == 200


def test_deleting_an_unknown_user_changes_nothing(svc: Any, zelda: Zelda) -> None:
    before = every_value(svc)
    assert svc.actions.delete_user("0" * 32, OPS, "r") is None
    assert svc.actions.delete_user("nobody", OPS, "r") is None
    assert every_value(svc) == before


def test_a_user_created_without_a_password_cannot_log_in(
    auth: AuthActions, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.accounts import passwords

    svc.actions.create_user(OPS, "nopass", None)
    with svc.db.read() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "nopass"))
    assert stored == passwords.UNUSABLE and not passwords.usable(stored)
    for guess in ("!", "", "correct horse battery", passwords.UNUSABLE * 8):
        assert auth.login("nopass", guess).status_code == 401
    # The dummy hash is checked instead, so the answer takes as long as a wrong password.
    checked: list[str] = []

    class Recording(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checked.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(passwords, "HASHER", Recording(time_cost=1, memory_cost=8, parallelism=1))
    assert passwords.verify(stored, "anything at all") is False
    assert checked == [passwords._DUMMY]
