"""Operator actions (idp.operator): one way for the CLI, the dashboard and the admin API,
each one transaction with its revocations, back-channel logouts and audit record
(issue 9 item 2)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from idp import operator
from idp.audit.models import AuditEvent
from idp.operator import Actor
from idp.refresh.models import RefreshFamily
from idp.revocations.models import RevocationEntry
from idp.sessions.models import BackchannelDelivery, BrowserSession
from tests.support.auth import AuthActions

pytestmark = pytest.mark.usefixtures("no_background_worker")

OPS = Actor("ops", "192.0.2.7")


def count(svc: Any, model: Any, *where: Any) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def snapshot(svc: Any) -> dict[str, int]:
    return {
        "live sessions": count(svc, BrowserSession, BrowserSession.ended_at.is_(None)),
        "revoked families": count(svc, RefreshFamily, RefreshFamily.revoked_at.is_not(None)),
        "revocations": count(svc, RevocationEntry),
        "deliveries": count(svc, BackchannelDelivery),
        "audit": count(svc, AuditEvent),
    }


@pytest.fixture
def holder(auth: AuthActions, svc: Any) -> str:
    """A user with two live sessions, each with a refresh family, at a client that
    takes back-channel logouts; returns the user id."""
    user = auth.user()
    rp = auth.oauth_client(
        scope="openid offline_access", backchannel_logout_uri="https://rp.example.test/bcl"
    )
    for _ in range(2):
        auth.client.delete_cookie("idp_session")
        auth.login()
        auth.tokens(rp, scope="openid offline_access")
    assert snapshot(svc)["live sessions"] == 2
    return str(user.id)


def test_revoking_a_user_is_one_record_of_everything(holder: str, svc: Any) -> None:
    before = snapshot(svc)
    assert svc.actions.revoke_user(holder, OPS, "phished") == 2
    after = snapshot(svc)
    assert after["live sessions"] == 0 and after["revoked families"] == 2
    # "user" not-before, two sids, and the families' access tokens (jti).
    assert after["revocations"] - before["revocations"] >= 3
    assert after["deliveries"] - before["deliveries"] == 2
    with svc.db.read() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "ops"))]
        summary = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.kill_sessions")
        ).one()
    assert sorted(actions) == ["session.kill", "session.kill", "user.kill_sessions"]
    assert summary.reason == "phished" and summary.ip == OPS.ip
    assert summary.details["sessions_killed"] == 2


@pytest.mark.parametrize(
    "action",
    [
        lambda svc, uid: svc.actions.revoke_user(uid, OPS, "r"),
        lambda svc, uid: svc.actions.set_disabled(uid, True, OPS, "r"),
        lambda svc, uid: svc.actions.revoke_client("rp", OPS, "r"),
        lambda svc, uid: svc.actions.kill_session(first_sid(svc), OPS, "r"),
        lambda svc, uid: svc.actions.rotate_keys(OPS, "r"),
        lambda svc, uid: svc.actions.delete_user(uid, OPS, "r"),
    ],
    ids=["revoke-user", "disable", "revoke-client", "kill-session", "rotate-keys", "delete-user"],
)
def test_an_action_that_fails_before_its_commit_leaves_nothing_behind(
    holder: str, svc: Any, monkeypatch: pytest.MonkeyPatch, action: Any
) -> None:
    """A crash at the last step (the audit record) rolls the whole action back: no
    action without its audit record, no revocation without its action."""
    from idp.sessions import kill

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("crash before the commit")

    monkeypatch.setattr(operator, "record", crash)
    monkeypatch.setattr(kill, "record", crash)
    before = snapshot(svc)
    keys_before = [(k.kid, k.state) for k in svc.keys.list()]
    with pytest.raises(RuntimeError, match="crash"):
        action(svc, holder)
    assert snapshot(svc) == before
    assert [(k.kid, k.state) for k in svc.keys.list()] == keys_before
    with svc.db.read() as s:
        from idp.accounts.models import User

        assert s.get(User, holder).disabled is False


def first_sid(svc: Any) -> str:
    with svc.db.read() as s:
        return str(s.scalars(select(BrowserSession.id).order_by(BrowserSession.id)).first())


def test_unknown_targets_change_nothing(svc: Any) -> None:
    before = snapshot(svc)
    assert svc.actions.revoke_user("nobody", OPS, "r") is None
    assert svc.actions.set_disabled("nobody", True, OPS, "r") is None
    assert svc.actions.revoke_client("nobody", OPS, "r") is None
    assert svc.actions.kill_session("nobody", OPS, "r") is None
    assert svc.actions.delete_user("nobody", OPS, "r") is None
    assert svc.actions.update_user("nobody", OPS, name="x") is None
    assert svc.actions.withdraw_consent("nobody", "rp", OPS) is False
    assert snapshot(svc) == before
