"""Offline verification of idp access tokens (RFC 9068) for resource servers.

Tokens are checked locally against the issuer's cached JWKS; revocations come from
idp's own feed (``/revocations``, long polled) or, with ``signals=True``, from its
Shared Signals as any SSF receiver would get them (a poll stream of CAEP
session-revoked and RISC account-disabled events). Either way a killed session stops
passing within about a second, without an introspection call per request.

Once it has polled, it fails closed: when no poll has succeeded for ``max_feed_age``
seconds (the issuer unreachable), or its Shared Signals stream is paused or disabled,
every token is refused, since a revocation may have been missed.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp_verifier import http
from idp_verifier.dpop import ProofError, Replays, bound_jkt, quiet_eddsa, verify_proof
from idp_verifier.signals import (
    ACCOUNT_DISABLED,
    SESSION_REVOKED,
    STREAM_UPDATED,
    BadSet,
    Receiver,
)

log = logging.getLogger(__name__)
ALGORITHMS = ["ES256", "RS256", "EdDSA"]
# How long a revocation from a SET is kept (SETs carry no token expiry): longer than
# any access token idp issues lives.
SIGNAL_MEMORY = 86_400
MAX_SET_CHARS = 16_000  # a pushed SET longer than this is refused unread


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (token and proof times)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (the feed's age)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class InvalidToken(Exception):
    """The token must not be accepted; ``str()`` says why. ``error`` is the RFC 6750 /
    RFC 9449 error code and ``scheme`` the challenge to answer with."""

    def __init__(self, why: str, error: str = "invalid_token", scheme: str = "Bearer") -> None:
        super().__init__(why)
        self.error = error
        self.scheme = scheme

    @property
    def challenge(self) -> str:
        """The WWW-Authenticate value of a 401 for this refusal."""
        return f'{self.scheme} error="{self.error}"'


class KeysUnavailable(OSError):
    """The issuer's JWKS could not be fetched or read (like a network error: nothing
    can be decided about a token or a SET until it can)."""


def _retry_after(value: str | None) -> float:
    """Seconds of a Retry-After header in seconds (1 to 60; 5 when absent or a date)."""
    try:
        return min(max(float(value or 5), 1.0), 60.0)
    except ValueError:
        return 5.0


class Verifier:
    def __init__(
        self,
        issuer: str,
        *,
        audience: str,
        client_id: str,
        client_secret: str,
        jwks_refresh_seconds: float = 300.0,
        leeway: int = 0,
        max_feed_age: float = 60.0,
        kid_refetch_seconds: float = 60.0,
        signals: bool = False,
        clock: Clock | None = None,
    ) -> None:
        """``audience``: this resource server's name in tokens' ``aud``. ``client_id``
        and ``client_secret``: its client at idp, to read the feed (or, with
        ``signals``, a client with scope ``ssf`` and the client_credentials grant, to
        follow Shared Signals instead). ``max_feed_age``: seconds without a successful
        poll after which every token is refused."""
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.client_id = client_id
        self.signals = signals
        self.jwks_refresh_seconds = jwks_refresh_seconds
        self.leeway = leeway
        self.max_feed_age = max_feed_age
        self.kid_refetch_seconds = kid_refetch_seconds
        self.clock: Clock = clock or SystemClock()
        self._basic = http.basic_auth(client_id, client_secret)
        self._receiver = Receiver(self.issuer, client_id, client_secret, self.clock.time)
        self._keys: KeySet | None = None
        self._keys_at = float("-inf")
        self._refetched_at = float("-inf")
        self._fed_at: float | None = None  # monotonic time of the last successful poll
        self.stream_status = "enabled"  # of the Shared Signals stream, as last told
        self._revoked: dict[tuple[str, str], float] = {}  # ("sid"/"jti", value) -> until
        # ("client"/"user", value) -> (issued_before, until): older tokens of it revoked
        self._not_before: dict[tuple[str, str], tuple[int, float]] = {}
        self._cursor = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Proofs are single use per resource server (RFC 9449 §11.1).
        self._replays = Replays(self.clock.monotonic)

    # --- keys -------------------------------------------------------------------------
    def _get(self, url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Any:
        return http.get_json(url, headers, timeout)

    def _keyset(self, force: bool = False) -> KeySet:
        fresh = self.clock.monotonic() - self._keys_at < self.jwks_refresh_seconds
        if self._keys is None or force or not fresh:
            try:
                self._keys = KeySet.import_key_set(self._get(self.issuer + "/jwks.json"))
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise KeysUnavailable(f"the issuer's JWKS is unusable: {exc}") from None
            self._keys_at = self.clock.monotonic()
        return self._keys

    def _decode(self, token: str) -> Any:
        """The JWS verified with the issuer's keys. An unknown kid may be a key
        published since our copy: the JWKS is fetched again, at most once per
        kid_refetch_seconds whatever tokens arrive, so forged kids cannot make us hammer
        the issuer."""
        try:
            with quiet_eddsa():
                return jwt.decode(token, self._keyset(), algorithms=ALGORITHMS)
        except (JoseError, ValueError) as first:
            if "kid" not in str(first).lower() and "key" not in str(first).lower():
                raise
            if self.clock.monotonic() - self._refetched_at < self.kid_refetch_seconds:
                raise
            self._refetched_at = self.clock.monotonic()
            with quiet_eddsa():
                return jwt.decode(token, self._keyset(force=True), algorithms=ALGORITHMS)

    # --- Shared Signals (SSF 1.0 poll) ----------------------------------------------------
    def _verified_set(self, token: str) -> dict[str, Any]:
        """RFC 8417 / SSF 1.0 §4: a SET signed by the issuer's key, for this receiver."""
        try:
            decoded = self._decode(token)
        except OSError:
            raise  # the JWKS out of reach: the poll fails and the SETs come again
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise BadSet("invalid_key", f"bad signature or format: {type(exc).__name__}") from None
        claims = dict(decoded.claims)
        if decoded.header.get("typ") != "secevent+jwt":
            raise BadSet("invalid_request", "not a security event token (typ)")
        if claims.get("iss") != self.issuer:
            raise BadSet("invalid_issuer", "not from the issuer")
        aud = claims.get("aud")
        if self.client_id not in (aud if isinstance(aud, list) else [aud]):
            raise BadSet("invalid_audience", "for another receiver")
        if not isinstance(claims.get("events"), dict) or not isinstance(claims.get("sub_id"), dict):
            raise BadSet("invalid_request", "events and sub_id must be objects")
        return claims

    def _apply(self, claims: dict[str, Any], until: float) -> None:
        subject, events = claims["sub_id"], claims["events"]
        if SESSION_REVOKED in events:
            session = subject.get("session")
            if isinstance(session, dict) and session.get("id"):
                self._revoked[("sid", str(session["id"]))] = until
        if ACCOUNT_DISABLED in events:
            user = subject.get("user") if subject.get("format") == "complex" else subject
            if isinstance(user, dict) and user.get("sub"):
                key = ("user", str(user["sub"]))
                before, _ = self._not_before.get(key, (0, 0))
                self._not_before[key] = (max(before, int(claims.get("iat", 0)) + 1), until)
        updated = events.get(STREAM_UPDATED)
        if isinstance(updated, dict) and subject.get("id") == self._receiver.stream_id:
            # SSF 1.0 §8.1.5: paused or disabled, events are held or dropped.
            self.stream_status = str(updated.get("status"))
            level = logging.INFO if self.stream_status == "enabled" else logging.WARNING
            log.log(level, "the Shared Signals stream is now %s", self.stream_status)

    def accept_set(self, token: str) -> dict[str, Any]:
        """A Security Event Token pushed to this receiver (RFC 8935: the body of the
        transmitter's POST), verified as a polled one is and applied at once; returns
        its claims. Raises InvalidToken whose ``error`` is the RFC 8935 §2.4 code to
        answer 400 with (``{"err": error, "description": str(exc)}``); an OSError
        (the JWKS out of reach) should be a 5xx, so that the transmitter sends it again."""
        if not token or len(token) > MAX_SET_CHARS:
            raise InvalidToken("malformed security event token", "invalid_request")
        try:
            claims = self._verified_set(token.strip())
        except BadSet as exc:
            raise InvalidToken(str(exc), exc.err) from None
        with self._lock:
            self._apply(claims, self.clock.time() + SIGNAL_MEMORY)
        return claims

    def _poll_signals(self, wait: float) -> int:
        if not self._receiver.connected:
            self.stream_status = self._receiver.connect()
        got = self._receiver.poll(wait, self._verified_set)
        until = self.clock.time() + SIGNAL_MEMORY
        with self._lock:
            for claims in got:
                self._apply(claims, until)
            self._fed_at = self.clock.monotonic()
        return len(got)

    # --- idp's revocation feed ----------------------------------------------------------
    def _poll_feed(self, wait: float) -> int:
        query = urllib.parse.urlencode({"after": self._cursor, "wait": wait})
        data = self._get(
            f"{self.issuer}/revocations?{query}", {"Authorization": self._basic}, wait + 10
        )
        with self._lock:
            for entry in data["revocations"]:
                key, exp = (entry["type"], entry["value"]), int(entry["exp"])
                if "issued_before" in entry:  # every token of a client or user, until then
                    before, until = self._not_before.get(key, (0, 0))
                    self._not_before[key] = (
                        max(before, int(entry["issued_before"])),
                        max(until, exp),
                    )
                else:
                    self._revoked[key] = max(exp, self._revoked.get(key, 0))
            self._cursor = int(data["cursor"])
            self._fed_at = self.clock.monotonic()
        return len(data["revocations"])

    def poll(self, wait: float = 0) -> int:
        """Fetches new revocations once (from idp's feed, or its Shared Signals with
        ``signals``), waiting up to ``wait`` seconds for some; returns how many arrived.
        From the first poll on, tokens are refused while the last successful one is
        older than ``max_feed_age``."""
        count = self._poll_signals(wait) if self.signals else self._poll_feed(wait)
        now = self.clock.time()
        with self._lock:
            self._revoked = {k: t for k, t in self._revoked.items() if t > now}
            self._not_before = {k: v for k, v in self._not_before.items() if v[1] > now}
        return count

    def start(self, wait: float = 25) -> None:
        """Polls once, then follows in a daemon thread (long polling) until :meth:`stop`."""
        self.poll()

        def follow() -> None:
            while not self._stop.is_set():
                try:
                    self.poll(wait)
                except urllib.error.HTTPError as err:
                    # 429: idp holds as many polls as it will; come back when it says.
                    pause = _retry_after(err.headers.get("Retry-After")) if err.code == 429 else 1
                    log.warning("revocation feed answered %s; retrying in %ss", err.code, pause)
                    self._stop.wait(pause)
                except Exception:  # noqa: BLE001 - keep following after a network error
                    log.warning("revocation feed unreachable; retrying")
                    self._stop.wait(1)

        self._thread = threading.Thread(target=follow, name="idp-revocations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def is_revoked(self, claims: dict[str, Any]) -> bool:
        iat = int(claims.get("iat", 0))
        owners = [("client", str(claims.get("client_id")))]
        if claims.get("sub") != claims.get("client_id"):
            owners.append(("user", str(claims.get("sub"))))
        with self._lock:
            if ("jti", str(claims.get("jti"))) in self._revoked:
                return True
            if claims.get("sid") and ("sid", str(claims["sid"])) in self._revoked:
                return True
            return any(iat < self._not_before.get(owner, (0, 0))[0] for owner in owners)

    def _feed_problem(self) -> str | None:
        """Why revocations may have been missed, if they may."""
        if self._fed_at is None:
            return None  # not following: offline verification only
        if self.clock.monotonic() - self._fed_at > self.max_feed_age:
            return "revocation feed unavailable"
        if self.signals and self.stream_status != "enabled":
            return f"revocation feed unavailable (the signals stream is {self.stream_status})"
        return None

    # --- verification -------------------------------------------------------------------
    def verify_request(
        self, authorization: str, dpop: str | None, method: str, url: str
    ) -> dict[str, Any]:
        """The claims of the access token of an HTTP request: its ``Authorization``
        header (``Bearer`` or ``DPoP`` scheme), its ``DPoP`` header, method and URL."""
        scheme, _, token = (authorization or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self.verify(token.strip())
        if scheme == "dpop":
            if not dpop:
                raise InvalidToken("a DPoP proof is required", "invalid_dpop_proof", "DPoP")
            return self.verify(token.strip(), dpop=dpop, method=method, url=url)
        raise InvalidToken("an access token is required", "invalid_request")

    def verify(
        self, token: str, *, dpop: str | None = None, method: str = "", url: str = ""
    ) -> dict[str, Any]:
        """The claims of a valid, unrevoked access token for this audience. A DPoP-bound
        token (RFC 9449 ``cnf.jkt``) needs ``dpop``, the request's proof, with its
        ``method`` and ``url``; as a bearer token it is refused."""
        claims = self._verify_jwt(token)
        jkt = bound_jkt(claims)
        if jkt is None:
            if dpop is not None:
                raise InvalidToken("not a DPoP-bound token", scheme="DPoP")
            return claims
        if dpop is None:
            raise InvalidToken("a DPoP-bound token needs the DPoP scheme", scheme="DPoP")
        try:
            proven = verify_proof(dpop, method, url, token, self.clock.time(), self._replays)
        except ProofError as exc:
            raise InvalidToken(f"DPoP: {exc}", "invalid_dpop_proof", "DPoP") from None
        if proven != jkt:
            raise InvalidToken("the proof is not by the token's key", "invalid_dpop_proof", "DPoP")
        return claims

    def _verify_jwt(self, token: str) -> dict[str, Any]:
        if not token or len(token) > 8000:
            raise InvalidToken("malformed token")
        try:
            decoded = self._decode(token)
        except OSError:  # urllib's errors too: the JWKS out of reach
            raise InvalidToken("the issuer's keys are unavailable") from None
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(f"bad signature or format: {exc.__class__.__name__}") from None
        if decoded.header.get("typ") != "at+jwt":
            raise InvalidToken("not an access token (typ)")
        claims = dict(decoded.claims)
        now = int(self.clock.time())
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        if self.audience not in audiences:
            raise InvalidToken("wrong audience")
        if int(claims.get("exp", 0)) <= now - self.leeway:
            raise InvalidToken("expired")
        if int(claims.get("nbf", 0)) > now + self.leeway:
            raise InvalidToken("not yet valid")
        if problem := self._feed_problem():
            raise InvalidToken(problem)
        if self.is_revoked(claims):
            raise InvalidToken("revoked")
        return claims
