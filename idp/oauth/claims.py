"""Which claims a user yields for which scopes (OIDC Core §5.4), and private claims."""

from __future__ import annotations

from typing import Any, Protocol

USER_ATTRIBUTE_PREFIX = "user:"


class ClaimsUser(Protocol):
    """What claims are made of: a stored user, or its in-process view."""

    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_verified(self) -> bool: ...
    @property
    def attributes(self) -> Any: ...


class ClaimsClient(Protocol):
    @property
    def claims(self) -> Any: ...


def user_claims(user: ClaimsUser, scope: str) -> dict[str, Any]:
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        if user.name:
            claims["name"] = user.name
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.email_verified)
    return claims


def private_claims(client: ClaimsClient, user: ClaimsUser | None) -> dict[str, Any]:
    """The client's configured private claims. A value ``user:NAME`` is taken from the
    user's attribute NAME (and left out when there is no user or no such attribute)."""
    claims: dict[str, Any] = {}
    for name, value in (client.claims or {}).items():
        if isinstance(value, str) and value.startswith(USER_ATTRIBUTE_PREFIX):
            attr = value[len(USER_ATTRIBUTE_PREFIX) :]
            if user is not None and attr in (user.attributes or {}):
                claims[name] = user.attributes[attr]
        else:
            claims[name] = value
    return claims
