"""Killing a session: one operation that tells a kill from a session already ended."""

from __future__ import annotations

from sqlalchemy import func, select

from idp.audit.models import AuditEvent
from idp.revocations.models import RevocationEntry
from idp.sessions.kill import AlreadyEnded, Killed
from idp.sessions.models import BrowserSession


def live_sid(auth, svc) -> str:
    auth.user()
    auth.login()
    with svc.db.read() as s:
        [sid] = s.scalars(select(BrowserSession.id).where(BrowserSession.ended_at.is_(None)))
    return sid


def kills_and_denials(svc, sid) -> tuple[int, int]:
    with svc.db.read() as s:
        kills = s.scalar(
            select(func.count()).where(
                AuditEvent.action == "session.kill", AuditEvent.target == sid
            )
        )
        denials = s.scalar(
            select(func.count()).where(RevocationEntry.kind == "sid", RevocationEntry.value == sid)
        )
    return kills, denials


def test_a_second_kill_reports_the_first_end_and_records_nothing(auth, svc):
    sid = live_sid(auth, svc)
    first = svc.killer.kill(sid, actor="test", action="session.kill", reason="lost phone")
    assert isinstance(first, Killed) and first.session.end_reason == "lost phone"
    second = svc.killer.kill(sid, actor="test", action="session.kill", reason="stolen laptop")
    assert isinstance(second, AlreadyEnded) and second.session.end_reason == "lost phone"
    assert kills_and_denials(svc, sid) == (1, 1)
    assert svc.deny.is_denied("sid", sid)


def test_kill_session_still_returns_the_session_either_way(auth, svc):
    sid = live_sid(auth, svc)
    for _ in range(2):
        session = svc.killer.kill_session(sid, actor="test", action="session.kill", reason="r")
        assert session is not None and session.id == sid and session.ended_at is not None
    assert svc.killer.kill("no-such-sid", actor="test", action="session.kill", reason="r") is None
    assert kills_and_denials(svc, "no-such-sid") == (0, 0)
