"""duty roster, escalation chain and SLA reports (issue 13)

Revision ID: d4f0b0c2f013
Revises: c3e0a0d1f011
Create Date: 2026-11-23 13:20:00+00:00
"""

from collections.abc import Sequence

revision: str = 'd4f0b0c2f013'
down_revision: str | None = 'c3e0a0d1f011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
