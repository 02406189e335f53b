"""Clients held in process (STYLE rule 14): the token endpoint authenticates a client on
every request, and reading its row through the ORM cost more than everything else the
request did (issue 8's profile: 1.1 of 1.74 ms).

Every change to a client bumps the ``clients`` generation in its transaction
(idp.clients.services); each process drops what it holds when it sees the bump
(idp.changes.watch), so a rotated secret or a disabled client is refused by every worker
on its next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from idp.changes.cache import ViewCache
from idp.changes.models import CLIENTS
from idp.changes.watch import Generations
from idp.clients.models import Client, ClientRules
from idp.db import Database


@dataclass(frozen=True, eq=False)
class ClientView(ClientRules):
    """An immutable copy of a client row, safe to share between threads."""

    client_id: str
    secret_hash: str | None
    name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    claims: dict[str, Any]
    first_party: bool
    is_admin_client: bool
    id_token_signed_response_alg: str | None
    backchannel_logout_uri: str | None
    post_logout_redirect_uris: tuple[str, ...]
    dpop_bound_access_tokens: bool
    token_endpoint_auth_method: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    require_pushed_authorization_requests: bool
    require_mfa: bool
    require_verified_email: bool
    disabled: bool

    @classmethod
    def of(cls, row: Client) -> ClientView:
        return cls(
            client_id=row.client_id,
            secret_hash=row.secret_hash,
            name=row.name,
            redirect_uris=tuple(row.redirect_uris or ()),
            grant_types=tuple(row.grant_types or ()),
            scope=row.scope,
            claims=dict(row.claims or {}),
            first_party=row.first_party,
            is_admin_client=row.is_admin_client,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            backchannel_logout_uri=row.backchannel_logout_uri,
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            dpop_bound_access_tokens=row.dpop_bound_access_tokens,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            jwks=dict(row.jwks) if row.jwks else None,
            jwks_uri=row.jwks_uri,
            require_pushed_authorization_requests=row.require_pushed_authorization_requests,
            require_mfa=row.require_mfa,
            require_verified_email=row.require_verified_email,
            disabled=row.disabled,
        )


def load_client(s: Session, client_id: str) -> ClientView | None:
    row = s.get(Client, client_id)
    return None if row is None else ClientView.of(row)


def client_cache(db: Database, generations: Generations) -> ViewCache[ClientView]:
    """Clients by id (disabled ones included: the caller decides)."""
    return ViewCache(db, generations, CLIENTS, load_client)
