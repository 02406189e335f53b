"""What the revocation and introspection endpoints know about a presented token."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from idp.refresh.types import TokenState


@dataclass
class AccessTokenRecord:
    """A well-signed idp access token (active or not)."""

    claims: dict[str, Any]
    active: bool

    def check_client(self, client: Any) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def is_expired(self) -> bool:
        return False  # decode() already refused expired tokens

    def is_revoked(self) -> bool:
        return not self.active


@dataclass
class RefreshTokenRecord:
    value: str
    state: TokenState

    def check_client(self, client: Any) -> bool:
        return bool(self.state.family.client_id == client.get_client_id())

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return not self.state.active


def epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())
