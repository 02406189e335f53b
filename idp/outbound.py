"""Every request idp makes to a URL someone registered (SPEC §6 "Outbound requests").

Back-channel logout today, and later Shared Signals push, ``jwks_uri`` and
``sector_identifier_uri``: each goes through :class:`Outbound`, which refuses a URL whose
host is (or resolves to) a loopback, private, link-local (cloud metadata), multicast or
otherwise non-global address, at registration and again at send time, unless
``[outbound] allow_loopback`` allows loopback (tests and development only). Redirects are
not followed, and what is stored about a failure is generic ("could not connect", "HTTP
503"), so the dashboard cannot be used to scan ports.

At registration only literal addresses and ``localhost`` are judged (a name that does not
resolve yet may later); at send time every address the name resolves to is.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

REFUSED = "refused: the address is not a public one"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a token is never sent anywhere but the registered URI


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Sent:
    """The outcome of one request: the HTTP status, or a generic error."""

    status: int | None
    error: str | None


def _loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Outbound:
    allow_loopback: bool = False
    timeout: float = 5.0

    def problem(self, url: str, *, resolve: bool) -> str | None:
        """Why ``url`` may not be called (None: it may). With ``resolve``, the host's
        every address is judged; without, only a literal address or ``localhost``."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http"):
            return "must be an https URL"
        host = parts.hostname
        if not host or parts.username is not None or parts.password is not None:
            return "must name a host, without user information"
        loopback_name = host == "localhost" or host.endswith(".localhost")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if (loopback_name and not self.allow_loopback) or (
            literal is not None and not _allowed(literal, self.allow_loopback)
        ):
            return REFUSED
        is_loopback = loopback_name or (literal is not None and _loopback(literal))
        if parts.scheme == "http" and not is_loopback:
            return "must be an https URL (plain http only on loopback)"
        if literal is not None or loopback_name:
            return None
        if not resolve:
            return None
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return "could not resolve the host"
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not _allowed(address, self.allow_loopback):
                return REFUSED
        return None

    def post_form(self, url: str, fields: dict[str, str]) -> Sent:
        """POSTs ``fields`` form-encoded to ``url`` if it may be called; never follows a
        redirect."""
        body = urllib.parse.urlencode(fields).encode()
        return self.post(url, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        """POSTs ``body`` to ``url`` if it may be called; never follows a redirect."""
        why = self.problem(url, resolve=True)
        if why is not None:
            return Sent(None, why)
        req = urllib.request.Request(  # noqa: S310 - scheme checked in problem()
            url, data=body, method="POST", headers=headers
        )
        try:
            with _opener.open(req, timeout=self.timeout) as resp:  # noqa: S310
                return Sent(int(resp.status), None)
        except urllib.error.HTTPError as exc:
            return Sent(exc.code, f"HTTP {exc.code}")
        except TimeoutError:
            return Sent(None, "timed out")
        except (urllib.error.URLError, OSError, ValueError):
            return Sent(None, "could not connect")

    def get(self, url: str, *, max_bytes: int) -> bytes:
        """GETs ``url`` if it may be called (a client's ``jwks_uri``): the body, at most
        ``max_bytes``; never follows a redirect. Raises OSError with a generic reason."""
        why = self.problem(url, resolve=True)
        if why is not None:
            raise OSError(why)
        req = urllib.request.Request(  # noqa: S310 - scheme checked in problem()
            url, headers={"Accept": "application/json"}
        )
        try:
            with _opener.open(req, timeout=self.timeout) as resp:  # noqa: S310
                body = bytes(resp.read(max_bytes + 1))
        except urllib.error.HTTPError as exc:
            raise OSError(f"HTTP {exc.code}") from None
        except TimeoutError:
            raise OSError("timed out") from None
        except (urllib.error.URLError, OSError, ValueError):
            raise OSError("could not connect") from None
        if len(body) > max_bytes:
            raise OSError("the answer is too large")
        return body
