"""pushed authorization requests (RFC 9126)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

import idp.db
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'pushed_requests',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('handle_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('expires_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('started_at', idp.db.UTCDateTime(), nullable=True),
        sa.Column('used_at', idp.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['client_id'],
            ['clients.client_id'],
            name=op.f('fk_pushed_requests_client_id_clients'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pushed_requests')),
        sa.UniqueConstraint('handle_hash', name=op.f('uq_pushed_requests_handle_hash')),
    )
    with op.batch_alter_table('pushed_requests', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_pushed_requests_expires_at'), ['expires_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('pushed_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pushed_requests_expires_at'))
    op.drop_table('pushed_requests')
