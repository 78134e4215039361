"""inbound email

Flagged addresses (after a permanent bounce) and the per-sender daily count of acknowledgements;
a request's countries may be unknown (a request that arrived by e-mail, until staff complete it).

Revision ID: b2d0e9a1f009
Revises: a1c0c10e5e01
Create Date: 2026-11-23 13:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = 'b2d0e9a1f009'
down_revision: str | None = 'a1c0c10e5e01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbound_flagged_addresses',
    sa.Column('email_lookup', sa.String(length=64), nullable=False),
    sa.Column('flagged_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('email_lookup', name=op.f('pk_inbound_flagged_addresses'))
    )
    op.create_table('inbound_ack_counts',
    sa.Column('sender_lookup', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('sender_lookup', 'day', name=op.f('pk_inbound_ack_counts'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.alter_column('country_of_origin', existing_type=sa.String(length=2), nullable=True)
        batch_op.alter_column(
            'country_of_residence', existing_type=sa.String(length=2), nullable=True
        )


def downgrade() -> None:
    # Requests whose countries were never completed cannot keep a NOT NULL column: mark them
    # with the user-assigned "ZZ" (unknown) before restoring the constraint.
    op.execute("UPDATE requests SET country_of_origin = 'ZZ' WHERE country_of_origin IS NULL")
    op.execute(
        "UPDATE requests SET country_of_residence = 'ZZ' WHERE country_of_residence IS NULL"
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.alter_column(
            'country_of_residence', existing_type=sa.String(length=2), nullable=False
        )
        batch_op.alter_column('country_of_origin', existing_type=sa.String(length=2), nullable=False)
    op.drop_table('inbound_ack_counts')
    op.drop_table('inbound_flagged_addresses')
