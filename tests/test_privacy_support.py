"""Shared by the audit and privacy tests: a database whose commits are real (a fresh SQLite file
or a dedicated PostgreSQL database), so the bytes on disk and ``pg_dump`` can be searched and a
real CLI process can read what the app wrote."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core import database, migrate
from app.core.database import build_engine
from tests.conftest import PG_BASE, create_pg_database, drop_pg_database


@dataclass
class RealDb:
    kind: str  # "sqlite" or "postgresql"
    url: str  # SQLAlchemy URL
    engine: Engine
    path: Path | None = None  # the SQLite file
    pg_name: str | None = None

    def session(self) -> Session:
        return database.session_factory()()

    @property
    def libpq_url(self) -> str:
        assert self.pg_name is not None
        return f"{PG_BASE}/{self.pg_name}"


@contextmanager
def real_database(kind: str, tmp_path: Path) -> Iterator[RealDb]:
    """A migrated database the app (this process) uses with real commits."""
    name: str | None = None
    path: Path | None = None
    if kind == "sqlite":
        path = tmp_path / "real.sqlite3"
        url = f"sqlite:///{path}"
    else:
        name = f"intake_priv_{secrets.token_hex(4)}"
        url = create_pg_database(name)
    try:
        migrate.upgrade(url)
        engine = build_engine(url, for_tests=True)
        database.set_engine(engine)
        try:
            yield RealDb(kind=kind, url=url, engine=engine, path=path, pg_name=name)
        finally:
            database.set_engine(None)
            engine.dispose()
    finally:
        if name is not None:
            drop_pg_database(name)


@contextmanager
def app_client() -> Iterator[Any]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c
