"""Read models for the dashboard and the admin API: one function per page, returning plain
data (dicts and dataclasses), never ORM objects bound to a session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, or_, select
from ua_parser import parse as parse_ua

from idp.accounts.models import Consent, User
from idp.audit.models import AuditEvent, SecurityEvent
from idp.refresh.models import RefreshFamily, RefreshToken
from idp.sessions.models import BackchannelDelivery, BrowserSession, SessionClient

PAGE_SIZE = 50


@lru_cache(maxsize=4096)
def describe_agent(user_agent: str) -> tuple[str, str]:
    """(browser, OS) of a user agent string, e.g. ("Chrome 120", "Linux")."""
    if not user_agent:
        return "unknown", "unknown"
    parsed = parse_ua(user_agent[:512])
    ua, os_ = parsed.user_agent, parsed.os
    browser = f"{ua.family} {ua.major}" if ua and ua.major else (ua.family if ua else "Other")
    system = f"{os_.family} {os_.major}" if os_ and os_.major else (os_.family if os_ else "Other")
    return browser, system


def session_row(s: BrowserSession, clients: list[str]) -> dict[str, Any]:
    browser, system = describe_agent(s.user_agent)
    return {
        "sid": s.id,
        "user": s.user.username,
        "user_id": s.user_id,
        "clients": clients,
        "ip": s.ip,
        "user_agent": s.user_agent,
        "browser": browser,
        "os": system,
        "created_at": s.created_at,
        "last_seen_at": s.last_seen_at,
        "expires_at": s.expires_at,
        "auth_time": s.auth_time,
        "ended_at": s.ended_at,
        "end_reason": s.end_reason,
    }


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    filters: dict[str, str] = field(default_factory=dict)


def _cursor(row: BrowserSession) -> str:
    return f"{row.created_at.isoformat()}|{row.id}"


def _parse_cursor(cursor: str) -> tuple[dt.datetime, str] | None:
    try:
        at, _, sid = cursor.partition("|")
        moment = dt.datetime.fromisoformat(at)
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)), sid[:64]
    except ValueError:
        return None


def sessions_page(
    svc: Any,
    *,
    user: str = "",
    client: str = "",
    ip: str = "",
    after: str = "",
    live_only: bool = True,
    limit: int = PAGE_SIZE,
) -> Page:
    """Live sessions newest first, keyset-paginated on (created_at, id)."""
    now = svc.clock.now()
    stmt = select(BrowserSession)
    if live_only:
        stmt = stmt.where(BrowserSession.ended_at.is_(None), BrowserSession.expires_at > now)
    if user:
        stmt = stmt.where(
            BrowserSession.user_id == select(User.id).where(User.username == user).scalar_subquery()
        )
    if ip:
        stmt = stmt.where(BrowserSession.ip == ip)
    if client:
        stmt = stmt.where(
            BrowserSession.id.in_(
                select(SessionClient.session_id).where(SessionClient.client_id == client)
            )
        )
    if after and (key := _parse_cursor(after)):
        stmt = stmt.where(
            or_(
                BrowserSession.created_at < key[0],
                and_(BrowserSession.created_at == key[0], BrowserSession.id < key[1]),
            )
        )
    stmt = stmt.order_by(BrowserSession.created_at.desc(), BrowserSession.id.desc()).limit(
        limit + 1
    )
    with svc.db.read() as s:
        found = list(s.scalars(stmt))
        more = len(found) > limit
        found = found[:limit]
        ids = [r.id for r in found]
        clients: dict[str, list[str]] = {}
        if ids:
            for sid, cid in s.execute(
                select(SessionClient.session_id, SessionClient.client_id).where(
                    SessionClient.session_id.in_(ids)
                )
            ):
                clients.setdefault(sid, []).append(cid)
        rows = [session_row(r, sorted(clients.get(r.id, []))) for r in found]
    return Page(
        rows,
        _cursor(found[-1]) if more and found else None,
        {"user": user, "client": client, "ip": ip},
    )


def _token_row(t: RefreshToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "generation": t.generation,
        "parent_id": t.parent_id,
        "scope": t.scope,
        "issued_at": t.issued_at,
        "issued_ip": t.issued_ip,
        "issued_user_agent": t.issued_user_agent,
        "used_at": t.used_at,
        "used_ip": t.used_ip,
        "used_user_agent": t.used_user_agent,
        "expires_at": t.expires_at,
    }


def _families(s: Any, condition: Any) -> list[dict[str, Any]]:
    families = list(
        s.scalars(
            select(RefreshFamily)
            .where(condition)
            .order_by(RefreshFamily.created_at.desc())
            .limit(200)
        )
    )
    ids = [f.id for f in families]
    tokens: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for t in s.scalars(
            select(RefreshToken)
            .where(RefreshToken.family_id.in_(ids))
            .order_by(RefreshToken.generation)
        ):
            tokens.setdefault(t.family_id, []).append(_token_row(t))
    events: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for e in s.scalars(select(SecurityEvent).where(SecurityEvent.family_id.in_(ids))):
            events.setdefault(e.family_id or "", []).append(
                {"at": e.at, "kind": e.kind, "details": e.details}
            )
    return [
        {
            "id": f.id,
            "client_id": f.client_id,
            "user_id": f.user_id,
            "session_id": f.session_id,
            "scope": f.scope,
            "created_at": f.created_at,
            "last_used_at": f.last_used_at,
            "absolute_expires_at": f.absolute_expires_at,
            "revoked_at": f.revoked_at,
            "revoked_reason": f.revoked_reason,
            "tokens": tokens.get(f.id, []),
            "events": events.get(f.id, []),
        }
        for f in families
    ]


def session_detail(svc: Any, sid: str) -> dict[str, Any] | None:
    with svc.db.read() as s:
        session = s.get(BrowserSession, sid)
        if session is None:
            return None
        clients = sorted(
            s.scalars(select(SessionClient.client_id).where(SessionClient.session_id == sid))
        )
        deliveries = [
            {
                "client_id": d.client_id,
                "uri": d.uri,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "last_status_code": d.last_status_code,
                "last_attempt_at": d.last_attempt_at,
            }
            for d in s.scalars(
                select(BackchannelDelivery)
                .where(BackchannelDelivery.session_id == sid)
                .order_by(BackchannelDelivery.created_at)
            )
        ]
        return {
            "session": session_row(session, clients),
            "live": session.is_live(svc.clock.now(), svc.config.sessions.idle_timeout),
            "families": _families(s, RefreshFamily.session_id == sid),
            "deliveries": deliveries,
        }


def user_detail(svc: Any, user_id: str) -> dict[str, Any] | None:
    with svc.db.read() as s:
        user = s.get(User, user_id)
        if user is None:
            return None
        sessions = list(
            s.scalars(
                select(BrowserSession)
                .where(BrowserSession.user_id == user_id)
                .order_by(BrowserSession.created_at.desc())
                .limit(100)
            )
        )
        consents = [
            {"client_id": c.client_id, "scope": c.scope, "granted_at": c.granted_at}
            for c in s.scalars(select(Consent).where(Consent.user_id == user_id))
        ]
        return {
            "user": {
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "name": user.name,
                "is_admin": user.is_admin,
                "disabled": user.disabled,
                "created_at": user.created_at,
            },
            "sessions": [session_row(x, []) for x in sessions],
            "families": _families(s, RefreshFamily.user_id == user_id),
            "consents": consents,
        }


def overview(svc: Any) -> dict[str, Any]:
    """Counts for the overview page, with hourly series for the last 24 hours."""
    now = svc.clock.now()
    since = now - dt.timedelta(hours=24)
    with svc.db.read() as s:
        live_sessions = s.scalar(
            select(func.count())
            .select_from(BrowserSession)
            .where(BrowserSession.ended_at.is_(None), BrowserSession.expires_at > now)
        )
        live_families = s.scalar(
            select(func.count())
            .select_from(RefreshFamily)
            .where(RefreshFamily.revoked_at.is_(None), RefreshFamily.absolute_expires_at > now)
        )
        issued = list(
            s.scalars(select(RefreshFamily.created_at).where(RefreshFamily.created_at >= since))
        )
        refreshed = list(
            s.scalars(
                select(RefreshToken.issued_at).where(
                    RefreshToken.issued_at >= since, RefreshToken.parent_id.is_not(None)
                )
            )
        )
        logins = list(
            s.scalars(select(BrowserSession.created_at).where(BrowserSession.created_at >= since))
        )
        reuse = [
            {
                "at": e.at,
                "user_id": e.user_id,
                "client_id": e.client_id,
                "session_id": e.session_id,
                "family_id": e.family_id,
                "details": e.details,
            }
            for e in s.scalars(
                select(SecurityEvent)
                .where(SecurityEvent.kind == "refresh_token_reuse")
                .order_by(SecurityEvent.at.desc())
                .limit(10)
            )
        ]

    def hourly(moments: list[dt.datetime]) -> list[int]:
        buckets = [0] * 24
        for m in moments:
            index = 23 - int((now - m).total_seconds() // 3600)
            if 0 <= index < 24:
                buckets[index] += 1
        return buckets

    return {
        "live_sessions": live_sessions or 0,
        "live_families": live_families or 0,
        "logins_24h": hourly(logins),
        "issued_24h": hourly(issued),
        "refreshed_24h": hourly(refreshed),
        "recent_reuse": reuse,
    }


def events(
    svc: Any,
    *,
    kind: str = "",
    actor: str = "",
    target: str = "",
    security: bool = False,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Recent audit events (or security events), newest first, filtered."""
    with svc.db.read() as s:
        if security:
            stmt = select(SecurityEvent).order_by(SecurityEvent.at.desc()).limit(limit)
            if kind:
                stmt = stmt.where(SecurityEvent.kind == kind)
            return [
                {
                    "at": e.at,
                    "kind": e.kind,
                    "user_id": e.user_id,
                    "client_id": e.client_id,
                    "session_id": e.session_id,
                    "family_id": e.family_id,
                    "details": e.details,
                }
                for e in s.scalars(stmt)
            ]
        stmt2 = select(AuditEvent).order_by(AuditEvent.at.desc()).limit(limit)
        if kind:
            stmt2 = stmt2.where(AuditEvent.action == kind)
        if actor:
            stmt2 = stmt2.where(AuditEvent.actor == actor)
        if target:
            stmt2 = stmt2.where(AuditEvent.target == target)
        return [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "reason": e.reason,
                "ip": e.ip,
                "details": e.details,
            }
            for e in s.scalars(stmt2)
        ]


def users_search(svc: Any, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """Users whose username or email starts with ``q`` (all when empty)."""
    stmt = select(User).order_by(User.username).limit(limit)
    if q:
        stmt = stmt.where(
            or_(
                User.username.startswith(q, autoescape=True),
                User.email.startswith(q, autoescape=True),
            )
        )
    with svc.db.read() as s:
        return [
            {
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "name": u.name,
                "is_admin": u.is_admin,
                "disabled": u.disabled,
                "created_at": u.created_at,
            }
            for u in s.scalars(stmt)
        ]


def clients_list(svc: Any) -> list[dict[str, Any]]:
    from idp.clients.models import Client
    from idp.clients.services import metadata

    with svc.db.read() as s:
        return [
            {
                **metadata(c),
                "disabled": c.disabled,
                "is_admin_client": c.is_admin_client,
                "created_at": c.created_at,
            }
            for c in s.scalars(select(Client).order_by(Client.client_id))
        ]


def client_detail(svc: Any, client_id: str) -> dict[str, Any] | None:
    from idp.clients.models import Client
    from idp.clients.services import metadata

    now = svc.clock.now()
    with svc.db.read() as s:
        c = s.get(Client, client_id)
        if c is None:
            return None
        live = s.scalar(
            select(func.count())
            .select_from(RefreshFamily)
            .where(
                RefreshFamily.client_id == client_id,
                RefreshFamily.revoked_at.is_(None),
                RefreshFamily.absolute_expires_at > now,
            )
        )
        return {
            **metadata(c),
            "disabled": c.disabled,
            "is_admin_client": c.is_admin_client,
            "created_at": c.created_at,
            "live_families": live or 0,
        }


def keys_list(svc: Any) -> list[dict[str, Any]]:
    now = svc.clock.now()
    return [
        {
            "kid": k.kid,
            "alg": k.alg,
            "state": k.state,
            "created_at": k.created_at,
            "activated_at": k.activated_at,
            "retired_at": k.retired_at,
            "remove_after": k.remove_after,
            "age_days": round((now - k.created_at).total_seconds() / 86400, 1),
        }
        for k in svc.keys.list()
    ]
