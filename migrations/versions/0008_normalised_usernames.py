"""normalised usernames

Usernames are unique on one normal form (NFKC + casefold) kept in ``username_key``, so
"Alice" and "alice" are one account and logins and throttling look accounts up by it
(issue 10). Existing rows get their key; where two existing usernames share a normal
form, the older keeps it and the others get ``key#id`` (they can no longer log in under
their name until an operator renames them; the migration says which).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:50:00.000000
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username_key', sa.String(length=150), nullable=True))
    users = sa.table(
        'users',
        sa.column('id', sa.String),
        sa.column('username', sa.String),
        sa.column('username_key', sa.String),
        sa.column('created_at', sa.DateTime),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.username).order_by(users.c.created_at, users.c.id)
    ).all()
    taken: set[str] = set()
    for user_id, username in rows:
        key = unicodedata.normalize("NFKC", username).casefold()[:150]
        if key in taken:
            log.warning("username %r collides with an older one once normalised", username)
            key = f"{key[:117]}#{user_id}"
        taken.add(key)
        bind.execute(users.update().where(users.c.id == user_id).values(username_key=key))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('username_key', existing_type=sa.String(length=150), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_users_username_key'), ['username_key'])


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_username_key'), type_='unique')
        batch_op.drop_column('username_key')
