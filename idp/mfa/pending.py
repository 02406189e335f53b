"""A login between its password and its second factor.

No session exists yet: only a row naming the user, where to go next and what was proven
so far, found by a random cookie value (256 bits) whose SHA-256 alone is stored. It
expires after ``[mfa] code_seconds`` and is deleted when the session starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import redirect, request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp import metrics
from idp.clock import Clock
from idp.ext import services
from idp.mfa.acr import PWD
from idp.mfa.models import PendingLogin

COOKIE = "idp_pending_login"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def begin(s: Session, clock: Clock, ttl: int, user_id: str, next_url: str, amr: list[str]) -> str:
    """A pending login, and the cookie value that names it."""
    metrics.login("second_factor")
    token = secrets.token_urlsafe(32)
    now = clock.now()
    s.add(
        PendingLogin(
            token_hash=_hash(token),
            user_id=user_id,
            next_url=next_url[:4000],
            amr=amr,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
    )
    return token


def find(s: Session, clock: Clock, token: str | None) -> PendingLogin | None:
    if not token or len(token) > 100:
        return None
    row = s.scalar(select(PendingLogin).where(PendingLogin.token_hash == _hash(token)))
    if row is None or row.expires_at <= clock.now():
        return None
    return row


def finish(s: Session, pending_id: str) -> None:
    s.execute(delete(PendingLogin).where(PendingLogin.id == pending_id))


def purge_expired(s: Session, now: dt.datetime) -> int:
    result = s.execute(delete(PendingLogin).where(PendingLogin.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


def second_factor_response(user_id: str, next_url: str) -> Response:
    """After a right password for a user with a second factor: a pending login, and the
    browser sent to the page that asks for the code."""
    svc = services()
    ttl = svc.config.mfa.code_seconds
    with svc.db.transaction() as s:
        token = begin(s, svc.clock, ttl, user_id, next_url, [PWD])
    resp = redirect("/login/code", code=303)
    set_cookie(resp, token, ttl)
    return resp


# --- the cookie -----------------------------------------------------------------------
def cookie_name() -> str:
    return COOKIE if services().config.insecure_http else "__Host-" + COOKIE


def cookie_value() -> str | None:
    return request.cookies.get(cookie_name())


def set_cookie(resp: Response, token: str, ttl: int) -> None:
    secure = not services().config.insecure_http
    resp.set_cookie(
        cookie_name(), token, max_age=ttl, path="/", secure=secure, httponly=True, samesite="Lax"
    )


def clear_cookie(resp: Response) -> None:
    secure = not services().config.insecure_http
    resp.delete_cookie(cookie_name(), path="/", secure=secure, httponly=True, samesite="Lax")
