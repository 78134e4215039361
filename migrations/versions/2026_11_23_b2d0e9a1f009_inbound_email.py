"""inbound email (issue 9)

Revision ID: b2d0e9a1f009
Revises: a1c0c10e5e01
Create Date: 2026-11-23 13:20:00+00:00
"""

from collections.abc import Sequence

revision: str = 'b2d0e9a1f009'
down_revision: str | None = 'a1c0c10e5e01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
