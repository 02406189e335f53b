"""dynamic client registration: initial access tokens, registration access tokens

RFC 7591 and RFC 7592: ``initial_access_tokens`` holds the SHA-256 of each token
``idp clients initial-token`` printed (with its expiry and whether it registers more
than one client); ``clients.registration_token_hash`` the SHA-256 of the registration
access token of a dynamically registered client (NULL for clients an operator created).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import idp.db


revision: str = '0013'
# The PAR work adds 0011 on main; whoever merges sets this to '0011'.
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'initial_access_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('expires_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('reusable', sa.Boolean(), nullable=False),
        sa.Column('registrations', sa.Integer(), nullable=False),
        sa.Column('last_used_at', idp.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_initial_access_tokens')),
    )
    with op.batch_alter_table('initial_access_tokens', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_initial_access_tokens_expires_at'), ['expires_at'], unique=False
        )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('registration_token_hash', sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('registration_token_hash')
    with op.batch_alter_table('initial_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_initial_access_tokens_expires_at'))
    op.drop_table('initial_access_tokens')
