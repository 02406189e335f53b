"""The token (RFC 6749 §3.2), revocation (RFC 7009), introspection (RFC 7662) and
userinfo (OIDC Core §5.3) endpoints, over idp.http's request and response: answered by
idp.front without Flask, or by Flask's routes for requests idp.front leaves to them."""

from __future__ import annotations

from idp.ext import Services
from idp.http import FORM, ProtocolRequest, ProtocolResponse, error, json_response
from idp.oauth.claims import user_claims
from idp.oauth.dpop import DPoPError, UseNonce, bound_jkt

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


def token(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    grant_type = req.form.get("grant_type")
    if not grant_type:
        return error(400, "invalid_request", "Missing grant_type.")
    if grant_type not in GRANT_TYPES:
        return error(
            400, "unsupported_grant_type", f"Supported grant types: {', '.join(GRANT_TYPES)}."
        )
    if refused := with_proof(svc, req):
        return refused
    resp: ProtocolResponse = svc.oauth.create_token_response(req)
    if svc.dpop.require_nonce:
        resp.set_header("DPoP-Nonce", svc.dpop.nonce())  # RFC 9449 §8.2: the next one
    return resp


def revoke(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    if refused := with_proof(svc, req):
        return refused
    resp: ProtocolResponse = svc.oauth.create_endpoint_response("revocation", req)
    return resp


def introspect(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    if refused := with_proof(svc, req):
        return refused
    resp: ProtocolResponse = svc.oauth.create_endpoint_response("introspection", req)
    resp.set_header("Cache-Control", "no-store")
    return resp


def dpop_refusal(svc: Services, err: DPoPError, *, resource: bool = False) -> ProtocolResponse:
    """RFC 9449: 400 at the authorization server (§5), 401 with a DPoP challenge at a
    resource (§7.1); a missing nonce also gets one (§8, §9)."""
    headers = [("DPoP-Nonce", svc.dpop.nonce())] if isinstance(err, UseNonce) else []
    if not resource:
        return error(400, err.error, err.description, headers)
    challenge = f'DPoP error="{err.error}", algs="{" ".join(svc.dpop.algs)}"'
    return error(401, err.error, err.description, [*headers, ("WWW-Authenticate", challenge)])


def with_proof(svc: Services, req: ProtocolRequest) -> ProtocolResponse | None:
    """Checks the request's DPoP proof, if it has one, and keeps it on the request for
    the grants; the refusal when it is bad."""
    try:
        req.dpop = svc.dpop.of_request(req)
    except DPoPError as err:
        return dpop_refusal(svc, err)
    return None


class TwoTokens(Exception):
    """RFC 6750 §2: a client must not use more than one method to send the token."""


def presented(req: ProtocolRequest) -> tuple[str, str] | None:
    """(scheme, access token): RFC 6750 §2.1 (``Bearer`` header) or §2.2 (form body),
    or RFC 9449 §7.1 (``DPoP`` header); only one method."""
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    scheme = scheme.lower()
    in_form = req.method == "POST" and req.mimetype == FORM and "access_token" in req.form
    if scheme in ("bearer", "dpop") and value.strip():
        if in_form:
            raise TwoTokens
        return scheme, str(value).strip()
    if in_form:
        if len(req.form.getlist("access_token")) > 1:
            raise TwoTokens
        return "bearer", str(req.form["access_token"])
    return None


def unauthorized(
    error_code: str, description: str, status: int = 401, scheme: str = "Bearer"
) -> ProtocolResponse:
    return error(
        status, error_code, description, [("WWW-Authenticate", f'{scheme} error="{error_code}"')]
    )


def userinfo(svc: Services, req: ProtocolRequest) -> ProtocolResponse:
    try:
        found = presented(req)
    except TwoTokens:
        return unauthorized("invalid_request", "Send the access token one way only.", 400)
    if found is None:
        resp = unauthorized("invalid_request", "An access token is required.")
        # RFC 6750 §3.1 and RFC 9449 §7.1: a challenge per scheme, no error code.
        resp.set_header("WWW-Authenticate", "Bearer")
        resp.headers.append(("WWW-Authenticate", f'DPoP algs="{" ".join(svc.dpop.algs)}"'))
        return resp
    scheme, token = found
    claims = svc.access_tokens.active(token)
    if claims is None:
        return unauthorized("invalid_token", "The access token is not valid.")
    jkt = bound_jkt(claims)
    if jkt is not None or scheme == "dpop":
        # RFC 9449 §7: a bound token only with the DPoP scheme and a proof of its key
        # (never as a bearer token, §7.2); the DPoP scheme only for a bound token.
        if jkt is None or scheme != "dpop":
            return unauthorized(
                "invalid_token", "Send a DPoP-bound token, and only one, as DPoP.", scheme="DPoP"
            )
        try:
            proof = svc.dpop.of_request(req, access_token=token)
            if proof is None or proof.jkt != jkt:
                raise DPoPError("A proof signed by the token's key is required.")
        except DPoPError as err:
            return dpop_refusal(svc, err, resource=True)
    scope = str(claims.get("scope", ""))
    if "openid" not in scope.split():
        return unauthorized("insufficient_scope", "The token lacks the openid scope.", 403)
    user = svc.users.get(str(claims.get("sub")))
    if user is None or user.disabled:
        return unauthorized("invalid_token", "The access token is not valid.")
    return json_response(200, user_claims(user, scope))
