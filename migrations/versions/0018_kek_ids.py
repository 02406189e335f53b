"""the KEK that sealed each private key and TOTP secret

``signing_keys.kek_id`` and ``mfa_factors.kek_id``: a short hash naming the
key-encryption key that sealed the row's encrypted value (idp.keys.crypto.kek_id), so
that processes given the new KEK and the previous ones open each value with the right
one during a KEK rotation, and ``idp keys rewrap`` knows what is left to re-encrypt.
Nullable: rows sealed before this revision are opened by trying each KEK, and get their
id at the next ``idp keys rewrap``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kek_id', sa.String(length=16), nullable=True))
    with op.batch_alter_table('mfa_factors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kek_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mfa_factors', schema=None) as batch_op:
        batch_op.drop_column('kek_id')
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_column('kek_id')
