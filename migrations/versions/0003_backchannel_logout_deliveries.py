"""backchannel logout deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 01:10:22.629508
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import idp.db


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('backchannel_deliveries',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('uri', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('last_attempt_at', idp.db.UTCDateTime(), nullable=True),
    sa.Column('next_attempt_at', idp.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_backchannel_deliveries_client_id_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backchannel_deliveries'))
    )
    with op.batch_alter_table('backchannel_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backchannel_deliveries_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_backchannel_deliveries_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_backchannel_deliveries_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_backchannel_deliveries_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('backchannel_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backchannel_deliveries_status'))
        batch_op.drop_index(batch_op.f('ix_backchannel_deliveries_session_id'))
        batch_op.drop_index(batch_op.f('ix_backchannel_deliveries_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_backchannel_deliveries_client_id'))

    op.drop_table('backchannel_deliveries')
