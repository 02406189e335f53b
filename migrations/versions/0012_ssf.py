"""Shared Signals: receivers' streams and the events owed to them (SSF 1.0)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import idp.db


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ssf_streams',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('endpoint_url', sa.String(length=2000), nullable=True),
    sa.Column('authorization_header', sa.String(length=2000), nullable=True),
    sa.Column('events_requested', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('last_delivery_at', idp.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_ssf_streams_client_id_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ssf_streams'))
    )
    with op.batch_alter_table('ssf_streams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ssf_streams_client_id'), ['client_id'], unique=False)
    
    op.create_table('ssf_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('stream_id', sa.String(length=32), nullable=False),
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', idp.db.UTCDateTime(), nullable=True),
    sa.Column('delivered_at', idp.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['stream_id'], ['ssf_streams.id'], name=op.f('fk_ssf_events_stream_id_ssf_streams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ssf_events')),
    sa.UniqueConstraint('jti', name=op.f('uq_ssf_events_jti'))
    )
    with op.batch_alter_table('ssf_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ssf_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ssf_events_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ssf_events_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ssf_events_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_ssf_events_stream_id'), ['stream_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ssf_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ssf_events_stream_id'))
        batch_op.drop_index(batch_op.f('ix_ssf_events_status'))
        batch_op.drop_index(batch_op.f('ix_ssf_events_session_id'))
        batch_op.drop_index(batch_op.f('ix_ssf_events_expires_at'))
        batch_op.drop_index(batch_op.f('ix_ssf_events_created_at'))
    
    op.drop_table('ssf_events')
    with op.batch_alter_table('ssf_streams', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ssf_streams_client_id'))
    
    op.drop_table('ssf_streams')
