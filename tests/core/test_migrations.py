"""Migrations: an empty database goes to head, the models and the migrations agree (autogenerate
finds nothing), and everything goes back down to base; on PostgreSQL and on SQLite. Several
migrators started at once (several containers) migrate once and all succeed."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from app.core import migrate
from app.core.database import build_engine
from app.models import Base
from tests.conftest import create_pg_database, drop_pg_database
from tests.processes import CLI, service_env


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"intake_mig_{secrets.token_hex(4)}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"


def _head() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    return head


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "render_as_batch": conn.dialect.name == "sqlite",
                "target_metadata": Base.metadata,
            },
        )
        return list(compare_metadata(ctx, Base.metadata))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _up_compare_down(url: str) -> None:
    engine = build_engine(url)
    try:
        assert _tables(engine) == set()
        migrate.upgrade(url)
        assert _version(engine) == _head()
        assert set(Base.metadata.tables) <= _tables(engine)
        diff = _differences(engine)
        assert diff == [], f"models and migrations disagree; autogenerate would emit: {diff}"
        migrate.downgrade(url, "base")
        assert _tables(engine) <= {"alembic_version"}
        assert _version(engine) is None
        # ... and up again, so every downgrade left the database clean enough to re-run.
        migrate.upgrade(url)
        assert _version(engine) == _head()
    finally:
        engine.dispose()


def test_postgresql_upgrade_matches_models_and_downgrades_to_base(pg_url: str) -> None:
    _up_compare_down(pg_url)


@pytest.mark.sqlite
def test_sqlite_upgrade_matches_models_and_downgrades_to_base(sqlite_url: str) -> None:
    _up_compare_down(sqlite_url)


def _migrate_at_once(url: str, cwd: Path, count: int) -> None:
    env = service_env({"INTAKE_DATABASE_URL": url, "INTAKE_BROKER_URL": "memory://"})
    procs = [
        subprocess.Popen(
            [str(CLI), "migrate"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=90)
            outputs.append((proc.returncode, out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for code, out in outputs:
        assert code == 0, out
        assert "latest schema" in out
    engine = build_engine(url)
    try:
        assert _version(engine) == _head()
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
        assert rows == 1
        assert _differences(engine) == []
    finally:
        engine.dispose()


@pytest.mark.slow
def test_migrators_started_at_once_on_postgresql_all_succeed(pg_url: str, tmp_path: Path) -> None:
    _migrate_at_once(pg_url, tmp_path, count=3)


@pytest.mark.slow
@pytest.mark.sqlite
def test_migrators_started_at_once_on_sqlite_all_succeed(sqlite_url: str, tmp_path: Path) -> None:
    _migrate_at_once(sqlite_url, tmp_path, count=3)


def test_the_suites_migrated_copies_are_at_head_and_match_the_models(tmp_path: Path) -> None:
    """The copies of a database migrated once (tests/conftest.py) that tests needing a database
    of their own start from: each at the newest revision, with the models' schema."""
    from tests.conftest import create_migrated_pg_database, create_migrated_sqlite

    name = f"intake_mig_{secrets.token_hex(4)}"
    urls = [create_migrated_sqlite(tmp_path / "copy.sqlite3"), create_migrated_pg_database(name)]
    try:
        for url in urls:
            engine = build_engine(url)
            try:
                with engine.connect() as conn:
                    assert MigrationContext.configure(conn).get_current_revision() == _head()
                assert _differences(engine) == []
            finally:
                engine.dispose()
    finally:
        drop_pg_database(name)
