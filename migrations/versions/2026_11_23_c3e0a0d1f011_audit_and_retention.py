"""audit trail and retention (issue 11)

Revision ID: c3e0a0d1f011
Revises: b2d0e9a1f009
Create Date: 2026-11-23 13:20:00+00:00
"""

from collections.abc import Sequence

revision: str = 'c3e0a0d1f011'
down_revision: str | None = 'b2d0e9a1f009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
