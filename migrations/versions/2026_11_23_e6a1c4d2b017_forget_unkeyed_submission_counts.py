"""forget the submission limit's counts stored under unkeyed address hashes

The submission limit now keys its counts by an HMAC of the client address; the rows written
before were keyed by a plain SHA-256 of it, which for an IPv4 address is reversed by trying all
of them. They are counters for a window of at most a day: deleting them loses nothing.

Revision ID: e6a1c4d2b017
Revises: d4f0b0c2f013
Create Date: 2026-11-23 17:10:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'e6a1c4d2b017'
down_revision: str | None = 'd4f0b0c2f013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM login_throttles WHERE key LIKE 'submit:ip:%'")


def downgrade() -> None:
    pass  # the deleted counts are not needed, and could not be restored
