"""refresh families remember amr and acr

``refresh_families.amr`` (JSON list, RFC 8176) and ``refresh_families.acr``: how the
user authenticated at the login that opened the family, so that ID tokens issued on
refresh carry the same ``amr``/``acr`` as the first one (OIDC Core §12.2). Nullable:
families opened before this revision do not know, and their refreshed ID tokens carry
neither claim.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0017"
# Other issue-13 work adds revisions after 0013 too; whoever merges renumbers.
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_families', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amr', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('acr', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('refresh_families', schema=None) as batch_op:
        batch_op.drop_column('acr')
        batch_op.drop_column('amr')
