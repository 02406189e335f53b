"""Registering clients; the secret is shown once and stored as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from sqlalchemy.orm import Session

from idp.clients.models import ADMIN_SCOPE, AUTH_METHODS, SECRET_METHODS, Client
from idp.clients.redirects import problem as redirect_problem
from idp.clock import Clock
from idp.config import SUPPORTED_ALGS
from idp.mfa.acr import ACR_MFA
from idp.outbound import Outbound

GRANTS = ("authorization_code", "refresh_token", "client_credentials")
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3
# Registered JWT and OIDC claims a client's private claims may not override.
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "scope",
        "sid",
        "azp",
        "auth_time",
        "nonce",
        "at_hash",
        "c_hash",
        "acr",
        "amr",
        "cnf",
        "typ",
        "events",
        "email",
        "email_verified",
        "name",
        "preferred_username",
        "username",
        "token_type",
    }
)


class ClientError(ValueError):
    pass


class InvalidRedirectUri(ClientError):
    """A redirect URI that cannot be registered, or none where the grants need one
    (RFC 7591 §3.2.2 ``invalid_redirect_uri``)."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_claims(pairs: list[str]) -> dict[str, str]:
    claims = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ClientError(f"claim {pair!r} must look like NAME=VALUE")
        claims[name] = value
    return claims


def _outbound_problem(uri: str, allow_loopback: bool) -> str | None:
    """Why idp may not call ``uri`` (it sends tokens there or trusts what it reads):
    https, or http on loopback where allowed; no fragment, user information or controls."""
    return Outbound(allow_loopback).problem(uri, resolve=False) or redirect_problem(uri)


def _check_backchannel_uri(uri: str, allow_loopback: bool) -> None:
    if why := _outbound_problem(uri, allow_loopback):
        raise ClientError(f"backchannel logout URI: {why}")


MAX_KEYS = 10
MAX_JWKS_BYTES = 20_000
PRIVATE_KEY_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def check_jwks(jwks: Any) -> dict[str, Any]:
    """A client's public key set (RFC 7517): 1 to 10 RSA, EC or OKP public keys that
    joserfc can import; never a private or symmetric key."""
    import json

    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ClientError('jwks must be a JSON object with a "keys" list')
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_KEYS or len(json.dumps(jwks)) > MAX_JWKS_BYTES:
        raise ClientError(f"jwks must hold 1 to {MAX_KEYS} keys (at most 20 kB)")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ClientError("jwks keys must be RSA, EC or OKP keys")
        if PRIVATE_KEY_MEMBERS & set(key):
            raise ClientError("jwks must hold public keys only")
    try:
        KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise ClientError("jwks holds a key that cannot be read") from None
    return {"keys": [dict(k) for k in keys]}


def _check_keys(
    method: str, jwks: Any, jwks_uri: str | None, allow_loopback: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """The keys a client registers: at most one of ``jwks`` and ``jwks_uri`` (RFC 7591
    §2), and one of them for private_key_jwt."""
    if jwks is not None and jwks_uri:
        raise ClientError("register jwks or jwks_uri, not both")
    if method == "private_key_jwt" and jwks is None and not jwks_uri:
        raise ClientError("private_key_jwt needs jwks or jwks_uri")
    # Keys read over plain http could be swapped on the way: assertions forged.
    if jwks_uri and (why := _outbound_problem(jwks_uri, allow_loopback)):
        raise ClientError(f"jwks_uri: {why}")
    return (check_jwks(jwks) if jwks is not None else None), (jwks_uri or None)


def clean_name(name: str) -> str:
    """A client name as stored: stripped, not blank, at most 200 characters as given,
    no control characters (it is shown on the consent page)."""
    if not name.strip() or len(name) > 200:
        raise ClientError("name must have 1 to 200 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ClientError("name must not contain control characters")
    return name.strip()


def validate_claims(claims: dict[str, Any]) -> None:
    for name in claims:
        if name in RESERVED_CLAIMS:
            raise ClientError(f"claim {name!r} is reserved and cannot be overridden")
        if not re.fullmatch(r"[A-Za-z0-9_:/.\-]{1,100}", name):
            raise ClientError(f"claim name {name!r} is not valid")


def _checked(
    *,
    redirect_uris: list[str],
    public: bool,
    grant_types: list[str] | None,
    scope: str,
    claims: dict[str, Any] | None,
    name: str | None,
    default_name: str,
    first_party: bool,
    admin_client: bool,
    id_token_alg: str | None,
    backchannel_logout_uri: str | None,
    post_logout_redirect_uris: list[str] | None,
    dpop_bound_access_tokens: bool,
    token_endpoint_auth_method: str | None,
    jwks: dict[str, Any] | None,
    jwks_uri: str | None,
    require_pushed_authorization_requests: bool,
    require_mfa: bool,
    allow_loopback: bool,
) -> dict[str, Any]:
    """Every rule a client's registration must meet, for a new client and for a full
    replacement (RFC 7592 §2.2) alike; the column values to store."""
    method = token_endpoint_auth_method or ("none" if public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    if public != (method == "none"):
        raise ClientError("a public client, and only a public one, authenticates with none")
    jwks, jwks_uri = _check_keys(method, jwks, jwks_uri, allow_loopback)
    default = ["client_credentials"] if admin_client else ["authorization_code"]
    grant_types = list(dict.fromkeys(grant_types or default))
    for g in grant_types:
        if g not in GRANTS:
            raise ClientError(f"grant {g!r} is not supported (use one of {', '.join(GRANTS)})")
    if public and "client_credentials" in grant_types:
        raise ClientError("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidRedirectUri(
            "authorization_code needs at least one redirect_uris value (--redirect-uri)"
        )
    for uri in redirect_uris:
        if why := redirect_problem(uri):
            raise InvalidRedirectUri(f"redirect URI {uri!r}: {why}")
    for uri in post_logout_redirect_uris or []:
        if why := redirect_problem(uri):
            raise ClientError(f"post-logout redirect URI {uri!r}: {why}")
    if backchannel_logout_uri:
        _check_backchannel_uri(backchannel_logout_uri, allow_loopback)
    for token in scope.split():
        if not SCOPE_TOKEN_RE.fullmatch(token):
            raise ClientError(f"scope {token!r} is not valid")
    if len(scope) > 1000:
        raise ClientError("scope is longer than 1000 characters")
    name = default_name if name is None else clean_name(name)
    claims = claims or {}
    validate_claims(claims)
    if id_token_alg is not None and id_token_alg not in SUPPORTED_ALGS:
        raise ClientError(f"id_token_signed_response_alg must be one of {SUPPORTED_ALGS}")
    if admin_client:
        if public:
            raise ClientError("an admin client must be confidential")
        if "client_credentials" not in grant_types:
            grant_types.append("client_credentials")
        if ADMIN_SCOPE not in scope.split():
            scope = f"{scope} {ADMIN_SCOPE}".strip()
    return {
        "name": name,
        "redirect_uris": list(redirect_uris),
        "grant_types": grant_types,
        "scope": " ".join(dict.fromkeys(scope.split())),
        "claims": claims,
        "first_party": first_party,
        "is_admin_client": admin_client,
        "id_token_signed_response_alg": id_token_alg,
        "backchannel_logout_uri": backchannel_logout_uri,
        "post_logout_redirect_uris": list(post_logout_redirect_uris or []),
        "dpop_bound_access_tokens": dpop_bound_access_tokens,
        "token_endpoint_auth_method": method,
        "jwks": jwks,
        "jwks_uri": jwks_uri,
        "require_pushed_authorization_requests": require_pushed_authorization_requests,
        "require_mfa": require_mfa,
    }


def create_client(
    db: Session,
    clock: Clock,
    client_id: str,
    *,
    redirect_uris: list[str],
    public: bool = False,
    grant_types: list[str] | None = None,
    scope: str = "openid profile email offline_access",
    claims: dict[str, Any] | None = None,
    name: str | None = None,
    first_party: bool = False,
    admin_client: bool = False,
    id_token_alg: str | None = None,
    backchannel_logout_uri: str | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    dpop_bound_access_tokens: bool = False,
    token_endpoint_auth_method: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    require_pushed_authorization_requests: bool = False,
    require_mfa: bool = False,
    require_verified_email: bool = False,
    allow_loopback: bool = False,
) -> tuple[Client, str | None]:
    """``allow_loopback``: ``[outbound] allow_loopback`` (loopback back-channel and
    jwks URIs). ``token_endpoint_auth_method`` defaults to ``none`` for a public client
    and ``client_secret_basic`` otherwise; ``private_key_jwt`` clients get no secret."""
    if not CLIENT_ID_RE.fullmatch(client_id):
        raise ClientError("client_id may use letters, digits and . _ : - (at most 100)")
    if db.get(Client, client_id) is not None:
        raise ClientError(f"client {client_id!r} already exists")
    values = _checked(
        redirect_uris=redirect_uris,
        public=public,
        grant_types=grant_types,
        scope=scope,
        claims=claims,
        name=name,
        default_name=client_id,
        first_party=first_party,
        admin_client=admin_client,
        id_token_alg=id_token_alg,
        backchannel_logout_uri=backchannel_logout_uri,
        post_logout_redirect_uris=post_logout_redirect_uris,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        token_endpoint_auth_method=token_endpoint_auth_method,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        require_mfa=require_mfa,
        allow_loopback=allow_loopback,
    )
    method = values["token_endpoint_auth_method"]
    secret = secrets.token_urlsafe(32) if method in SECRET_METHODS else None
    client = Client(
        client_id=client_id,
        secret_hash=hash_secret(secret) if secret else None,
        created_at=clock.now(),
        require_verified_email=require_verified_email,
        **values,
    )
    db.add(client)
    db.flush()
    return client, secret


def replace_client(
    client: Client,
    *,
    redirect_uris: list[str],
    public: bool = False,
    grant_types: list[str] | None = None,
    scope: str = "openid profile email offline_access",
    name: str | None = None,
    id_token_alg: str | None = None,
    backchannel_logout_uri: str | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    dpop_bound_access_tokens: bool = False,
    token_endpoint_auth_method: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    require_pushed_authorization_requests: bool = False,
    require_mfa: bool = False,
    require_verified_email: bool = False,
    allow_loopback: bool = False,
) -> None:
    """Replaces a client's metadata as a whole (RFC 7592 §2.2), by the rules of
    :func:`create_client` and with its defaults for what is left out. What is not
    registration metadata stays: the id, the secret, private claims, first-party and
    admin standing. The way the client authenticates may switch between the two secret
    methods only: any other change is a new credential (RFC 7592 §2.2 forbids a client
    choosing its own secret), so it is a new registration."""
    values = _checked(
        redirect_uris=redirect_uris,
        public=public,
        grant_types=grant_types,
        scope=scope,
        claims=client.claims,
        name=name,
        default_name=client.client_id,
        first_party=client.first_party,
        admin_client=client.is_admin_client,
        id_token_alg=id_token_alg,
        backchannel_logout_uri=backchannel_logout_uri,
        post_logout_redirect_uris=post_logout_redirect_uris,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        token_endpoint_auth_method=token_endpoint_auth_method,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        require_mfa=require_mfa,
        allow_loopback=allow_loopback,
    )
    old, new = client.token_endpoint_auth_method, values["token_endpoint_auth_method"]
    if old != new and not (old in SECRET_METHODS and new in SECRET_METHODS):
        raise ClientError(
            f"token_endpoint_auth_method cannot change from {old} to {new}: "
            "register a new client instead"
        )
    for column, value in values.items():
        setattr(client, column, value)
    client.require_verified_email = require_verified_email


def metadata(client: Client) -> dict[str, Any]:
    """The client's registration metadata (RFC 7591 names)."""
    return {
        "client_id": client.client_id,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "claims": client.claims,
        "first_party": client.first_party,
        "id_token_signed_response_alg": client.id_token_signed_response_alg or "RS256",
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "require_mfa": client.require_mfa,
        # OIDC Dynamic Client Registration §2: the acr asked for when a request names none.
        "default_acr_values": [ACR_MFA] if client.require_mfa else [],
        "require_verified_email": client.require_verified_email,
    }


def rotate_secret(db: Session, client: Client) -> str:
    """A new secret for a confidential client; the old one stops working at once."""
    if client.token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
        raise ClientError(f"a {client.token_endpoint_auth_method} client has no secret")
    secret = secrets.token_urlsafe(32)
    client.secret_hash = hash_secret(secret)
    return secret


def update_client(
    client: Client,
    *,
    redirect_uris: list[str] | None = None,
    claims: dict[str, Any] | None = None,
    name: str | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    backchannel_logout_uri: str | None = None,
    dpop_bound_access_tokens: bool | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    require_pushed_authorization_requests: bool | None = None,
    require_mfa: bool | None = None,
    require_verified_email: bool | None = None,
    allow_loopback: bool = False,
) -> None:
    """Edits what an operator may change; validates like registration. New keys
    (``jwks`` or ``jwks_uri``, an empty one removes it) replace the old ones."""
    if dpop_bound_access_tokens is not None:
        client.dpop_bound_access_tokens = dpop_bound_access_tokens
    if require_pushed_authorization_requests is not None:
        client.require_pushed_authorization_requests = require_pushed_authorization_requests
    if require_mfa is not None:
        client.require_mfa = require_mfa
    if require_verified_email is not None:
        client.require_verified_email = require_verified_email
    if jwks is not None or jwks_uri is not None:
        client.jwks, client.jwks_uri = _check_keys(
            client.token_endpoint_auth_method, jwks or None, jwks_uri or None, allow_loopback
        )
    if redirect_uris is not None:
        if "authorization_code" in client.grant_types and not redirect_uris:
            raise InvalidRedirectUri("authorization_code needs at least one redirect URI")
        for uri in redirect_uris:
            if why := redirect_problem(uri):
                raise InvalidRedirectUri(f"redirect URI {uri!r}: {why}")
        client.redirect_uris = list(redirect_uris)
    if post_logout_redirect_uris is not None:
        for uri in post_logout_redirect_uris:
            if why := redirect_problem(uri):
                raise ClientError(f"post-logout redirect URI {uri!r}: {why}")
        client.post_logout_redirect_uris = list(post_logout_redirect_uris)
    if backchannel_logout_uri is not None:
        if backchannel_logout_uri:
            _check_backchannel_uri(backchannel_logout_uri, allow_loopback)
        client.backchannel_logout_uri = backchannel_logout_uri or None
    if claims is not None:
        validate_claims(claims)
        client.claims = dict(claims)
    if name is not None:
        client.name = clean_name(name)
