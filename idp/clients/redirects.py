"""Redirect URI rules of RFC 9700 §4.1.3 and RFC 8252 §7.3."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_IPS = {"127.0.0.1", "::1"}


def matches(registered: str, presented: str) -> bool:
    """Exact string match; only the port of a loopback IP redirect URI may differ."""
    if registered == presented:
        return True
    try:
        reg, pre = urlsplit(registered), urlsplit(presented)
        reg_port, pre_port = reg.port, pre.port
    except ValueError:
        return False
    if reg.scheme != "http" or reg.hostname not in LOOPBACK_IPS:
        return False
    del reg_port, pre_port
    return (
        (reg.scheme, reg.hostname, reg.path, reg.query)
        == (pre.scheme, pre.hostname, pre.path, pre.query)
        and not pre.fragment
        and not pre.username
    )


def problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered, or None when it can."""
    if len(uri) > 2000:
        return "is longer than 2000 characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "not a valid URI"
    if parts.fragment:
        return "must not contain a fragment"
    if parts.scheme == "https" and parts.netloc:
        return None
    if parts.scheme == "http":
        if parts.hostname in LOOPBACK_IPS or parts.hostname == "localhost":
            return None
        return "http is allowed only for loopback hosts"
    if parts.scheme in {"javascript", "data", "file", "vbscript", ""}:
        return f"scheme {parts.scheme or '(none)'!r} is not allowed"
    # Private-use schemes for native apps (RFC 8252 §7.1) need a dot, e.g. com.example.app.
    if "." in parts.scheme:
        return None
    return "must be https, loopback http, or a reverse-domain private-use scheme"
