"""clients: authentication method, public keys, PAR requirement

``token_endpoint_auth_method`` is stored (it was derived from whether a secret exists):
``none`` for public clients, ``client_secret_basic`` for the others, and
``private_key_jwt`` for clients that sign assertions with the keys in ``jwks`` or behind
``jwks_uri`` (RFC 7523, OIDC Core §9). ``require_pushed_authorization_requests``
(RFC 9126 §6) makes a client's authorization requests go through PAR.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'token_endpoint_auth_method',
                sa.String(length=30),
                nullable=False,
                server_default='client_secret_basic',
            )
        )
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sa.String(length=2000), nullable=True))
        batch_op.add_column(
            sa.Column(
                'require_pushed_authorization_requests',
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    clients = sa.table(
        'clients',
        sa.column('secret_hash', sa.String),
        sa.column('token_endpoint_auth_method', sa.String),
    )
    op.execute(
        clients.update()
        .where(clients.c.secret_hash.is_(None))
        .values(token_endpoint_auth_method='none')
    )


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('require_pushed_authorization_requests')
        batch_op.drop_column('jwks_uri')
        batch_op.drop_column('jwks')
        batch_op.drop_column('token_endpoint_auth_method')
