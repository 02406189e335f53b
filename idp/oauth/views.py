"""Authorization (RFC 6749 §3.1), token (§3.2) and userinfo (OIDC Core §5.3) endpoints."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from flask import Blueprint, abort, g, redirect, render_template, request
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response
from wtforms.validators import ValidationError

from idp.accounts.models import Consent, User
from idp.audit.services import record
from idp.ext import services
from idp.http import AUTHORIZE_PARAMS, ProtocolRequest
from idp.mfa.acr import ACR_MFA, LEVEL, satisfies, wanted_level
from idp.oauth import handlers
from idp.oauth.dpop import DPoPError
from idp.oauth.id_token_hint import verify_id_token_hint
from idp.oauth.jar import RequestObjectError, unpack
from idp.oauth.par import PREFIX as PAR_PREFIX
from idp.sessions import cookie
from idp.web import client_ip

bp = Blueprint("oauth", __name__)
MAX_NONCE = 512

SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in with your idp account",
    "profile": "See your username and name",
    "email": "See your email address",
    "offline_access": "Stay signed in to the app (refresh tokens)",
}


class RequestUriNotSupportedError(OAuth2Error):
    error = "request_uri_not_supported"
    description = "request_uri is not supported."


def _error(err: OAuth2Error) -> Response:
    """Redirect with the error only to a validated redirect URI (RFC 6749 §4.1.2.1);
    otherwise an HTML page that never echoes the input unescaped."""
    if err.redirect_uri:
        status, _body, headers = err()
        location = dict(headers)["Location"]
        location = add_params_to_uri(location, [("iss", services().config.server.issuer)])
        return redirect(location, code=303 if request.method == "POST" else 302)
    body = render_template(
        "error.html",
        status=400,
        error=err.error,
        description=err.description or "The request is not valid.",
    )
    return Response(body, status=400, mimetype="text/html")


def _find_consent(s: Session, user_id: str, client_id: str) -> Consent | None:
    return s.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )


def _has_consent(user: User, client_id: str, scope: str) -> bool:
    with services().db.read() as s:
        consent = _find_consent(s, user.id, client_id)
        return consent is not None and consent.covers(scope)


def _save_consent(user: User, client_id: str, scope: str) -> None:
    svc = services()
    now = svc.clock.now()
    with svc.db.transaction() as s:
        consent = _find_consent(s, user.id, client_id)
        if consent is None:
            s.add(Consent(user_id=user.id, client_id=client_id, scope=scope, granted_at=now))
        else:
            consent.scope = " ".join(dict.fromkeys(consent.scope.split() + scope.split()))
            consent.granted_at = now
        record(
            s,
            at=now,
            actor=user.username,
            action="consent.grant",
            target=client_id,
            ip=client_ip(),
            scope=scope,
        )


CONSENT_FORM_FIELDS = {"prompt", "decision", "csrf_token"}


def _login_redirect(args: Any, prompts: set[str]) -> Response:
    # Come back without prompt=login, or the login would be asked for forever; and
    # without the consent form's own fields (a consent posted after the session went
    # stale must not carry its decision or CSRF token into a URL).
    params = [(k, v) for k, v in args.items(multi=True) if k not in CONSENT_FORM_FIELDS]
    rest = " ".join(sorted(prompts - {"login"}))
    if rest:
        params.append(("prompt", rest))
    next_url = "/authorize?" + urlencode(params)
    query = {"next": next_url}
    if args.get("login_hint"):
        query["login_hint"] = args["login_hint"][:150]
    return redirect("/login?" + urlencode(query), code=302)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response | str:
    try:
        return _authorize()
    except ValueError:
        # authlib quotes parameters into URIs and error texts and refuses some characters.
        return _error(InvalidRequestError("The request has malformed parameters."))


def _mfa_required(client_name: str) -> Response:
    """The client requires a second factor and the user has none to step up with."""
    body = render_template("mfa_required.html", client_name=client_name)
    return Response(body, status=403, mimetype="text/html")


def _error_page(code: str, description: str) -> Response:
    """An error that must not be sent to a redirect URI nobody has validated."""
    body = render_template("error.html", status=400, error=code, description=description)
    return Response(body, status=400, mimetype="text/html")


def _unpack_request_object(svc: Any) -> Response:
    """RFC 9101: a signed request object at /authorize is checked, kept like a pushed
    request, and the browser sent on with its request_uri (so the login and consent
    round-trips carry a short handle, and the parameters cannot change on the way)."""
    server = svc.oauth
    client = server.query_client(request.values.get("client_id", ""))
    if client is not None and (
        client.require_pushed_authorization_requests
        or svc.config.oauth.require_pushed_authorization_requests
    ):
        return _error_page("invalid_request", "Push the authorization request to /par first.")
    try:
        params = unpack(
            server.client_keys, client, svc.config.server.issuer, request.values["request"]
        )
    except RequestObjectError as exc:
        return _error_page("invalid_request_object", str(exc))
    request_uri, _ = server.pushed.push(client.client_id, params)
    query = urlencode({"client_id": client.client_id, "request_uri": request_uri})
    return redirect("/authorize?" + query, code=303 if request.method == "POST" else 302)


def _authorize() -> Response | str:
    # A POST is either an authorization request sent as a form (OIDC Core §3.1.2.1: no
    # CSRF token, it only starts a flow) or the user's consent decision, which must
    # carry the consent page's CSRF token (this view is exempt from the blanket check).
    if request.method == "POST" and "decision" in request.form:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            abort(400, "The CSRF token is missing or invalid.")
    svc = services()
    server = svc.oauth
    # RFC 9126 §4: a pushed request's parameters, in place of the browser's.
    request_uri = request.values.get("request_uri")
    pushed = request_uri is not None and request_uri.startswith(PAR_PREFIX)
    if pushed:
        params = server.pushed.load(str(request_uri), request.values.get("client_id", ""))
        if params is None:
            return _error_page(
                "invalid_request_uri",
                "The request_uri is unknown, expired, used, or another client's.",
            )
        g.authorization_params = MultiDict(params)
    elif "request" in request.values:
        return _unpack_request_object(svc)
    # What the browser comes back with after a login or to the consent form: the
    # pushed request's handle, never its parameters.
    browser_params = (
        MultiDict([("client_id", request.values["client_id"]), ("request_uri", request_uri)])
        if pushed
        else None
    )
    current = cookie.current()
    end_user = current.user if current else None
    try:
        grant = server.get_consent_grant(end_user=end_user)
    except OAuth2Error as err:
        return _error(err)
    payload = grant.request.payload
    state = payload.state
    redirect_uri = grant.redirect_uri

    def fail(cls: type[OAuth2Error], description: str | None = None) -> Response:
        return _error(cls(description=description, redirect_uri=redirect_uri, state=state))

    repeated = next((n for n in AUTHORIZE_PARAMS if len(payload.datalist.get(n, [])) > 1), None)
    if repeated:
        return fail(InvalidRequestError, f"Parameter {repeated} is repeated.")
    if len(payload.data.get("nonce") or "") > MAX_NONCE:
        return fail(InvalidRequestError, f"nonce is longer than {MAX_NONCE} characters.")
    dpop_jkt = payload.data.get("dpop_jkt")
    if dpop_jkt is not None and not re.fullmatch(r"[A-Za-z0-9_-]{43}", dpop_jkt):
        # RFC 9449 §10: a JWK SHA-256 thumbprint, base64url (43 characters).
        return fail(InvalidRequestError, "dpop_jkt is not a JWK SHA-256 thumbprint.")
    # OIDC Core §6: request_uri is only ever a pushed request's (handled above).
    if payload.data.get("request_uri") is not None:
        return fail(RequestUriNotSupportedError)
    if payload.data.get("response_mode") not in (None, "query"):
        return fail(InvalidRequestError, "Only response_mode=query is supported.")
    client = grant.request.client
    if not pushed and (
        client.require_pushed_authorization_requests
        or svc.config.oauth.require_pushed_authorization_requests
    ):
        return fail(InvalidRequestError, "Push the authorization request to /par first.")
    prompts = set((payload.data.get("prompt") or "").split())
    if prompts - {"none", "login", "consent", "select_account"}:
        return fail(InvalidRequestError, "Unknown prompt value.")
    stale = False
    if (max_age := payload.data.get("max_age")) is not None:
        if not re.fullmatch(r"[0-9]{1,10}", max_age):
            return fail(InvalidRequestError, "max_age must be a non-negative integer.")
        stale = current is not None and (svc.clock.now() - current.auth_time).total_seconds() > int(
            max_age
        )
    # OIDC Core §3.1.2.1: a hint names the user the client expects. Another user's
    # session does not answer for them (prompt=none: login_required; else log in).
    other_user = False
    if (hint := payload.data.get("id_token_hint")) is not None:
        hinted = verify_id_token_hint(hint)
        if hinted is None:
            return fail(InvalidRequestError, "id_token_hint is not an ID token issued here.")
        other_user = current is not None and current.user_id != hinted["sub"]
    # Step-up: a session below the acr asked for (OIDC Core §3.1.2.1 acr_values) or
    # below what the client requires logs in again, with its second factor.
    level = wanted_level(payload.data.get("acr_values"))
    if client.require_mfa:
        level = max(level, LEVEL[ACR_MFA])
    weak = False
    if current is not None and not satisfies(current.acr, level):
        if svc.factors.has_factor(current.user_id):
            weak = True
        elif client.require_mfa:
            if "none" in prompts:
                return fail(LoginRequiredError)
            return _mfa_required(client.name)
        # Otherwise acr_values is only a request (OIDC Core §5.5.1.1: a voluntary
        # claim); the ID token says what the session is worth.
    if current is None or "login" in prompts or stale or other_user or weak:
        if "none" in prompts:
            return fail(LoginRequiredError)
        if browser_params is not None:
            return _login_redirect(browser_params, prompts)
        return _login_redirect(request.args if request.method == "GET" else payload.data, prompts)

    user = current.user
    if client.require_verified_email and not user.email_verified:
        # The client relies on the address: no code until its owner has proven it.
        if "none" in prompts:
            return fail(InteractionRequiredError, "The user's email address is not verified.")
        body = render_template("verify_email_required.html", user=user, client_name=client.name)
        return Response(body, status=403, mimetype="text/html")
    scope = grant.request.scope or ""
    decided = request.method == "POST" and request.form.get("decision") in {"allow", "deny"}
    needs_consent = not client.first_party and (
        "consent" in prompts
        or client.identity_unproven(redirect_uri or "")
        or not _has_consent(user, client.client_id, scope)
    )
    if needs_consent and not decided:
        if "none" in prompts:
            return fail(ConsentRequiredError)
        scopes = [(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in scope.split()]
        # The decision comes back to the same authorization request: its query, or for a
        # form-posted request, its parameters (the form's own fields aside).
        action = (
            "/authorize?" + urlencode(list(browser_params.items()))
            if browser_params is not None
            else request.full_path
            if request.method == "GET"
            else "/authorize?"
            + urlencode(
                [(k, v) for k, v in payload.data.items() if k not in {"decision", "csrf_token"}]
            )
        )
        return render_template(
            "consent.html", client=client, scopes=scopes, user=user, action=action
        )
    g.idp_session = current
    resp: Response
    if decided and request.form["decision"] == "deny":
        resp = server.create_authorization_response(grant=grant, grant_user=None).to_flask()
    else:
        if needs_consent:
            _save_consent(user, client.client_id, scope)
        resp = server.create_authorization_response(grant=grant, grant_user=user).to_flask()
    if pushed:
        server.pushed.use(str(request_uri))
    if request.method == "POST" and resp.status_code == 302:
        resp.status_code = 303  # RFC 9700 §4.12: never 307 after a POST
    return resp


@bp.route("/par", methods=["POST"])
def par() -> Response:
    """RFC 9126 pushed authorization requests (a DPoP proof binds the code, RFC 9449
    §10.1)."""
    svc = services()
    req = ProtocolRequest.from_flask(request)
    try:
        proof = svc.dpop.of_request(req)
    except DPoPError as err:
        return handlers.dpop_refusal(svc, err).to_flask()
    resp = svc.oauth.push_authorization_request(req, proof.jkt if proof else None)
    return resp.to_flask()


# The protocol endpoints. idp.front answers well-formed requests to them without Flask;
# these routes take the rest (and Flask's answers for wrong methods, big bodies...).
@bp.route("/token", methods=["POST"])
def token() -> Response:
    return handlers.token(services(), ProtocolRequest.from_flask(request)).to_flask()


@bp.route("/revoke", methods=["POST"])
def revoke() -> Response:
    """RFC 7009 token revocation."""
    return handlers.revoke(services(), ProtocolRequest.from_flask(request)).to_flask()


@bp.route("/introspect", methods=["POST"])
def introspect() -> Response:
    """RFC 7662 token introspection."""
    return handlers.introspect(services(), ProtocolRequest.from_flask(request)).to_flask()


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    return handlers.userinfo(services(), ProtocolRequest.from_flask(request)).to_flask()
