"""DPoP proofs at a resource server (RFC 9449 §4.3 and §7).

A DPoP-bound access token (``cnf.jkt``) is only good with a proof, signed by the key
the token is bound to, for this very request: its method (``htm``), URL (``htu``),
the token's hash (``ath``), recent (``iat``) and never seen before (``jti``). A stolen
token is useless without the client's private key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry, extract_compact

# Asymmetric algorithms only (§4.3 check 5): never "none" nor an HMAC.
ALGS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA")
KEY_TYPES = {"EC": ("ES",), "RSA": ("RS", "PS"), "OKP": ("EdDSA",)}
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_PROOF = 8192
MAX_AGE = 300  # a proof is accepted this long after its iat
MAX_SKEW = 60  # and this far ahead of our clock
# joserfc caps the protected header at 512 bytes; a proof's header carries a whole
# public key (an RSA one is larger).
REGISTRY = JWSRegistry(algorithms=list(ALGS))
REGISTRY.max_header_length = 4096


class ProofError(Exception):
    """A proof the resource server refuses (``invalid_dpop_proof``)."""


@contextmanager
def quiet_eddsa() -> Iterator[None]:
    """joserfc warns that RFC 9864 deprecates the name "EdDSA" (for Ed25519, which is
    what idp's EdDSA keys are): silenced, so callers that turn warnings into errors
    still verify them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=Warning)
        yield


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(the access token's ASCII)), no padding (§4.2)."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalise_uri(uri: str) -> str | None:
    """The URI as §4.3 check 9 compares it (RFC 3986 §6.2.2, §6.2.3), without query
    and fragment; None unless it is an absolute http(s) URI."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


class Replays:
    """The ``jti``s seen in one process, each for as long as its proof is accepted."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._monotonic = monotonic

    def add_once(self, key: str, ttl_seconds: float) -> bool:
        now = self._monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if self._seen.get(key, float("-inf")) > now:
                return False
            self._seen[key] = now + ttl_seconds
            return True


def verify_proof(
    proof: str, method: str, url: str, access_token: str, now: float, replays: Replays
) -> str:
    """Checks ``proof`` for a request of ``method`` to ``url`` carrying ``access_token``;
    returns the RFC 7638 thumbprint of its key, or raises ProofError."""
    claims, key = _signed(proof)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise ProofError("the proof needs a jti")
    if claims.get("htm") != method:
        raise ProofError("the proof's htm is not the request's method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalise_uri(htu) != normalise_uri(url):
        raise ProofError("the proof's htu is not the request's URI")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise ProofError("the proof needs an iat")
    if not now - MAX_AGE <= iat <= now + MAX_SKEW:
        raise ProofError("the proof's iat is too far from now")
    ath = claims.get("ath")
    if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
        raise ProofError("the proof's ath is not the hash of this access token")
    jkt = str(key.thumbprint())
    # Single use (§11.1): each jti once per key, for as long as its iat is accepted.
    seen = hashlib.sha256(f"{jkt}|{jti}".encode()).hexdigest()
    if not replays.add_once(seen, MAX_AGE + MAX_SKEW):
        raise ProofError("this proof was used before")
    return jkt


def _signed(proof: str) -> tuple[dict[str, Any], Any]:
    """Claims and key of a well-formed proof whose signature verifies with the public
    key in its own header (§4.3 checks 2 to 7)."""
    if not isinstance(proof, str) or not 0 < len(proof) <= MAX_PROOF:
        raise ProofError("the DPoP proof is missing or too long")
    try:
        header = dict(extract_compact(proof.encode("ascii"), registry=REGISTRY).protected)
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise ProofError("the DPoP proof is not a JWS") from None
    if header.get("typ") != "dpop+jwt":
        raise ProofError("the proof's typ must be dpop+jwt")
    alg = header.get("alg")
    if alg not in ALGS:
        raise ProofError(f"proofs are signed with one of: {' '.join(ALGS)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or PRIVATE_MEMBERS & set(jwk):
        raise ProofError("the proof's jwk must be a public key")
    if not str(alg).startswith(KEY_TYPES.get(str(jwk.get("kty")), ())):
        raise ProofError("the proof's jwk does not fit its alg")
    try:
        key = JWKRegistry.import_key(jwk)
        with quiet_eddsa():
            token = jwt.decode(proof, key, algorithms=[str(alg)], registry=REGISTRY)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProofError("the proof's signature does not verify with its jwk") from None
    if key.is_private:
        raise ProofError("the proof's jwk must be a public key")
    if not isinstance(token.claims, dict):
        raise ProofError("the proof's claims are not a JSON object")
    return token.claims, key


def bound_jkt(claims: dict[str, Any]) -> str | None:
    """The thumbprint an access token is bound to (``cnf.jkt``), if any."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None
