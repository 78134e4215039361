"""Alembic environment: one URL source (the settings), a lock so that several API containers
starting at once migrate only once, and batch mode so ALTERs work on SQLite too."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from app.core.database import build_engine
from app.core.settings import get_settings
from app.models import Base

config = context.config
target_metadata = Base.metadata

# Any constant: the key of the PostgreSQL advisory lock that serialises migrators.
MIGRATION_LOCK_KEY = 7_041_993_117


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # SQLite's DDL is transactional, but Alembic assumes not and would run each migration
        # on its own: a second migrator could then read the version between two of them. One
        # transaction (BEGIN IMMEDIATE, app.core.database) makes it wait and find nothing to do.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Transaction-scoped: released at commit, also if the process dies.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        # On SQLite the transaction began with BEGIN IMMEDIATE (app.core.database): the
        # second migrator waits for the first and then finds nothing left to do.
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url") or get_settings().resolved_database_url
    engine = build_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_migrations_online()
