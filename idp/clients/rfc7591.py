"""The RFC 7591 §2 client metadata document as idp reads it, and the errors of RFC 7591
§3.2.2 (and RFC 6750 §3.1 for tokens) the registration endpoints answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.clients.services import ClientError, InvalidRedirectUri
from idp.mfa.acr import ACR_MFA, LEVEL
from idp.mfa.acr import SUPPORTED as SUPPORTED_ACR

DEFAULT_SCOPE = "openid profile email offline_access"
MAX_URIS = 50
MAX_TYPES = 10


class RegistrationError(Exception):
    """A refused registration request: RFC 7591 §3.2.2 (400) or RFC 6750 §3.1 (401)."""

    status = 400
    error = "invalid_client_metadata"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidMetadata(RegistrationError):
    pass


class InvalidRedirect(RegistrationError):
    error = "invalid_redirect_uri"


class InvalidRequest(RegistrationError):
    error = "invalid_request"


class UnsupportedMediaType(InvalidRequest):
    status = 415


class InvalidToken(RegistrationError):
    status = 401
    error = "invalid_token"


def refusal(exc: ClientError) -> RegistrationError:
    """The RFC 7591 §3.2.2 error for metadata the client services turned down."""
    if isinstance(exc, InvalidRedirectUri):
        return InvalidRedirect(str(exc))
    return InvalidMetadata(str(exc))


# --- the metadata document ----------------------------------------------------------


def _member(body: Mapping[str, Any], name: str, kind: str) -> Any:
    """``body[name]`` if it has the JSON type ``kind`` (None when absent or null: RFC
    7592 §2.2 treats a null like a missing member)."""
    value = body.get(name)
    if value is None:
        return None
    bad = InvalidRedirect if name == "redirect_uris" else InvalidMetadata
    if kind == "string" and not isinstance(value, str):
        raise bad(f"{name} must be a string")
    if kind == "boolean" and not isinstance(value, bool):
        raise bad(f"{name} must be true or false")
    if kind == "object" and not isinstance(value, dict):
        raise bad(f"{name} must be a JSON object")
    if kind == "strings":
        limit = MAX_URIS if name.endswith("uris") else MAX_TYPES
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(f"{name} must be an array of strings")
        if len(value) > limit:
            raise bad(f"{name} may have at most {limit} values")
    return value


def client_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`~idp.clients.services.create_client` (and
    ``replace_client``) for an RFC 7591 §2 metadata document, with its defaults for what
    is left out: ``client_secret_basic``, the ``authorization_code`` grant, the ``code``
    response type. Members idp does not know are ignored (§2); ``response_types`` must
    agree with ``grant_types`` (§2.1). Only JSON types are checked here: the values are
    the client services' to judge."""
    method = _member(body, "token_endpoint_auth_method", "string")
    if method == "":
        raise InvalidMetadata("token_endpoint_auth_method must name a method")
    method = method or "client_secret_basic"
    grants = _member(body, "grant_types", "strings")
    if grants == []:
        raise InvalidMetadata("grant_types must name at least one grant type")
    grants = grants or ["authorization_code"]
    responses = _member(body, "response_types", "strings")
    if responses is None:
        responses = ["code"] if "authorization_code" in grants else []
    if unsupported := [r for r in responses if r != "code"]:
        raise InvalidMetadata(f"response type {unsupported[0]!r} is not supported (only code)")
    if ("code" in responses) != ("authorization_code" in grants):
        raise InvalidMetadata(
            "grant_types and response_types disagree: the authorization_code grant goes "
            "with the code response type (RFC 7591 section 2.1)"
        )
    scope = _member(body, "scope", "string")
    return {
        "redirect_uris": _member(body, "redirect_uris", "strings") or [],
        "token_endpoint_auth_method": method,
        "public": method == "none",
        "grant_types": grants,
        "scope": DEFAULT_SCOPE if scope is None else scope,
        "name": _member(body, "client_name", "string"),
        "id_token_alg": _member(body, "id_token_signed_response_alg", "string"),
        "backchannel_logout_uri": _member(body, "backchannel_logout_uri", "string"),
        "post_logout_redirect_uris": _member(body, "post_logout_redirect_uris", "strings") or [],
        "dpop_bound_access_tokens": bool(_member(body, "dpop_bound_access_tokens", "boolean")),
        "jwks": _member(body, "jwks", "object"),
        "jwks_uri": _member(body, "jwks_uri", "string"),
        "require_pushed_authorization_requests": bool(
            _member(body, "require_pushed_authorization_requests", "boolean")
        ),
        "require_mfa": _requires_mfa(_member(body, "default_acr_values", "strings")),
        # idp's own member: no code for users whose address is not verified.
        "require_verified_email": bool(_member(body, "require_verified_email", "boolean")),
    }


def _requires_mfa(default_acr_values: list[str] | None) -> bool:
    """OIDC Dynamic Client Registration §2 ``default_acr_values``, in idp's two values
    (idp.mfa.acr): ``["2"]`` makes every login for the client need a second factor;
    ``["1"]`` (or none) does not. Other values are refused: silently dropping a
    requirement the client asked for would weaken it."""
    values = default_acr_values or []
    if unknown := [v for v in values if v not in SUPPORTED_ACR]:
        raise InvalidMetadata(
            f"default_acr_values: {unknown[0]!r} is not supported (use one of "
            f"{', '.join(SUPPORTED_ACR)})"
        )
    # Any of the values satisfies a request, so the lowest one is what is required.
    return bool(values) and min(values, key=LEVEL.__getitem__) == ACR_MFA
