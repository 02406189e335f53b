"""Offline verification of idp access tokens for resource servers (SPEC §6).

A resource server verifies RFC 9068 access tokens locally against idp's cached JWKS and
follows idp's revocation feed, so a killed session or revoked token stops passing
within about a second, without an introspection call per request::

    from idp.verifier import Verifier

    verifier = Verifier("https://login.example.com", audience="shop",
                        client_id="shop-api", client_secret="...")
    verifier.start()                       # follows /revocations in a background thread
    claims = verifier.verify_request(      # raises InvalidToken
        request.headers["Authorization"], request.headers.get("DPoP"),
        request.method, request.url)

A DPoP-bound token (``cnf.jkt``, RFC 9449) passes only with the ``DPoP`` scheme and a
proof signed by its key for this very request (method, URL, the token's hash, a fresh
``jti``): a stolen token is useless without the client's private key. As a bearer
token it is refused.

With ``signals=True`` it follows idp's Shared Signals instead, by poll (``start``); a
resource server that runs an RFC 8935 push endpoint hands each POSTed body to
:meth:`Verifier.accept_set` (a 400 with ``{"err": exc.error}`` on InvalidToken, else
202).

Once it follows the feed it fails closed: when no poll has succeeded for
``max_feed_age`` seconds (idp unreachable), every token is refused, since a revocation
may have been missed. A token with an unknown ``kid`` makes it fetch the JWKS again at
most once per ``kid_refetch_seconds``, so forged tokens cannot make it hammer idp.

Only the standard library, joserfc and idp.oauth.dpop are used, so it can be vendored.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.keys.services import eddsa_allowed
from idp.oauth.dpop import DPoP, DPoPError, MemoryReplays, bound_jkt

log = logging.getLogger(__name__)
ALGORITHMS = ["ES256", "RS256", "EdDSA"]
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
SIGNALS = [SESSION_REVOKED, ACCOUNT_DISABLED]


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


class _SystemClock:
    def now(self) -> Any:
        import datetime as dt

        return dt.datetime.now(dt.UTC)


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
    ) -> None:
        """``signals``: follow idp's Shared Signals (SSF 1.0, a poll stream of CAEP
        session-revoked and RISC account-disabled events; the client needs the ``ssf``
        scope and the client_credentials grant) instead of idp's own feed."""
        self.issuer = issuer.rstrip("/") if issuer.endswith("/") else issuer
        self.audience = audience
        self.client_id = client_id
        self.signals = signals
        self._ssf_token: tuple[str, float] | None = None  # (access token, expires at)
        self._stream_url: str | None = None
        self._acks: list[str] = []
        self._auth = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self.jwks_refresh_seconds = jwks_refresh_seconds
        self.leeway = leeway
        self.max_feed_age = max_feed_age
        self.kid_refetch_seconds = kid_refetch_seconds
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._refetched_at = float("-inf")
        self._following = False
        self._fed_at = float("-inf")  # monotonic time of the last successful poll
        self._revoked: dict[tuple[str, str], int] = {}  # ("sid"/"jti", value) -> exp
        # ("client"/"user", value) -> (issued_before, exp): older tokens of it are revoked
        self._not_before: dict[tuple[str, str], tuple[int, int]] = {}
        self._cursor = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Proofs are single use per resource server (RFC 9449 §11.1); no server nonces.
        self._dpop = DPoP(self.issuer, MemoryReplays(), _SystemClock(), b"")

    # --- keys -------------------------------------------------------------------------
    def _get(self, url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Any:
        req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - issuer URL
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return json.loads(resp.read())

    def _keyset(self, force: bool = False) -> KeySet:
        fresh = time.monotonic() - self._keys_at < self.jwks_refresh_seconds
        if self._keys is None or force or not fresh:
            data = self._get(self.issuer + "/jwks.json")
            self._keys = KeySet.import_key_set(data)
            self._keys_at = time.monotonic()
        return self._keys

    # --- Shared Signals (SSF 1.0 poll, RFC 8936) ------------------------------------------
    def _post_json(self, url: str, body: Any, token: str, timeout: float) -> Any:
        req = urllib.request.Request(  # noqa: S310 - the issuer's endpoints
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
        return json.loads(raw) if raw else None

    def _token(self) -> str:
        """An ssf-scoped client_credentials access token, fetched again before it ends."""
        if self._ssf_token is None or self._ssf_token[1] - 30 < time.time():
            form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "ssf"})
            req = urllib.request.Request(  # noqa: S310 - the issuer's token endpoint
                self.issuer + "/token",
                data=form.encode(),
                method="POST",
                headers={
                    "Authorization": self._auth,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                got = json.loads(resp.read())
            self._ssf_token = (str(got["access_token"]), time.time() + int(got["expires_in"]))
        return self._ssf_token[0]

    def _stream(self) -> str:
        """This receiver's poll stream's URL: an existing one, or one made now."""
        if self._stream_url is None:
            meta = self._get(self.issuer + "/.well-known/ssf-configuration")
            endpoint = str(meta["configuration_endpoint"])
            mine = self._get(endpoint, {"Authorization": f"Bearer {self._token()}"})
            polled = [x for x in mine if x["delivery"]["method"] == "urn:ietf:rfc:8936"]
            stream = (
                polled[0]
                if polled
                else self._post_json(
                    endpoint,
                    {"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": SIGNALS},
                    self._token(),
                    10,
                )
            )
            self._stream_url = str(stream["delivery"]["endpoint_url"])
        return self._stream_url

    def _verified_set(self, token: str) -> dict[str, Any]:
        """RFC 8417 / SSF 1.0 §4: a SET signed by idp's key, for this receiver."""
        with eddsa_allowed():
            decoded = jwt.decode(token, self._keyset(), algorithms=ALGORITHMS)
        claims = dict(decoded.claims)
        if decoded.header.get("typ") != "secevent+jwt":
            raise InvalidToken("not a security event token (typ)", "invalid_request")
        if claims.get("iss") != self.issuer:
            raise InvalidToken("a security event token from another issuer", "invalid_issuer")
        if claims.get("aud") != self.client_id:
            raise InvalidToken("a security event token for another receiver", "invalid_audience")
        return claims

    def _poll_signals(self, wait: float) -> int:
        url = self._stream()
        body = {"ack": self._acks, "returnImmediately": wait <= 0, "maxEvents": 100}
        try:
            got = self._post_json(url, body, self._token(), wait + 40)
        except urllib.error.HTTPError as err:
            if err.code == 401:
                self._ssf_token = None  # fetched again next time
            raise
        self._acks = []
        with self._lock:
            for jti, token in got["sets"].items():
                try:
                    claims = self._verified_set(token)
                except (JoseError, ValueError, InvalidToken) as exc:
                    log.warning("ignored a security event token: %s", exc)
                    continue
                self._acks.append(jti)
                self._apply_set(claims)
            self._fed_at = time.monotonic()
        return len(got["sets"])

    def _apply_set(self, claims: dict[str, Any]) -> None:
        """Applies a verified SET's session-revoked or account-disabled event (with
        ``self._lock`` held)."""
        horizon = int(time.time()) + 3600  # longer than any token idp issues lives
        subject = claims.get("sub_id") or {}
        events = claims.get("events") or {}
        if SESSION_REVOKED in events and subject.get("session"):
            self._revoked[("sid", str(subject["session"]["id"]))] = horizon
        if ACCOUNT_DISABLED in events and subject.get("sub"):
            before, _ = self._not_before.get(("user", str(subject["sub"])), (0, 0))
            self._not_before[("user", str(subject["sub"]))] = (
                max(before, int(claims.get("iat", 0)) + 1),
                horizon,
            )

    def accept_set(self, token: str) -> dict[str, Any]:
        """A Security Event Token pushed to this receiver (RFC 8935, the body of idp's
        POST): verified as a poll's are (idp's key, ``typ``, ``iss``, ``aud``) and
        applied at once; returns its claims. Raises InvalidToken when it is not a SET
        from the issuer for this receiver: answer 400 with ``{"err": error,
        "description": str(exc)}`` (RFC 8935 §2.3; ``error`` is one of its codes)."""
        if not token or len(token) > 16000:
            raise InvalidToken("malformed security event token", "invalid_request")
        try:
            claims = self._verified_set(token.strip())
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(
                f"bad signature or format: {exc.__class__.__name__}", "invalid_request"
            ) from None
        with self._lock:
            self._apply_set(claims)
        return claims

    # --- revocation feed ----------------------------------------------------------------
    def poll(self, wait: float = 0) -> int:
        """Fetches new entries once (idp's feed, or its Shared Signals with
        ``signals``); returns how many arrived."""
        if self.signals:
            return self._poll_signals(wait)
        query = urllib.parse.urlencode({"after": self._cursor, "wait": wait})
        data = self._get(
            f"{self.issuer}/revocations?{query}", {"Authorization": self._auth}, timeout=wait + 10
        )
        now = int(time.time())
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
            self._fed_at = time.monotonic()
            self._revoked = {k: exp for k, exp in self._revoked.items() if exp > now}
            self._not_before = {k: v for k, v in self._not_before.items() if v[1] > now}
        return len(data["revocations"])

    def start(self, wait: float = 25) -> None:
        """Follows the feed in a daemon thread (long polling) until :meth:`stop`; from
        then on, tokens are refused while the feed is older than ``max_feed_age``."""
        self.poll()
        self._following = True

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
        token needs ``dpop``, the request's proof, with its ``method`` and ``url``."""
        claims = self._verify_jwt(token)
        jkt = bound_jkt(claims)
        if jkt is None:
            if dpop is not None:
                raise InvalidToken("not a DPoP-bound token", scheme="DPoP")
            return claims
        if dpop is None:
            raise InvalidToken("a DPoP-bound token needs the DPoP scheme", scheme="DPoP")
        try:
            proof = self._dpop.verify(dpop, method, url, access_token=token)
        except DPoPError as exc:
            raise InvalidToken(f"DPoP: {exc.description}", exc.error, "DPoP") from None
        if proof.jkt != jkt:
            raise InvalidToken("the proof is not by the token's key", "invalid_dpop_proof", "DPoP")
        return claims

    def _verify_jwt(self, token: str) -> dict[str, Any]:
        if not token or len(token) > 8000:
            raise InvalidToken("malformed token")
        try:
            try:
                with eddsa_allowed():
                    decoded = jwt.decode(token, self._keyset(), algorithms=ALGORITHMS)
            except (JoseError, ValueError) as first:
                # An unknown kid may be a key published since our copy: refetch, at most
                # once per kid_refetch_seconds whatever tokens arrive.
                if "kid" not in str(first).lower() and "key" not in str(first).lower():
                    raise
                if time.monotonic() - self._refetched_at < self.kid_refetch_seconds:
                    raise
                self._refetched_at = time.monotonic()
                with eddsa_allowed():
                    decoded = jwt.decode(token, self._keyset(force=True), algorithms=ALGORITHMS)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(f"bad signature or format: {exc.__class__.__name__}") from None
        if decoded.header.get("typ") != "at+jwt":
            raise InvalidToken("not an access token (typ)")
        claims = dict(decoded.claims)
        now = int(time.time())
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
        if self._following and time.monotonic() - self._fed_at > self.max_feed_age:
            raise InvalidToken("revocation feed unavailable")
        if self.is_revoked(claims):
            raise InvalidToken("revoked")
        return claims
