"""DPoP (RFC 9449): proofs that the caller holds the private key a token is bound to.

A proof is a JWS the client signs with its own key, carried in the ``DPoP`` header of
one HTTP request. It names the request (``htm``, ``htu``), when it was made (``iat``),
itself (``jti``, single use) and, beside an access token, that token (``ath``). The
key's RFC 7638 thumbprint (``jkt``) is what tokens are bound to (``cnf.jkt``), so a
stolen token is useless without the key. This module checks proofs exactly as §4.3 says,
and makes and checks the server's nonces (§8, §9): stateless, an HMAC of the minute,
valid for a few minutes in every process that shares the key-encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry, extract_compact

from idp.keys.services import eddsa_allowed

if TYPE_CHECKING:
    import datetime as dt

# Asymmetric algorithms only (§4.3 check 5): never "none" nor an HMAC.
ALGS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA")
KEY_TYPES = {"EC": ("ES",), "RSA": ("RS", "PS"), "OKP": ("EdDSA",)}
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_PROOF = 8192
MAX_AGE = 300  # a proof is accepted this long after its iat
MAX_SKEW = 60  # and this far ahead of our clock
NONCE_STEP = 60  # a server nonce names a minute
NONCE_STEPS = 5  # and is accepted for this many
# joserfc's default registry caps the protected header at 512 bytes; a proof's header
# carries the whole public key (an RSA one is larger).
REGISTRY = JWSRegistry(algorithms=list(ALGS))
REGISTRY.max_header_length = 4096


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class ReplayStore(Protocol):
    """idp's state store (shared by every process), or a resource server's own."""

    def add_once(self, key: str, ttl_seconds: int) -> bool: ...


class MemoryReplays:
    """A replay store for one process."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def add_once(self, key: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if self._seen.get(key, 0.0) > now:
                return False
            self._seen[key] = now + ttl_seconds
            return True


class DPoPError(Exception):
    """A proof idp refuses: answered ``invalid_dpop_proof`` (or ``use_dpop_nonce``)."""

    error = "invalid_dpop_proof"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UseNonce(DPoPError):
    """The proof lacks the server's current nonce (§8): send one, with DPoP-Nonce."""

    error = "use_dpop_nonce"


@dataclass(frozen=True)
class Proof:
    jkt: str  # the key's RFC 7638 SHA-256 thumbprint
    jti: str


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(the access token's ASCII)), no padding (§4.2)."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalise_uri(uri: str) -> str | None:
    """The URI as §4.3 check 9 compares it: RFC 3986 §6.2.2 and §6.2.3 normalised
    (scheme and host lower case, default port dropped, empty path "/"), without its
    query and fragment. None when it is not an absolute http(s) URI."""
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


def header_value(values: Iterable[str]) -> str | None:
    """The one DPoP header of a request (§4.3 check 1): None when there is none; a
    DPoPError when there are several (a WSGI server joins them with commas, which a
    compact JWS never holds)."""
    found = [v.strip() for v in values if v is not None]
    if not found:
        return None
    if len(found) > 1 or "," in found[0] or not found[0]:
        raise DPoPError("Send exactly one DPoP header.")
    return found[0]


class DPoP:
    """Checks proofs for one issuer; replays are refused across processes through the
    shared state store."""

    def __init__(
        self,
        issuer: str,
        store: ReplayStore,
        clock: Clock,
        secret: bytes,
        *,
        require_nonce: bool = False,
        algs: tuple[str, ...] = ALGS,
        previous: tuple[bytes, ...] = (),
    ) -> None:
        self.base = issuer.rstrip("/")
        self.store = store
        self.clock = clock
        self._nonce_key = hmac.new(secret, b"idp dpop nonce", hashlib.sha256).digest()
        # During a KEK rotation (``previous``: the previous KEKs), nonces handed out by
        # processes still on the previous KEK are accepted too.
        self._previous_nonce_keys = tuple(
            hmac.new(p, b"idp dpop nonce", hashlib.sha256).digest() for p in previous
        )
        self.require_nonce = require_nonce
        self.algs = algs

    # --- server nonces (§8, §9) ---------------------------------------------------------
    def _nonce_at(self, step: int, key: bytes | None = None) -> str:
        mac = hmac.new(key or self._nonce_key, str(step).encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(step.to_bytes(6, "big") + mac).rstrip(b"=").decode()

    def nonce(self) -> str:
        """The nonce to hand out now (in ``DPoP-Nonce``)."""
        return self._nonce_at(int(self.clock.now().timestamp()) // NONCE_STEP)

    def nonce_valid(self, value: Any) -> bool:
        if not isinstance(value, str) or len(value) != 32:
            return False
        try:
            step = int.from_bytes(base64.urlsafe_b64decode(value + "==")[:6], "big")
        except ValueError:
            return False
        now = int(self.clock.now().timestamp()) // NONCE_STEP
        if not now - NONCE_STEPS < step <= now:
            return False
        return any(
            hmac.compare_digest(value, self._nonce_at(step, key))
            for key in (self._nonce_key, *self._previous_nonce_keys)
        )

    # --- proofs (§4.3) -----------------------------------------------------------------
    def of_request(self, req: Any, access_token: str | None = None) -> Proof | None:
        """The checked proof of a request to one of idp's endpoints (a ProtocolRequest),
        or None when it carries none; raises DPoPError for a bad one."""
        # One lookup on the hot path (a WSGI server joins repeated headers with commas,
        # which header_value refuses).
        value = req.headers.get("DPoP")
        proof = header_value(() if value is None else (value,))
        if proof is None:
            return None
        return self.verify(proof, req.method, self.base + req.path, access_token=access_token)

    def verify(
        self, proof: str, method: str, uri: str, *, access_token: str | None = None
    ) -> Proof:
        """Checks ``proof`` for a request of ``method`` to ``uri`` (and, at a resource,
        for ``access_token``); returns its key's thumbprint or raises DPoPError."""
        header, claims, key = self._signed(proof)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise DPoPError("The proof needs a jti.")
        if claims.get("htm") != method:
            raise DPoPError("The proof's htm is not the request's method.")
        expected = normalise_uri(uri)
        htu = claims.get("htu")
        if not isinstance(htu, str) or normalise_uri(htu) != expected:
            raise DPoPError("The proof's htu is not the request's URI.")
        iat = claims.get("iat")
        now = self.clock.now().timestamp()
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise DPoPError("The proof needs an iat.")
        if not now - MAX_AGE <= iat <= now + MAX_SKEW:
            raise DPoPError("The proof's iat is too far from now.")
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(
                ath, access_token_hash(access_token)
            ):
                raise DPoPError("The proof's ath is not the hash of this access token.")
        if self.require_nonce and not self.nonce_valid(claims.get("nonce")):
            raise UseNonce("Use the DPoP-Nonce this server gave.")
        jkt = key.thumbprint()
        # Single use (§11.1): each jti once per key, for as long as its iat is accepted.
        seen = hashlib.sha256(f"{jkt}|{jti}".encode()).hexdigest()
        if not self.store.add_once(f"dpop:jti:{seen}", MAX_AGE + MAX_SKEW):
            raise DPoPError("This proof was used before.")
        return Proof(jkt=jkt, jti=jti)

    def _signed(self, proof: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """Header, claims and key of a well-formed proof whose signature verifies with
        the public key in its own header (§4.3 checks 2 to 7)."""
        if not isinstance(proof, str) or not 0 < len(proof) <= MAX_PROOF:
            raise DPoPError("The DPoP proof is missing or too long.")
        try:
            header = dict(extract_compact(proof.encode("ascii"), registry=REGISTRY).protected)
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise DPoPError("The DPoP proof is not a JWS.") from None
        if header.get("typ") != "dpop+jwt":
            raise DPoPError("The proof's typ must be dpop+jwt.")
        alg = header.get("alg")
        if alg not in self.algs:
            raise DPoPError(f"Proofs are signed with one of: {' '.join(self.algs)}.")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or PRIVATE_MEMBERS & set(jwk):
            raise DPoPError("The proof's jwk must be a public key.")
        if not str(alg).startswith(KEY_TYPES.get(str(jwk.get("kty")), ())):
            raise DPoPError("The proof's jwk does not fit its alg.")
        try:
            key = JWKRegistry.import_key(jwk)
            with eddsa_allowed(alg == "EdDSA"):
                token = jwt.decode(proof, key, algorithms=[str(alg)], registry=REGISTRY)
        except (JoseError, ValueError, TypeError, KeyError):
            raise DPoPError("The proof's signature does not verify with its jwk.") from None
        if key.is_private:
            raise DPoPError("The proof's jwk must be a public key.")
        claims = token.claims
        if not isinstance(claims, dict):
            raise DPoPError("The proof's claims are not a JSON object.")
        return header, claims, key


def bound_jkt(claims: dict[str, Any]) -> str | None:
    """The thumbprint an access token is bound to (``cnf.jkt``), if any."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None
