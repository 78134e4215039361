"""The migration that gives every user a time zone and a desk language: an expert's zone is
copied from their profile, everyone else gets UTC and English; it goes down cleanly; on
PostgreSQL and SQLite."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect

from app.core import migrate
from app.core.database import build_engine
from app.models import ExpertProfile, User
from tests.conftest import create_pg_database, drop_pg_database

MIGRATION = "d5e8a3f1c902"
BEFORE = "c4e1a9d27b3f"

USER_COLUMNS = ["id", "email", "display_name", "role", "is_active", "totp_enabled"]
PROFILE_COLUMNS = [
    "user_id", "public_name", "email", "timezone", "languages", "topics",
    "max_open_assignments", "open_assignments", "is_active",
]  # fmt: skip


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"intake_zone_{secrets.token_hex(4)}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def _table(name: str, model_table: sa.Table, columns: list[str]) -> sa.Table:
    """Only the columns that exist before the migration, with the service's own types."""
    return sa.Table(name, sa.MetaData(), *[sa.Column(c, model_table.c[c].type) for c in columns])


def _user(role: str) -> dict[str, object]:
    uid = uuid.uuid4()
    return {
        "id": uid,
        "email": f"{uid.hex[:10]}@example.org",
        "display_name": role,
        "role": role,
        "is_active": True,
        "totp_enabled": False,
    }


def _up_and_down(url: str) -> None:
    migrate.upgrade(url, BEFORE)
    users = _table("users", User.__table__, USER_COLUMNS)  # type: ignore[arg-type]
    profiles = _table("expert_profiles", ExpertProfile.__table__, PROFILE_COLUMNS)  # type: ignore[arg-type]
    staff, expert, other_expert = _user("staff"), _user("expert"), _user("expert")
    engine = build_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(users.insert(), [staff, expert, other_expert])
            conn.execute(
                profiles.insert(),
                [
                    {"user_id": u["id"], "public_name": "E", "email": "e@example.org",
                     "timezone": zone, "languages": ["en"], "topics": [],
                     "max_open_assignments": 3, "open_assignments": 0, "is_active": True}
                    for u, zone in ((expert, "Asia/Bishkek"), (other_expert, "America/Lima"))
                ],
            )  # fmt: skip
        migrate.upgrade(url, MIGRATION)
        with engine.connect() as conn:
            # Nothing that refers to a user is lost on the way (SQLite: no table copy).
            assert conn.execute(sa.text("SELECT count(*) FROM expert_profiles")).scalar() == 2
            got = {
                row.id: (row.timezone, row.language)
                for row in conn.execute(sa.text("SELECT id, timezone, language FROM users"))
            }
        assert {uuid.UUID(str(k)): v for k, v in got.items()} == {
            staff["id"]: ("UTC", "en"),
            expert["id"]: ("Asia/Bishkek", "en"),
            other_expert["id"]: ("America/Lima", "en"),
        }
        # Only the four desk languages are stored.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET language = 'fr'"))
        migrate.downgrade(url, BEFORE)
        columns = {c["name"] for c in inspect(engine).get_columns("users")}
        assert {"timezone", "language"} & columns == set()
        assert {"email", "role"} <= columns
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM expert_profiles")).scalar() == 2
    finally:
        engine.dispose()


def test_the_migration_copies_experts_zones_on_postgresql(pg_url: str) -> None:
    _up_and_down(pg_url)


@pytest.mark.sqlite
def test_the_migration_copies_experts_zones_on_sqlite(tmp_path: Path) -> None:
    _up_and_down(f"sqlite:///{tmp_path / 'zone.sqlite3'}")
