"""Users: search, one user's sessions, chains and consents, and the actions on them
(ASVS 7.4.2 and 7.4.5: disabling ends every session; admins can end a user's sessions)."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.auth import admin_required, fresh_auth_required
from idp.admin.views.common import FormError, arg, not_found, operator, page, reason
from idp.ext import services

bp = Blueprint("users", __name__)


@bp.route("/users")
@admin_required
def index() -> str:
    q = arg("q", 150)
    return render_template("users.html", users=queries.users_page(services(), q), q=q)


def _user(user_id: str, status: int = 200, error: str | None = None) -> Response:
    svc = services()
    detail = queries.user_page(svc, user_id)
    if detail is None:
        not_found("There is no such user.")
    recent = queries.events(svc, target=user_id, limit=20)
    security = queries.user_security_events(svc, user_id)
    return page(
        "user.html",
        status,
        d=detail,
        audit_events=recent,
        security_events=security,
        factors=svc.factors.of_user(user_id),
        passkeys=svc.passkeys.of_user(user_id),
        recovery_left=svc.factors.recovery_codes_left(user_id),
        form_error=error,
    )


@bp.route("/users/<user_id>")
@admin_required
def detail(user_id: str) -> Response:
    return _user(user_id)


def _checked(user_id: str) -> str | Response:
    """The reason for an action on an existing user, or the page again with the error."""
    if not queries.user_exists(services(), user_id):
        not_found("There is no such user.")
    try:
        return reason()
    except FormError as exc:
        return _user(user_id, 400, str(exc))


@bp.post("/users/<user_id>/kill-sessions")
@fresh_auth_required
def kill_sessions(user_id: str) -> Response:
    why = _checked(user_id)
    if isinstance(why, Response):
        return why
    # Every session and every refresh family, even those whose session already ended:
    # offline_access tokens outlive the browser session.
    killed = services().actions.revoke_user(user_id, operator(), why)
    flash(f"Killed {killed} session(s) and revoked every refresh token of the user.", "ok")
    return redirect(url_for("users.detail", user_id=user_id), code=303)


@bp.post("/users/<user_id>/disable", defaults={"disabled": True})
@bp.post("/users/<user_id>/enable", defaults={"disabled": False})
@fresh_auth_required
def set_state(user_id: str, disabled: bool) -> Response:
    why = _checked(user_id)
    if isinstance(why, Response):
        return why
    if disabled and user_id == g.admin_user.id:
        return _user(user_id, 400, "You cannot disable your own account.")
    # Disabling kills every session and refresh family.
    services().actions.set_disabled(user_id, disabled, operator(), why)
    flash("User disabled: every session ended." if disabled else "User enabled.", "ok")
    return redirect(url_for("users.detail", user_id=user_id), code=303)


@bp.post("/users/<user_id>/mfa-reset")
@fresh_auth_required
def mfa_reset(user_id: str) -> Response:
    why = _checked(user_id)
    if isinstance(why, Response):
        return why
    # A lost phone or key: the next login asks for the password only (audited, and
    # receivers hear of it as CAEP credential-change).
    removed = services().actions.reset_factors(user_id, operator(), why)
    flash(f"Removed {removed or 0} second factor(s) and every recovery code.", "ok")
    return redirect(url_for("users.detail", user_id=user_id), code=303)


@bp.post("/users/<user_id>/delete")
@fresh_auth_required
def delete(user_id: str) -> Response:
    why = _checked(user_id)
    if isinstance(why, Response):
        return why
    if user_id == g.admin_user.id:
        return _user(user_id, 400, "You cannot delete your own account.")
    # Kills everything, removes the personal data; the audit keeps a pseudonym.
    deleted = services().actions.delete_user(user_id, operator(), why)
    if deleted is None:
        not_found("There is no such user.")
    flash(f"User deleted. The audit trail now calls them {deleted.pseudonym}.", "ok")
    return redirect(url_for("users.index"), code=303)
