"""login_throttles.last_allowed: the sign-in throttle counts and decides in one upsert

Every sign-in attempt is counted before anything is checked, by one INSERT ... ON CONFLICT DO
UPDATE per key that also decides whether this attempt may be checked; the decision is stored
with the count so RETURNING can read it back (an upsert returns only the new row).

Revision ID: b7c2d9e4a610
Revises: 0a3b4850257e
Create Date: 2026-12-06 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b7c2d9e4a610'
down_revision: str | None = '0a3b4850257e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('last_allowed', sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.drop_column('last_allowed')
