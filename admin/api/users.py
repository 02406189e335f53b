"""Users: search, inspect, kill their sessions, disable and enable."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from admin import queries
from admin.api.common import admin_token_required, bp, not_found, operator, reason, reply, validated
from idp.accounts.models import User
from idp.ext import services


@bp.get("/users")
@admin_token_required
@validated
def search_users(query: dict[str, Any]) -> Response:
    found = queries.users_search(services(), query.get("q", ""), limit=query["limit"])
    return reply({"users": found})


@bp.get("/users/<user_id>")
@admin_token_required
@validated
def get_user(user_id: str) -> Response:
    detail = queries.user_detail(services(), user_id)
    if detail is None:
        raise not_found("user_id")
    return reply(detail)


@bp.post("/users/<user_id>/kill-sessions")
@admin_token_required
@validated
def kill_sessions(user_id: str, body: dict[str, Any]) -> Response:
    why = reason(body, "sessions killed by operator")
    killed = services().actions.revoke_user(user_id, operator(), why)
    if killed is None:
        raise not_found("user_id")
    return reply({"user_id": user_id, "sessions_killed": killed})


@bp.post("/users/<user_id>/disable")
@admin_token_required
@validated
def disable(user_id: str, body: dict[str, Any]) -> Response:
    return _set_disabled(user_id, True, reason(body, "disabled by operator"))


@bp.post("/users/<user_id>/enable")
@admin_token_required
@validated
def enable(user_id: str, body: dict[str, Any]) -> Response:
    return _set_disabled(user_id, False, reason(body, "enabled by operator"))


def _set_disabled(user_id: str, disabled: bool, why: str) -> Response:
    svc = services()
    # Disabling kills everything the user holds.
    if svc.actions.set_disabled(user_id, disabled, operator(), why) is None:
        raise not_found("user_id")
    detail = queries.user_detail(svc, user_id)
    if detail is None:
        raise not_found("user_id")
    return reply(detail["user"])


def _user_exists(user_id: str) -> bool:
    with services().db.read() as s:
        return s.get(User, user_id) is not None
