"""Clients: list, inspect, register, edit, rotate the secret, revoke every token."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from idp.admin import openapi, queries
from idp.admin.api.checks import problem
from idp.admin.api.common import (
    Refused,
    actor,
    admin_token_required,
    bp,
    not_found,
    operator,
    reason,
    reply,
    validated,
)
from idp.audit.services import record
from idp.clients.models import Client
from idp.clients.services import (
    ClientError,
    create_client,
    metadata,
    parse_claims,
    rotate_secret,
    update_client,
)
from idp.ext import services
from idp.web import client_ip

# Body fields of POST /clients that are create_client's keyword arguments as they are.
CREATE_ARGS = (
    "redirect_uris",
    "public",
    "grant_types",
    "scope",
    "name",
    "first_party",
    "admin_client",
    "id_token_alg",
    "backchannel_logout_uri",
    "post_logout_redirect_uris",
    "dpop_bound_access_tokens",
    "token_endpoint_auth_method",
    "jwks",
    "jwks_uri",
    "require_pushed_authorization_requests",
    "require_mfa",
)


@bp.get("/clients")
@admin_token_required
@validated
def list_clients() -> Response:
    return reply({"clients": queries.clients_list(services())})


@bp.get("/clients/<client_id>")
@admin_token_required
@validated
def get_client(client_id: str) -> Response:
    detail = queries.client_detail(services(), client_id)
    if detail is None:
        raise not_found("client_id")
    return reply(detail)


@bp.post("/clients")
@admin_token_required
@validated
def create(body: dict[str, Any]) -> Response:
    svc = services()
    args = {name: body[name] for name in CREATE_ARGS if name in body}
    args.setdefault("redirect_uris", [])
    args["claims"] = _claims(body.get("claims"))
    args["backchannel_logout_uri"] = args.get("backchannel_logout_uri") or None
    try:
        with svc.db.transaction() as s:
            client, secret = create_client(
                s,
                svc.clock,
                body["client_id"],
                allow_loopback=svc.config.outbound.allow_loopback,
                **args,
            )
            record(
                s,
                at=svc.clock.now(),
                actor=actor(),
                action="client.create",
                target=client.client_id,
                ip=client_ip(),
                admin_client=client.is_admin_client,
                # Everything registered, as the dashboard records it (issue 10 item 8).
                metadata=metadata(client),
            )
            out = metadata(client)
    except ClientError as exc:
        raise _refused(exc) from None
    except IntegrityError:  # a concurrent request registered the same client_id
        raise Refused(400, "invalid_client_metadata", "That client_id is taken.") from None
    if client.id_token_signed_response_alg:
        svc.keys.ensure([client.id_token_signed_response_alg])
    if secret:
        out["client_secret"] = secret
    resp = reply(out, 201)
    resp.headers["Location"] = url_for("api.get_client", client_id=client.client_id)
    return resp


@bp.patch("/clients/<client_id>")
@admin_token_required
@validated
def update(client_id: str, body: dict[str, Any]) -> Response:
    svc = services()
    changes = dict(body)
    if "claims" in changes:
        changes["claims"] = _claims(changes["claims"])
    if "backchannel_logout_uri" in changes:
        changes["backchannel_logout_uri"] = changes["backchannel_logout_uri"] or ""
    try:
        with svc.db.transaction() as s:
            client = s.get(Client, client_id)
            if client is None:
                raise not_found("client_id")
            before = metadata(client)
            update_client(client, allow_loopback=svc.config.outbound.allow_loopback, **changes)
            after = metadata(client)
            record(
                s,
                at=svc.clock.now(),
                actor=actor(),
                action="client.update",
                target=client_id,
                ip=client_ip(),
                # The values, before and after, not only the field names (issue 10 item 8).
                changed={
                    k: {"from": before[k], "to": after[k]} for k in after if after[k] != before[k]
                },
            )
    except ClientError as exc:
        raise _refused(exc) from None
    return reply(queries.client_detail(svc, client_id))


@bp.post("/clients/<client_id>/rotate-secret")
@admin_token_required
@validated
def new_secret(client_id: str, body: dict[str, Any]) -> Response:
    why = reason(body, "secret rotated by operator")
    svc = services()
    try:
        with svc.db.transaction() as s:
            client = s.get(Client, client_id)
            if client is None:
                raise not_found("client_id")
            secret = rotate_secret(s, client)
            record(
                s,
                at=svc.clock.now(),
                actor=actor(),
                action="client.rotate_secret",
                target=client_id,
                reason=why,
                ip=client_ip(),
            )
    except ClientError as exc:
        raise _refused(exc) from None
    return reply({"client_id": client_id, "client_secret": secret})


@bp.post("/clients/<client_id>/revoke-tokens")
@admin_token_required
@validated
def revoke_tokens(client_id: str, body: dict[str, Any]) -> Response:
    why = reason(body, "all tokens of the client revoked")
    families = services().actions.revoke_client(client_id, operator(), why)
    if families is None:
        raise not_found("client_id")
    return reply({"client_id": client_id, "families_revoked": families})


def _claims(value: dict[str, str] | list[str] | None) -> dict[str, str] | None:
    """Private claims from either documented form, as create_client and update_client
    take them."""
    if value is None or isinstance(value, dict):
        return value
    try:
        claims = parse_claims(value)
    except ClientError as exc:
        raise _refused(exc) from None
    if why := problem(openapi.CLAIMS_OBJECT, claims, "claims"):
        raise Refused(400, "invalid_client_metadata", why)
    return claims


def _refused(exc: ClientError) -> Refused:
    """RFC 7591 §3.2.2 error codes for metadata the services turned down."""
    text = str(exc)
    code = "invalid_redirect_uri" if "redirect URI" in text else "invalid_client_metadata"
    return Refused(400, code, text)


def _client_exists(client_id: str) -> bool:
    with services().db.read() as s:
        return s.get(Client, client_id) is not None
