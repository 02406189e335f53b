"""Clients that authenticate with their own keys: private_key_jwt (RFC 7523 §2.2, OIDC
Core §9), and the keys their signed request objects are checked with (RFC 9101).

A client registers ``jwks`` (kept with the client) or ``jwks_uri`` (fetched through
idp.outbound, cached, and fetched again when an assertion names a ``kid`` the cache does
not hold, at most once a minute per client, so forged assertions cannot make idp hammer
the client's server).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from idp.keys.services import eddsa_allowed
from idp.oauth.dpop import ALGS as ASYMMETRIC
from idp.outbound import Outbound
from idp.state.store import StateStore

JWKS_TTL = 300.0  # a fetched key set is used this long
REFETCH_EVERY = 60.0  # an unknown kid fetches again at most this often, per client
MAX_ASSERTION_LIFETIME = 600  # exp at most this far ahead: an assertion is short-lived
REGISTRY = JWSRegistry(algorithms=list(ASYMMETRIC))
REGISTRY.max_header_length = 2048


class ClientKeyError(Exception):
    """The client's keys cannot be had (its jwks_uri does not answer with a key set)."""


class ClientKeys:
    """Each client's public key set."""

    def __init__(self, outbound: Outbound, monotonic: Any = time.monotonic) -> None:
        self.outbound = outbound
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # client_id -> (jwks_uri, keys, fetched at, last forced refetch)
        self._fetched: dict[str, tuple[str, KeySet, float, float]] = {}

    def key_set(self, client: Any, *, kid: str | None = None) -> KeySet:
        """The client's keys; with ``kid`` not among cached ones, fetched again (within
        the refetch limit)."""
        if client.jwks:
            return KeySet.import_key_set(client.jwks)
        uri = client.jwks_uri
        if not uri:
            raise ClientKeyError("the client has registered no keys")
        now = self._monotonic()
        with self._lock:
            cached = self._fetched.get(client.client_id)
        forced_at = float("-inf")
        if cached is not None and cached[0] == uri:
            _, keys, fetched_at, forced_at = cached
            known = kid is None or any(k.kid == kid for k in keys)
            if now - fetched_at < JWKS_TTL:
                if known or now - forced_at < REFETCH_EVERY:
                    return keys
                forced_at = now  # an unknown kid: fetch again, then not for a minute
        keys = self._fetch(uri)
        with self._lock:
            self._fetched[client.client_id] = (uri, keys, now, forced_at)
        return keys

    def _fetch(self, uri: str) -> KeySet:
        try:
            data = json.loads(self.outbound.get(uri, max_bytes=64_000))
            if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
                raise ValueError("not a key set")
            usable = {"keys": [k for k in data["keys"] if isinstance(k, dict) and "d" not in k]}
            return KeySet.import_key_set(usable)  # type: ignore[arg-type]
        except (OSError, ValueError, TypeError, KeyError, JoseError) as exc:
            raise ClientKeyError(f"the client's jwks_uri gave no key set ({exc})") from None


def verify_client_jwt(
    keys: ClientKeys, client: Any, token: str, *, algorithms: list[str] | None = None
) -> jwt.Token:
    """A JWT signed by one of ``client``'s keys with an asymmetric algorithm (never
    ``none`` nor an HMAC keyed by something the client and idp share)."""
    allowed = [a for a in (algorithms or ASYMMETRIC) if a in ASYMMETRIC]

    def key_for(guest: Any) -> Any:
        header = guest.headers()
        if header.get("alg") not in allowed:
            raise ValueError(f"the alg must be one of {' '.join(allowed)}")
        return keys.key_set(client, kid=header.get("kid"))

    with eddsa_allowed("EdDSA" in allowed):
        return jwt.decode(token, key_for, algorithms=allowed, registry=REGISTRY)


class PrivateKeyJWT(JWTBearerClientAssertion):
    """authlib's RFC 7523 client assertion, with idp's rules: asymmetric algorithms
    only, ``aud`` the issuer or one of the endpoints the assertion may be sent to, a
    short ``exp``, and each ``jti`` once, across processes (the state store)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, issuer: str, keys: ClientKeys, store: StateStore) -> None:
        super().__init__(validate_jti=True, leeway=30)
        base = issuer.rstrip("/")
        self.audiences = [issuer, base, *(base + p for p in ENDPOINTS)]
        self.keys = keys
        self.store = store
        self._client: Any = None

    def get_audiences(self) -> list[str]:
        return self.audiences

    def resolve_client_public_key(self, client: Any) -> Any:
        self._client = client
        return client  # the key is found per assertion, by process_assertion_claims

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = verify_client_jwt(self.keys, resolve_key, assertion)
        except (JoseError, ValueError, ClientKeyError) as exc:
            raise InvalidClientError(description=f"The client assertion: {exc}") from None
        claims = token.claims
        self.verify_claims(claims)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp > time.time() + MAX_ASSERTION_LIFETIME:
            raise InvalidClientError(description="The client assertion must expire soon.")
        return claims

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            return False
        seen = hashlib.sha256(f"{claims['sub']}|{jti}".encode()).hexdigest()
        ttl = int(max(60, float(claims["exp"]) - time.time() + self.leeway))
        return self.store.add_once(f"client-assertion:{seen}", ttl)


ENDPOINTS = ("/token", "/par", "/introspect", "/revoke")
