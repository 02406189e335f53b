"""Read models for the dashboard and the admin API: one function per page, returning plain
data (dicts and dataclasses), never ORM objects bound to a session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select, tuple_

from idp.accounts.models import Consent, User
from idp.accounts.services import username_key
from idp.audit.models import AuditEvent, SecurityEvent
from idp.refresh.models import RefreshFamily, RefreshToken
from idp.sessions.agents import describe_agent
from idp.sessions.models import BackchannelDelivery, BrowserSession, SessionClient
from idp.ssf.models import SsfEvent, SsfStream

PAGE_SIZE = 50
# Longest key any table uses (client_id); longer path segments cannot name a row.
MAX_KEY = 100


def _unusable(*values: str) -> bool:
    """True for input that cannot match a row: PostgreSQL rejects NUL in text outright (a
    DataError, i.e. a 500), so such input is answered as "nothing found" without asking."""
    return any("\x00" in v for v in values)


def _bad_key(key: str) -> bool:
    return not key or len(key) > MAX_KEY or _unusable(key)


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
        moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        return None
    return None if _unusable(sid) else (moment, sid[:64])


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
    if _unusable(user, client, ip):
        return Page([], None, {"user": user, "client": client, "ip": ip})
    now = svc.clock.now()
    stmt = select(BrowserSession)
    if live_only:
        stmt = stmt.where(BrowserSession.live(now, svc.config.sessions.idle_timeout))
    if user:
        stmt = stmt.where(
            BrowserSession.user_id
            == select(User.id).where(User.username_key == username_key(user)).scalar_subquery()
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
        # A row comparison, which the (created_at, id) index can seek to; the equivalent
        # OR form made PostgreSQL scan half a million rows at 1M sessions (bench/RESULTS.md).
        stmt = stmt.where(
            tuple_(BrowserSession.created_at, BrowserSession.id) < tuple_(key[0], key[1])
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
            "dpop_jkt": f.dpop_jkt,
            "tokens": tokens.get(f.id, []),
            "events": events.get(f.id, []),
        }
        for f in families
    ]


def session_detail(svc: Any, sid: str) -> dict[str, Any] | None:
    if _bad_key(sid):
        return None
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
        signals = [
            {
                "receiver": receiver,
                "event_type": e.event_type.rsplit("/", 1)[-1],
                "jti": e.jti,
                "status": e.status,
                "attempts": e.attempts,
                "delivered_at": e.delivered_at,
                "last_error": e.last_error,
            }
            for e, receiver in s.execute(
                select(SsfEvent, SsfStream.client_id)
                .join(SsfStream, SsfStream.id == SsfEvent.stream_id)
                .where(SsfEvent.session_id == sid)
                .order_by(SsfEvent.created_at)
            ).all()
        ]
        return {
            "session": session_row(session, clients),
            "live": session.is_live(svc.clock.now(), svc.config.sessions.idle_timeout),
            "families": _families(s, RefreshFamily.session_id == sid),
            "deliveries": deliveries,
            "signals": signals,
        }


def streams_list(svc: Any) -> list[dict[str, Any]]:
    """Shared Signals streams for the operator: receiver, delivery, status, events owed
    and the age of the oldest (the lag), last delivery and error."""
    now = svc.clock.now()
    with svc.db.read() as s:
        owed = {
            stream_id: (count, oldest)
            for stream_id, count, oldest in s.execute(
                select(SsfEvent.stream_id, func.count(), func.min(SsfEvent.created_at))
                .where(SsfEvent.status == "pending")
                .group_by(SsfEvent.stream_id)
            ).all()
        }
        rows = []
        for stream in s.scalars(select(SsfStream).order_by(SsfStream.created_at)):
            count, oldest = owed.get(stream.id, (0, None))
            rows.append(
                {
                    "stream_id": stream.id,
                    "receiver": stream.client_id,
                    "method": "push" if stream.method.endswith("8935") else "poll",
                    "endpoint_url": stream.endpoint_url,
                    "status": stream.status,
                    "status_reason": stream.status_reason,
                    "owed": count,
                    "lag_seconds": int((now - oldest).total_seconds()) if oldest else 0,
                    "last_delivery_at": stream.last_delivery_at,
                    "last_error": stream.last_error,
                    "created_at": stream.created_at,
                }
            )
    return rows


def user_detail(svc: Any, user_id: str) -> dict[str, Any] | None:
    if _bad_key(user_id):
        return None
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
            .where(BrowserSession.live(now, svc.config.sessions.idle_timeout))
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
    if _unusable(kind, actor, target):
        return []
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
    if _unusable(q):
        return []
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

    if _bad_key(client_id):
        return None
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
    """Every key with its times, the scheduled ones included (KeyService.described)."""
    now = svc.clock.now()
    return [
        {**k, "age_days": round((now - k["created_at"]).total_seconds() / 86400, 1)}
        for k in svc.keys.described()
    ]


def key_schedule(svc: Any) -> dict[str, Any]:
    """The rotation schedule: every how many seconds (0: off), the next rotation of each
    algorithm, the JWKS max-age served and how long a retired key stays published."""
    return {
        "rotate_every": svc.keys.rotate_every,
        "next_rotation": svc.keys.schedule(),
        "jwks_max_age": svc.config.jwks_max_age,
        "retire_seconds": svc.keys.retire_seconds,
    }


# --- page models: built on the read models above, for the HTML dashboard ------------------


def _hours(now: dt.datetime) -> list[dt.datetime]:
    """The ends of the 24 hourly buckets that :func:`overview`'s series use, oldest first."""
    return [now - dt.timedelta(hours=23 - i) for i in range(24)]


def _alive_at(s: Any, model: Any, start: Any, end: Any, expiry: Any, now: dt.datetime) -> list[int]:
    """How many rows were alive at the end of each hour: one scan, one column per hour."""
    moments = _hours(now)
    since = moments[0]
    columns = [
        func.sum(case((and_(start <= t, or_(end.is_(None), end > t), expiry > t), 1), else_=0))
        for t in moments
    ]
    row = s.execute(
        select(*columns)
        .select_from(model)
        .where(start <= now, expiry > since, or_(end.is_(None), end > since))
    ).one()
    return [int(n or 0) for n in row]


def overview_series(svc: Any) -> dict[str, list[int]]:
    """Hourly series for the overview's charts beyond :func:`overview`'s: live sessions and
    live refresh families at the end of each of the last 24 hours, and reuse detections."""
    now = svc.clock.now()
    since = now - dt.timedelta(hours=24)
    with svc.db.read() as s:
        sessions = _alive_at(
            s,
            BrowserSession,
            BrowserSession.created_at,
            BrowserSession.ended_at,
            BrowserSession.expires_at,
            now,
        )
        families = _alive_at(
            s,
            RefreshFamily,
            RefreshFamily.created_at,
            RefreshFamily.revoked_at,
            RefreshFamily.absolute_expires_at,
            now,
        )
        reuse_at = list(
            s.scalars(
                select(SecurityEvent.at).where(
                    SecurityEvent.kind == "refresh_token_reuse", SecurityEvent.at > since
                )
            )
        )
    reuse = [0] * 24
    for moment in reuse_at:
        index = 23 - int((now - moment).total_seconds() // 3600)
        if 0 <= index < 24:
            reuse[index] += 1
    return {"live_sessions_24h": sessions, "live_families_24h": families, "reuse_24h": reuse}


def hour_labels(svc: Any) -> list[str]:
    """Tooltips for the hourly bars: the hour each bucket covers, in UTC."""
    hour = dt.timedelta(hours=1)
    return [f"{t - hour:%H:%M}–{t:%H:%M} UTC" for t in _hours(svc.clock.now())]


def _moment(value: Any) -> dt.datetime | None:
    """A datetime from a stored ISO string (security event details keep them as text)."""
    if isinstance(value, dt.datetime):
        return value
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _use(details: Any, key: str) -> dict[str, Any]:
    """One use (``first_use`` or ``reuse``) recorded in a reuse event, never missing keys."""
    raw = details.get(key) if isinstance(details, dict) else None
    raw = raw if isinstance(raw, dict) else {}
    agent = str(raw.get("user_agent") or "")
    browser, system = describe_agent(agent)
    return {
        "at": _moment(raw.get("at")) if raw.get("at") else None,
        "ip": raw.get("ip"),
        "user_agent": agent,
        "browser": browser,
        "os": system,
    }


def _step(
    kind: str, at: dt.datetime, ip: str | None, agent: str | None, **more: Any
) -> dict[str, Any]:
    browser, system = describe_agent(agent or "")
    return {
        "kind": kind,
        "at": at,
        "ip": ip,
        "user_agent": agent or "",
        "browser": browser,
        "os": system,
        **more,
    }


_ORDER = {"issued": 0, "rotated": 1, "reuse": 2, "revoked": 3}


def timeline(family: dict[str, Any]) -> list[dict[str, Any]]:
    """A refresh family (from :func:`session_detail` or :func:`user_detail`) as a time-ordered
    list of steps: the first issue, each rotation (the use of generation n that issued n+1),
    each reuse (with both uses, SPEC §6 "RTR") and the revocation."""
    steps = []
    for t in family["tokens"]:
        if t["parent_id"] is None:
            steps.append(
                _step(
                    "issued",
                    t["issued_at"],
                    t["issued_ip"],
                    t["issued_user_agent"],
                    generation=t["generation"],
                )
            )
        if t["used_at"] is not None:
            steps.append(
                _step(
                    "rotated",
                    t["used_at"],
                    t["used_ip"],
                    t["used_user_agent"],
                    generation=t["generation"],
                )
            )
    for e in family["events"]:
        details = e["details"] if isinstance(e["details"], dict) else {}
        steps.append(
            {
                "kind": "reuse" if e["kind"] == "refresh_token_reuse" else e["kind"],
                "at": e["at"],
                "generation": details.get("generation"),
                "newest_generation": details.get("newest_generation"),
                "first_use": _use(details, "first_use"),
                "reuse": _use(details, "reuse"),
            }
        )
    if family["revoked_at"] is not None:
        steps.append(
            {"kind": "revoked", "at": family["revoked_at"], "reason": family["revoked_reason"]}
        )
    return sorted(steps, key=lambda x: (x["at"], _ORDER.get(x["kind"], 2)))


def _chain(family: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    if family["revoked_at"] is not None:
        state = "revoked"
    elif family["absolute_expires_at"] <= now:
        state = "expired"
    else:
        state = "live"
    return {
        **family,
        "state": state,
        "reused": any(e["kind"] == "refresh_token_reuse" for e in family["events"]),
        "generations": len(family["tokens"]),
        "timeline": timeline(family),
    }


def session_page(svc: Any, sid: str) -> dict[str, Any] | None:
    """:func:`session_detail` with each refresh chain drawn as a timeline."""
    detail = session_detail(svc, sid)
    if detail is None:
        return None
    now = svc.clock.now()
    return {**detail, "chains": [_chain(f, now) for f in detail["families"]]}


def user_page(svc: Any, user_id: str) -> dict[str, Any] | None:
    """:func:`user_detail` with live flags and clients per session, and chain timelines."""
    detail = user_detail(svc, user_id)
    if detail is None:
        return None
    now = svc.clock.now()
    idle = dt.timedelta(seconds=svc.config.sessions.idle_timeout)
    ids = [x["sid"] for x in detail["sessions"]]
    clients: dict[str, list[str]] = {}
    if ids:
        with svc.db.read() as s:
            for sid, cid in s.execute(
                select(SessionClient.session_id, SessionClient.client_id).where(
                    SessionClient.session_id.in_(ids)
                )
            ):
                clients.setdefault(sid, []).append(cid)
    sessions = [
        {
            **x,
            "clients": sorted(clients.get(x["sid"], [])),
            "live": x["ended_at"] is None
            and now < x["expires_at"]
            and now < x["last_seen_at"] + idle,
        }
        for x in detail["sessions"]
    ]
    return {
        **detail,
        "sessions": sessions,
        "live_sessions": sum(1 for x in sessions if x["live"]),
        "chains": [_chain(f, now) for f in detail["families"]],
    }


def users_page(svc: Any, q: str = "") -> list[dict[str, Any]]:
    """:func:`users_search` with each user's number of live sessions."""
    users = users_search(svc, q)
    ids = [u["id"] for u in users]
    counts: dict[str, int] = {}
    if ids:
        now = svc.clock.now()
        with svc.db.read() as s:
            counts = {
                uid: int(n)
                for uid, n in s.execute(
                    select(BrowserSession.user_id, func.count())
                    .where(
                        BrowserSession.user_id.in_(ids),
                        BrowserSession.live(now, svc.config.sessions.idle_timeout),
                    )
                    .group_by(BrowserSession.user_id)
                )
            }
    return [{**u, "live_sessions": counts.get(u["id"], 0)} for u in users]


def user_security_events(svc: Any, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest security events about one user (reuse, lockouts, failed re-auth)."""
    if _bad_key(user_id):
        return []
    with svc.db.read() as s:
        stmt = (
            select(SecurityEvent)
            .where(SecurityEvent.user_id == user_id)
            .order_by(SecurityEvent.at.desc())
            .limit(limit)
        )
        return [
            {
                "at": e.at,
                "kind": e.kind,
                "client_id": e.client_id,
                "session_id": e.session_id,
                "family_id": e.family_id,
                "details": e.details,
            }
            for e in s.scalars(stmt)
        ]


def user_exists(svc: Any, user_id: str) -> bool:
    if _bad_key(user_id):
        return False
    with svc.db.read() as s:
        return s.get(User, user_id) is not None


def session_status(svc: Any, sid: str) -> str | None:
    """Whether a session is "open" or "ended"; None when there is no such session."""
    if _bad_key(sid):
        return None
    with svc.db.read() as s:
        ended = s.execute(
            select(BrowserSession.ended_at).where(BrowserSession.id == sid)
        ).one_or_none()
    if ended is None:
        return None
    return "open" if ended[0] is None else "ended"


def usernames(svc: Any, ids: Any) -> dict[str, str]:
    """Usernames of the given user ids (events keep ids only)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    with svc.db.read() as s:
        return dict(s.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def overview_page(svc: Any) -> dict[str, Any]:
    """Everything the overview page shows: :func:`overview`, :func:`overview_series`, the
    hour labels of the charts and the usernames in the recent reuse list."""
    stats = overview(svc)
    return {
        "stats": stats,
        "series": overview_series(svc),
        "hours": hour_labels(svc),
        "usernames": usernames(svc, (e["user_id"] for e in stats["recent_reuse"])),
    }


def security_page(svc: Any, kind: str = "") -> dict[str, Any]:
    """Security events (see :func:`events`) with the usernames they refer to."""
    rows = events(svc, kind=kind, security=True)
    with svc.db.read() as s:
        seen = set(s.scalars(select(SecurityEvent.kind).distinct()))
    return {
        "rows": rows,
        "kinds": sorted(seen | {"refresh_token_reuse"}),
        "usernames": usernames(svc, (e["user_id"] for e in rows)),
    }
