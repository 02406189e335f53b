"""passkeys: webauthn_credentials

One row per WebAuthn credential (passkey) a user registered: its id (base64url,
unique), COSE public key, signature counter, transports, label, AAGUID, backup flags,
and when it was created and last used. Deleting a user deletes them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import idp.db


revision: str = "0016"
# Other issue-13 work adds revisions after 0013 too; whoever merges renumbers.
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'webauthn_credentials',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('credential_id', sa.String(length=1364), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('transports', sa.JSON(), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('aaguid', sa.String(length=36), nullable=False),
        sa.Column('backup_eligible', sa.Boolean(), nullable=False),
        sa.Column('backed_up', sa.Boolean(), nullable=False),
        sa.Column('created_at', idp.db.UTCDateTime(), nullable=False),
        sa.Column('last_used_at', idp.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'],
            ['users.id'],
            name=op.f('fk_webauthn_credentials_user_id_users'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webauthn_credentials')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_webauthn_credentials_credential_id')),
    )
    with op.batch_alter_table('webauthn_credentials', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_webauthn_credentials_user_id'), ['user_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('webauthn_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webauthn_credentials_user_id'))
    op.drop_table('webauthn_credentials')
