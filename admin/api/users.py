"""Users: search, inspect, create, change, delete, kill their sessions, disable and
enable."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from idp.accounts.models import User
from idp.accounts.services import KEEP, AccountError
from idp.admin import queries
from idp.admin.api.common import (
    Refused,
    admin_token_required,
    bp,
    not_found,
    operator,
    reason,
    reply,
    validated,
)
from idp.ext import services

TAKEN = "That username is taken."


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


@bp.post("/users")
@admin_token_required
@validated
def create_user(body: dict[str, Any]) -> Response:
    svc = services()
    try:
        user = svc.actions.create_user(
            operator(),
            body["username"],
            body.get("password"),
            email=body.get("email"),
            name=body.get("name"),
            admin=bool(body.get("admin", False)),
        )
    except AccountError as exc:
        raise Refused(400, "invalid_request", str(exc)) from None
    except IntegrityError:  # a concurrent request created the same username
        raise Refused(400, "invalid_request", TAKEN) from None
    resp = reply(_shown(user.id), 201)
    resp.headers["Location"] = url_for("api.get_user", user_id=user.id)
    return resp


@bp.patch("/users/<user_id>")
@admin_token_required
@validated
def update_user(user_id: str, body: dict[str, Any]) -> Response:
    fields = {key: body.get(key, KEEP) for key in ("email", "name", "admin")}
    try:
        changed = services().actions.update_user(user_id, operator(), **fields)
    except AccountError as exc:
        raise Refused(400, "invalid_request", str(exc)) from None
    if changed is None:
        raise not_found("user_id")
    return reply(_shown(user_id))


@bp.delete("/users/<user_id>")
@admin_token_required
@validated
def delete_user(user_id: str, body: dict[str, Any]) -> Response:
    why = reason(body, "deleted by operator")
    deleted = services().actions.delete_user(user_id, operator(), why)
    if deleted is None:
        raise not_found("user_id")
    return reply(
        {
            "user_id": user_id,
            "deleted": True,
            "pseudonym": deleted.pseudonym,
            "sessions_killed": deleted.sessions_killed,
        }
    )


def _shown(user_id: str) -> dict[str, Any]:
    detail = queries.user_detail(services(), user_id)
    if detail is None:
        raise not_found("user_id")
    return dict(detail["user"])


@bp.post("/users/<user_id>/kill-sessions")
@admin_token_required
@validated
def kill_sessions(user_id: str, body: dict[str, Any]) -> Response:
    why = reason(body, "sessions killed by operator")
    killed = services().actions.revoke_user(user_id, operator(), why)
    if killed is None:
        raise not_found("user_id")
    return reply({"user_id": user_id, "sessions_killed": killed})


@bp.post("/users/<user_id>/mfa-reset")
@admin_token_required
@validated
def mfa_reset(user_id: str, body: dict[str, Any]) -> Response:
    why = reason(body, "second factors reset by operator")
    removed = services().actions.reset_factors(user_id, operator(), why)
    if removed is None:
        raise not_found("user_id")
    return reply({"user_id": user_id, "factors_removed": removed})


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
    return reply(_shown(user_id))


def _user_exists(user_id: str) -> bool:
    with services().db.read() as s:
        return s.get(User, user_id) is not None
