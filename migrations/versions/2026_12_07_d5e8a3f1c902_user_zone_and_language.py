"""users: time zone and language of each person's pages and e-mails

Every user gets an IANA zone (default UTC) and a desk language (en, ru, es, ar; default en).
An expert's zone is their profile's: it is copied from expert_profiles.timezone here, and the
services keep the two equal from now on.

Revision ID: d5e8a3f1c902
Revises: c4e1a9d27b3f
Create Date: 2026-12-07 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5e8a3f1c902"
down_revision: str | None = "c4e1a9d27b3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LANGUAGES = ("en", "ru", "es", "ar")
CHECK = "ck_users_user_language"

# SQLite: plain ALTER TABLE, never batch mode. Batch mode copies "users" and drops the old table,
# and with foreign keys on (app/core/database.py) that drop cascades to every row referring to a
# user: sessions, expert profiles, recovery codes. A column CHECK can be added with the column.


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column(
        "users", sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
    )
    if sqlite:
        allowed = ", ".join(f"'{code}'" for code in LANGUAGES)
        op.execute(
            "ALTER TABLE users ADD COLUMN language VARCHAR(8) DEFAULT 'en' NOT NULL"
            f" CONSTRAINT {CHECK} CHECK (language IN ({allowed}))"
        )
    else:
        op.add_column(
            "users",
            sa.Column("language", sa.String(length=8), server_default="en", nullable=False),
        )
        op.create_check_constraint(op.f(CHECK), "users", sa.column("language").in_(LANGUAGES))
    op.execute(
        "UPDATE users SET timezone = (SELECT p.timezone FROM expert_profiles p"
        " WHERE p.user_id = users.id)"
        " WHERE EXISTS (SELECT 1 FROM expert_profiles p WHERE p.user_id = users.id)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A column's own CHECK goes with it (SQLite 3.35+ DROP COLUMN).
        op.execute("ALTER TABLE users DROP COLUMN language")
        op.execute("ALTER TABLE users DROP COLUMN timezone")
        return
    op.drop_constraint(op.f(CHECK), "users", type_="check")
    op.drop_column("users", "language")
    op.drop_column("users", "timezone")
