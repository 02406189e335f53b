"""second factors: TOTP factors, recovery codes, pending logins; amr/acr; require_mfa

``mfa_factors`` holds each user's second factors (``kind`` totp now, webauthn later;
a TOTP secret sealed under the KEK), ``recovery_codes`` the SHA-256 of single-use
recovery codes, ``pending_logins`` logins waiting for their second factor (a cookie's
hash). Browser sessions and authorization codes record how the user authenticated
(``amr``, ``acr``; existing rows were password logins); ``clients.require_mfa`` makes a
client's logins need a second factor.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import idp.db


revision: str = '0014'
# Other work adds 0014 on main; whoever merges sets this to the head before it.
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'mfa_factors',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('secret', sa.LargeBinary(), nullable=True),
        sa.Column('credential', sa.JSON(), nullable=True),
        sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('confirmed_at', idp.db.UTCDateTime(), nullable=True),
        sa.Column('last_used_at', idp.db.UTCDateTime(), nullable=True),
        sa.Column('last_used_step', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_mfa_factors_user_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_factors')),
    )
    with op.batch_alter_table('mfa_factors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mfa_factors_user_id'), ['user_id'], unique=False)

    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('used_at', idp.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_recovery_codes_code_hash')),
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)

    op.create_table(
        'pending_logins',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('next_url', sa.String(length=4000), nullable=False),
        sa.Column('amr', sa.JSON(), nullable=False),
        sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('expires_at', idp.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_pending_logins_user_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_logins')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_pending_logins_token_hash')),
    )
    with op.batch_alter_table('pending_logins', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_pending_logins_expires_at'), ['expires_at'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_pending_logins_user_id'), ['user_id'], unique=False)

    for table in ('browser_sessions', 'authorization_codes'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('amr', sa.JSON(), nullable=False, server_default='["pwd"]')
            )
            batch_op.add_column(
                sa.Column('acr', sa.String(length=40), nullable=False, server_default='1')
            )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('require_mfa', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('require_mfa')
    for table in ('authorization_codes', 'browser_sessions'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('acr')
            batch_op.drop_column('amr')
    with op.batch_alter_table('pending_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_logins_user_id'))
        batch_op.drop_index(batch_op.f('ix_pending_logins_expires_at'))
    op.drop_table('pending_logins')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_user_id'))
    op.drop_table('recovery_codes')
    with op.batch_alter_table('mfa_factors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mfa_factors_user_id'))
    op.drop_table('mfa_factors')
