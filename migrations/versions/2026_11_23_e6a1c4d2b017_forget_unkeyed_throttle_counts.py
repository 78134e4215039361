"""forget throttle counts stored under unkeyed hashes

The submission limit and the sign-in throttle now key their counts by an HMAC of the client
address (and of the e-mail, for sign-in); the rows written before were keyed by a plain SHA-256,
which for an IPv4 address is reversed by trying all of them. They are counters for a short
window: deleting them loses nothing but a slowdown or lock in force at the upgrade.

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
    op.execute(
        "DELETE FROM login_throttles"
        " WHERE key LIKE 'submit:ip:%' OR key LIKE 'account:%' OR key LIKE 'ip:%'"
    )


def downgrade() -> None:
    pass  # the deleted counts are not needed, and could not be restored
