"""A Shared Signals receiver over poll (OpenID SSF 1.0, RFC 8936).

The verifier's client (scope ``ssf``, client_credentials grant) finds or makes its own
poll stream on the transmitter named by ``/.well-known/ssf-configuration``, reads the
stream's status, and polls it: Security Event Tokens (RFC 8417) come back keyed by
``jti``; each verified one is acknowledged on the next poll, each that fails
verification is reported in ``setErrs`` so it is not sent again.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
from collections.abc import Callable
from typing import Any

from idp_verifier import http

log = logging.getLogger(__name__)
POLL = "urn:ietf:rfc:8936"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
ACCOUNT_DISABLED = RISC + "account-disabled"
STREAM_UPDATED = SSF + "stream-updated"  # always delivered (SSF 1.0 §8.1.5)
SIGNALS = [SESSION_REVOKED, ACCOUNT_DISABLED]
MAX_EVENTS = 100


class BadSet(Exception):
    """A SET this receiver refuses; ``err`` is the RFC 8935 §2.4 error code."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err


class Receiver:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        time: Callable[[], float],
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._basic = http.basic_auth(client_id, client_secret)
        self._time = time
        self._token: tuple[str, float] | None = None  # (access token, expires at)
        self.stream_id: str | None = None
        self._poll_url: str | None = None
        self._acks: list[str] = []
        self._errors: dict[str, dict[str, str]] = {}

    def _bearer(self) -> dict[str, str]:
        """An ssf-scoped client_credentials access token, fetched again before it ends."""
        if self._token is None or self._token[1] - 30 < self._time():
            got = http.post_form(
                self.issuer + "/token",
                {"grant_type": "client_credentials", "scope": "ssf"},
                {"Authorization": self._basic},
            )
            self._token = (str(got["access_token"]), self._time() + int(got["expires_in"]))
        return {"Authorization": f"Bearer {self._token[0]}"}

    def connect(self) -> str:
        """Finds this receiver's poll stream (or makes one); returns its status."""
        meta = http.get_json(self.issuer + "/.well-known/ssf-configuration")
        endpoint = str(meta["configuration_endpoint"])
        mine = http.get_json(endpoint, self._bearer())
        polled = [x for x in mine if x["delivery"]["method"] == POLL]
        stream = (
            polled[0]
            if polled
            else http.post_json(
                endpoint,
                {"delivery": {"method": POLL}, "events_requested": SIGNALS},
                self._bearer(),
            )
        )
        self.stream_id = str(stream["stream_id"])
        self._poll_url = str(stream["delivery"]["endpoint_url"])
        query = urllib.parse.urlencode({"stream_id": self.stream_id})
        status = http.get_json(f"{meta['status_endpoint']}?{query}", self._bearer())
        return str(status["status"])

    def poll(self, wait: float, verify: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
        """One RFC 8936 poll: acknowledges (and reports) what the last one brought and
        returns the claims of each SET that ``verify`` accepts (it raises BadSet)."""
        if self._poll_url is None:
            raise RuntimeError("connect() first")
        body: dict[str, Any] = {
            "ack": self._acks,
            "returnImmediately": wait <= 0,
            "maxEvents": MAX_EVENTS,
        }
        if self._errors:
            body["setErrs"] = self._errors
        try:
            got = http.post_json(self._poll_url, body, self._bearer(), timeout=wait + 40)
        except urllib.error.HTTPError as err:
            if err.code == 401:
                self._token = None  # fetched again next time
            if err.code == 404:
                self._poll_url = None  # the stream is gone: find or make one again
            raise
        # Acknowledged only once all are checked: if ``verify`` cannot tell (the keys
        # out of reach), none is, and the transmitter sends them all again.
        acks: list[str] = []
        errors: dict[str, dict[str, str]] = {}
        verified = []
        for jti, token in got["sets"].items():
            try:
                verified.append(verify(token))
            except BadSet as exc:
                log.warning("refused a security event token: %s", exc)
                errors[jti] = {"err": exc.err, "description": str(exc)}
                continue
            acks.append(jti)
        self._acks, self._errors = acks, errors
        return verified

    @property
    def connected(self) -> bool:
        return self._poll_url is not None
