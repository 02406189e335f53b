"""Browser and OS of a session, for the people looking at it (users and operators)."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse as parse_ua


@lru_cache(maxsize=4096)
def describe_agent(user_agent: str) -> tuple[str, str]:
    """(browser, OS) of a user agent string, e.g. ("Chrome 120", "Linux")."""
    if not user_agent:
        return "unknown", "unknown"
    parsed = parse_ua(user_agent[:512])
    ua, os_ = parsed.user_agent, parsed.os
    browser = f"{ua.family} {ua.major}" if ua and ua.major else (ua.family if ua else "Other")
    system = f"{os_.family} {os_.major}" if os_ and os_.major else (os_.family if os_ else "Other")
    return browser, system
