"""refresh token families

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 00:58:53.917945
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import idp.db


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('security_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('client_id', sa.String(length=100), nullable=True),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('family_id', sa.String(length=32), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_events'))
    )
    with op.batch_alter_table('security_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_events_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_events_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_events_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_security_events_user_id'), ['user_id'], unique=False)

    op.create_table('refresh_families',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('code_id', sa.String(length=32), nullable=True),
    sa.Column('scope', sa.String(length=1000), nullable=False),
    sa.Column('auth_time', idp.db.UTCDateTime(), nullable=False),
    sa.Column('nonce', sa.String(length=512), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('absolute_expires_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', idp.db.UTCDateTime(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_refresh_families_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['browser_sessions.id'], name=op.f('fk_refresh_families_session_id_browser_sessions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_refresh_families_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_families'))
    )
    with op.batch_alter_table('refresh_families', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_families_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_families_code_id'), ['code_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_families_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_families_revoked_at'), ['revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_families_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_families_user_id'), ['user_id'], unique=False)

    op.create_table('family_access_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('family_id', sa.String(length=32), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['refresh_families.id'], name=op.f('fk_family_access_tokens_family_id_refresh_families'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_family_access_tokens'))
    )
    with op.batch_alter_table('family_access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_family_access_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_family_access_tokens_family_id'), ['family_id'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('family_id', sa.String(length=32), nullable=False),
    sa.Column('parent_id', sa.String(length=32), nullable=True),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=1000), nullable=False),
    sa.Column('issued_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('issued_ip', sa.String(length=64), nullable=True),
    sa.Column('issued_user_agent', sa.String(length=512), nullable=True),
    sa.Column('expires_at', idp.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', idp.db.UTCDateTime(), nullable=True),
    sa.Column('used_ip', sa.String(length=64), nullable=True),
    sa.Column('used_user_agent', sa.String(length=512), nullable=True),
    sa.Column('child_sealed', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['family_id'], ['refresh_families.id'], name=op.f('fk_refresh_tokens_family_id_refresh_families'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_tokens_token_hash'))
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_family_id'), ['family_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_family_id'))

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('family_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_family_access_tokens_family_id'))
        batch_op.drop_index(batch_op.f('ix_family_access_tokens_expires_at'))

    op.drop_table('family_access_tokens')
    with op.batch_alter_table('refresh_families', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_families_user_id'))
        batch_op.drop_index(batch_op.f('ix_refresh_families_session_id'))
        batch_op.drop_index(batch_op.f('ix_refresh_families_revoked_at'))
        batch_op.drop_index(batch_op.f('ix_refresh_families_created_at'))
        batch_op.drop_index(batch_op.f('ix_refresh_families_code_id'))
        batch_op.drop_index(batch_op.f('ix_refresh_families_client_id'))

    op.drop_table('refresh_families')
    with op.batch_alter_table('security_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_events_user_id'))
        batch_op.drop_index(batch_op.f('ix_security_events_session_id'))
        batch_op.drop_index(batch_op.f('ix_security_events_kind'))
        batch_op.drop_index(batch_op.f('ix_security_events_family_id'))
        batch_op.drop_index(batch_op.f('ix_security_events_at'))

    op.drop_table('security_events')
