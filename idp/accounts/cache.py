"""Users held in process, for the claims of userinfo and of rotated tokens: dropped when
any user changes (the ``users`` generation, bumped by every flush that changes a user)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.changes.cache import ViewCache
from idp.changes.models import USERS
from idp.changes.watch import Generations
from idp.db import Database


@dataclass(frozen=True)
class UserView:
    """What tokens and userinfo say about a user (no password hash)."""

    id: str
    username: str
    email: str | None
    email_verified: bool
    name: str | None
    attributes: dict[str, Any]
    disabled: bool

    def get_user_id(self) -> str:
        return self.id

    @classmethod
    def of(cls, row: User) -> UserView:
        return cls(
            id=row.id,
            username=row.username,
            email=row.email,
            email_verified=row.email_verified,
            name=row.name,
            attributes=dict(row.attributes or {}),
            disabled=row.disabled,
        )


def load_user(s: Session, user_id: str) -> UserView | None:
    row = s.get(User, user_id)
    return None if row is None else UserView.of(row)


def user_cache(db: Database, generations: Generations) -> ViewCache[UserView]:
    """Users by id (disabled ones included: the caller decides)."""
    return ViewCache(db, generations, USERS, load_user)
