"""Metadata: OIDC Discovery 1.0 §3 and RFC 8414 §2, listing only what is implemented."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from idp.config import SUPPORTED_ALGS, Config
from idp.ext import services
from idp.mfa.acr import SUPPORTED as ACR_VALUES
from idp.oauth.dpop import ALGS as DPOP_ALGS

bp = Blueprint("discovery", __name__)


def metadata(config: Config) -> dict[str, Any]:
    iss = config.server.issuer.rstrip("/")
    document: dict[str, Any] = {
        "issuer": config.server.issuer,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks.json",
        "end_session_endpoint": f"{iss}/logout",
        "revocation_endpoint": f"{iss}/revoke",
        "introspection_endpoint": f"{iss}/introspect",
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": list(DPOP_ALGS),
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "revocation_endpoint_auth_signing_alg_values_supported": list(DPOP_ALGS),
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "introspection_endpoint_auth_signing_alg_values_supported": list(DPOP_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "pushed_authorization_request_endpoint": f"{iss}/par",
        # RFC 9101: signed request objects by value; request_uri only from PAR.
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "request_object_signing_alg_values_supported": list(DPOP_ALGS),
        "require_pushed_authorization_requests": config.oauth.require_pushed_authorization_requests,
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "azp",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "acr",
            "amr",
        ],
        # idp.mfa.acr: "1" a password, "2" a password and a second factor.
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
    if config.oauth.registration != "closed":
        document["registration_endpoint"] = f"{iss}/register"  # RFC 7591, RFC 8414 §2
    return document


def _document() -> Response:
    # Usually answered by idp.documents.FastPath before Flask; this serves the same bytes
    # when it steps aside (a query string, say).
    doc = services().documents.metadata
    if doc.matches(request.headers.get("If-None-Match", "")):
        return Response(status=304, headers=doc.headers(False)[1:])
    return Response(doc.body, headers=doc.headers(False))


@bp.route("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    return _document()


@bp.route("/.well-known/oauth-authorization-server")
def oauth_authorization_server() -> Response:
    return _document()
