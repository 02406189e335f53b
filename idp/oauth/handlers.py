"""The token (RFC 6749 §3.2), revocation (RFC 7009), introspection (RFC 7662) and
userinfo (OIDC Core §5.3) endpoints, over idp.http's request and response: answered by
idp.front without Flask, or by Flask's routes for requests idp.front leaves to them."""

from __future__ import annotations

from idp.ext import Services
from idp.http import FORM, ProtocolRequest, ProtocolResponse, error, json_response
from idp.oauth.claims import user_claims

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


def token(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    grant_type = req.form.get("grant_type")
    if not grant_type:
        return error(400, "invalid_request", "Missing grant_type.")
    if grant_type not in GRANT_TYPES:
        return error(
            400, "unsupported_grant_type", f"Supported grant types: {', '.join(GRANT_TYPES)}."
        )
    resp: ProtocolResponse = svc.oauth.create_token_response(req)
    return resp


def revoke(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    resp: ProtocolResponse = svc.oauth.create_endpoint_response("revocation", req)
    return resp


def introspect(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    resp: ProtocolResponse = svc.oauth.create_endpoint_response("introspection", req)
    resp.set_header("Cache-Control", "no-store")
    return resp


class TwoTokens(Exception):
    """RFC 6750 §2: a client must not use more than one method to send the token."""


def bearer(req: ProtocolRequest) -> str | None:
    """The access token of RFC 6750 §2.1 (header) or §2.2 (form body); only one method."""
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    in_form = req.method == "POST" and req.mimetype == FORM and "access_token" in req.form
    if scheme.lower() == "bearer" and value.strip():
        if in_form:
            raise TwoTokens
        return str(value).strip()
    if in_form:
        if len(req.form.getlist("access_token")) > 1:
            raise TwoTokens
        return str(req.form["access_token"])
    return None


def unauthorized(error_code: str, description: str, status: int = 401) -> ProtocolResponse:
    return error(
        status, error_code, description, [("WWW-Authenticate", f'Bearer error="{error_code}"')]
    )


def userinfo(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    try:
        token = bearer(req)
    except TwoTokens:
        return unauthorized("invalid_request", "Send the access token one way only.", 400)
    if not token:
        resp = unauthorized("invalid_request", "A Bearer access token is required.")
        resp.set_header("WWW-Authenticate", "Bearer")  # RFC 6750 §3.1: no error code
        return resp
    claims = svc.access_tokens.active(token)
    if claims is None:
        return unauthorized("invalid_token", "The access token is not valid.")
    scope = str(claims.get("scope", ""))
    if "openid" not in scope.split():
        return unauthorized("insufficient_scope", "The token lacks the openid scope.", 403)
    user = svc.users.get(str(claims.get("sub")))
    if user is None or user.disabled:
        return unauthorized("invalid_token", "The access token is not valid.")
    return json_response(200, user_claims(user, scope))
