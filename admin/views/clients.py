"""Clients: list, register, edit, rotate the secret, revoke every token.

A new or rotated secret is shown once, in the response to the POST that made it: idp
stores only its hash (SPEC §6), so there is nothing to redirect to that could show it
again, and the page is ``no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.admin import queries
from idp.admin.auth import admin_required, audit, fresh_auth_required
from idp.admin.views.common import FormError, field, flag, lines, not_found, operator, page, reason
from idp.clients.models import Client
from idp.clients.services import (
    GRANTS,
    ClientError,
    create_client,
    metadata,
    parse_claims,
    rotate_secret,
    update_client,
)
from idp.config import SUPPORTED_ALGS
from idp.ext import services

bp = Blueprint("clients", __name__)
DEFAULT_SCOPE = "openid profile email offline_access"
URI_MAX = 2000  # clients.backchannel_logout_uri; redirect URIs get the same bound


@bp.route("/clients")
@admin_required
def index() -> str:
    return render_template("clients.html", clients=queries.clients_list(services()))


def _form(**context: Any) -> Response:
    status = 400 if context.get("form_error") else 200
    return page("client_new.html", status, grants=GRANTS, algs=SUPPORTED_ALGS, **context)


# "_new": a client_id must start with a letter or digit, so no client can shadow this page.
@bp.get("/clients/_new")
@admin_required
def new() -> Response:
    return _form(form={"scope": DEFAULT_SCOPE, "grant_types": ["authorization_code"]})


def _edits() -> dict[str, Any]:
    """What the edit form and the registration form share."""
    return {
        "redirect_uris": lines("redirect_uris", label="Redirect URIs", each=URI_MAX, most=20),
        "post_logout_redirect_uris": lines(
            "post_logout_redirect_uris", label="Post-logout redirect URIs", each=URI_MAX, most=20
        ),
        "backchannel_logout_uri": field(
            "backchannel_logout_uri", URI_MAX, label="Back-channel logout URI"
        ),
        "claims": parse_claims(lines("claims", label="Private claims", each=1000, most=50)),
        "dpop_bound_access_tokens": flag("dpop_bound_access_tokens"),
        "require_pushed_authorization_requests": flag("require_pushed_authorization_requests"),
        "require_mfa": flag("require_mfa"),
    }


def _registration() -> dict[str, Any]:
    grants = request.form.getlist("grant_types")
    if len(grants) > len(GRANTS) or any(len(g) > 50 for g in grants):
        raise FormError("Grant types: choose from the list.")
    edits = _edits()
    return {
        **edits,
        "client_id": field("client_id", 100, label="Client id", required=True),
        "name": field("name", 200, label="Name") or None,
        "public": flag("public"),
        "first_party": flag("first_party"),
        "grant_types": grants,
        "scope": field("scope", 1000, label="Scope") or DEFAULT_SCOPE,
        "id_token_alg": field("id_token_alg", 10, label="ID token algorithm") or None,
        "backchannel_logout_uri": edits["backchannel_logout_uri"] or None,
    }


@bp.post("/clients/_new")
@fresh_auth_required
def create() -> Response:
    svc = services()
    try:
        values = _registration()
        with svc.db.transaction() as s:
            cid = values.pop("client_id")
            client, secret = create_client(
                s, svc.clock, cid, allow_loopback=svc.config.outbound.allow_loopback, **values
            )
            audit(s, "client.create", target=cid, metadata=metadata(client))
    except (FormError, ClientError) as exc:
        return _form(form=_sticky(), form_error=str(exc))
    if values["id_token_alg"]:
        svc.keys.ensure([values["id_token_alg"]])
    if secret is None:
        flash("Client registered. It is public, so it has no secret.", "ok")
        return redirect(url_for("clients.detail", client_id=cid), code=303)
    return page("client_secret.html", client_id=cid, secret=secret, created=True)


def _sticky() -> dict[str, Any]:
    """The submitted form, to fill the form again after an error."""
    return {**request.form.to_dict(), "grant_types": request.form.getlist("grant_types")}


def _client(
    client_id: str, status: int = 200, error: str | None = None, form: Any = None
) -> Response:
    svc = services()
    detail = queries.client_detail(svc, client_id)
    if detail is None:
        not_found("There is no such client.")
    recent = queries.events(svc, target=client_id, limit=20)
    return page("client.html", status, c=detail, audit_events=recent, form_error=error, form=form)


@bp.get("/clients/<client_id>")
@admin_required
def detail(client_id: str) -> Response:
    return _client(client_id)


def _exists(client_id: str) -> None:
    if queries.client_detail(services(), client_id) is None:
        not_found("There is no such client.")


@bp.post("/clients/<client_id>")
@fresh_auth_required  # redirect URIs decide where codes and tokens go
def update(client_id: str) -> Response:
    svc = services()
    _exists(client_id)
    try:
        edits = {**_edits(), "name": field("name", 200, label="Name", required=True)}
        with svc.db.transaction() as s:
            client = s.get(Client, client_id)
            if client is None:
                not_found("There is no such client.")
            before = metadata(client)
            update_client(client, allow_loopback=svc.config.outbound.allow_loopback, **edits)
            after = metadata(client)
            changed = {k: after[k] for k in after if after[k] != before[k]}
            audit(s, "client.update", target=client_id, changed=changed)
    except (FormError, ClientError) as exc:
        return _client(client_id, 400, str(exc), form=request.form)
    flash("Client saved." if changed else "Nothing changed.", "ok")
    return redirect(url_for("clients.detail", client_id=client_id), code=303)


def _reason(client_id: str) -> str | Response:
    _exists(client_id)
    try:
        return reason()
    except FormError as exc:
        return _client(client_id, 400, str(exc))


@bp.post("/clients/<client_id>/rotate-secret")
@fresh_auth_required
def rotate(client_id: str) -> Response:
    why = _reason(client_id)
    if isinstance(why, Response):
        return why
    svc = services()
    try:
        with svc.db.transaction() as s:
            client = s.get(Client, client_id)
            if client is None:
                not_found("There is no such client.")
            secret = rotate_secret(s, client)
            audit(s, "client.rotate_secret", target=client_id, reason=why)
    except ClientError as exc:
        return _client(client_id, 400, str(exc))
    return page("client_secret.html", client_id=client_id, secret=secret, created=False)


@bp.post("/clients/<client_id>/revoke-tokens")
@fresh_auth_required
def revoke_tokens(client_id: str) -> Response:
    why = _reason(client_id)
    if isinstance(why, Response):
        return why
    families = services().actions.revoke_client(client_id, operator(), why)
    if families is None:
        not_found("There is no such client.")
    flash(f"Revoked {families} refresh family(ies) and every live access token.", "ok")
    return redirect(url_for("clients.detail", client_id=client_id), code=303)
