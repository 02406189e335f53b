"""Redirect URI rules of RFC 9700 §4.1.3 and RFC 8252 §7.3."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_IPS = {"127.0.0.1", "::1"}
UNSAFE = set('"<>\\^`{|}')


def matches(registered: str, presented: str, *, port_may_vary: bool = False) -> bool:
    """Exact string match; with ``port_may_vary`` (native apps), the port of a loopback
    IP redirect URI may differ."""
    if registered == presented:
        return True
    if not port_may_vary:
        return False
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
        and "@" not in pre.netloc  # no user information, not even a password alone
    )


def problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered, or None when it can."""
    if len(uri) > 2000:
        return "is longer than 2000 characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return "must not contain spaces or control characters"
    if any(c in UNSAFE for c in uri):
        # RFC 3986 never allows these unencoded; in a page they open markup (issue 10).
        return 'must not contain any of " < > \\ ^ ` { | }'
    if "@" in uri.split("?", 1)[0].split("#", 1)[0].split("//", 1)[-1].split("/", 1)[0]:
        return "must not contain user information"
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
