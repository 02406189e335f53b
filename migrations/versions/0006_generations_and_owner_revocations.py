"""generations and owner revocations

Generation counters let every process know when the clients, keys, users or deny list
it holds in memory have changed (idp.changes.watch). The revocation log gains
"client" and "user" entries (every token of one issued before a moment), with the
moment in ``issued_before``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:48:48.210626
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    generations = op.create_table(
        'generations',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_generations')),
    )
    op.bulk_insert(
        generations, [{'name': n, 'value': 0} for n in ('clients', 'keys', 'users', 'deny')]
    )
    with op.batch_alter_table('revocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issued_before', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM revocations WHERE kind IN ('client', 'user')")
    with op.batch_alter_table('revocations', schema=None) as batch_op:
        batch_op.drop_column('issued_before')
    op.drop_table('generations')
