"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at /logout."""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from idp.clients.models import Client
from idp.ext import services
from idp.oauth.id_token_hint import verify_id_token_hint
from idp.sessions import cookie
from idp.web import client_ip

bp = Blueprint("logout", __name__)


def _logout_target(params: Any, claims: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(redirect URI, error): the post_logout_redirect_uri when it exactly matches one
    registered by the client named by the hint or client_id."""
    uri = params.get("post_logout_redirect_uri")
    if not uri:
        return None, None
    audience = (claims or {}).get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if params.get("client_id") and claims is not None and params["client_id"] not in audiences:
        # RP-Initiated Logout 1.0 §2: the client_id must be the one the hint was issued to.
        return None, "client_id does not match the id_token_hint."
    client_id = params.get("client_id") or audience
    if isinstance(client_id, list):
        client_id = client_id[0] if len(client_id) == 1 else None
    client = None
    if isinstance(client_id, str) and len(client_id) <= 100:
        with services().db.read() as s:
            client = s.get(Client, client_id)
    if client is None or uri not in (client.post_logout_redirect_uris or []):
        return None, "post_logout_redirect_uri is not registered for this client."
    state = params.get("state")
    return (add_params_to_uri(uri, [("state", state)]) if state else uri), None


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    params = request.values
    claims = verify_id_token_hint(params.get("id_token_hint", ""))
    target, error = _logout_target(params, claims)
    if error:
        body = render_template("error.html", status=400, error="invalid_request", description=error)
        return Response(body, status=400, mimetype="text/html")
    current = cookie.current()
    hint_matches = (
        claims is not None and current is not None and claims.get("sub") == current.user_id
    )
    confirmed = request.method == "POST" and request.form.get("confirm") == "yes"
    if current is not None and not (hint_matches or confirmed):
        # Without a valid hint, ask: a forged link must not log anyone out (logout CSRF).
        return render_template("logout_confirm.html", params=params, user=current.user)
    if current is not None:
        svc = services()
        svc.killer.kill_session(
            current.id,
            actor=current.user.username,
            action="logout",
            reason="user logged out",
            ip=client_ip(),
        )
    resp = (
        redirect(target, code=303)
        if target
        else Response(render_template("logged_out.html"), mimetype="text/html")
    )
    cookie.clear_cookie(resp)
    return resp
