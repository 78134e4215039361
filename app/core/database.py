"""Engine and sessions (synchronous SQLAlchemy 2.0, for both the API and the worker).

Who commits: the edge. An API request gets one session from ``get_session`` (committed when
the endpoint returns, rolled back on error); a Celery task or CLI command uses
``session_scope()``. Services and repositories only ``flush()``.

``after_commit(session, fn)`` queues work that must only happen once the data is durable (e.g.
nudging the worker); it never runs for a rolled-back transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.core.errors import AppError
from app.core.settings import get_settings

log = structlog.get_logger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None

SQLITE_BUSY_TIMEOUT_MS = 30_000


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection in the process (ours and kombu's broker) gets WAL + busy timeout,
    or API, worker and beat writing the same file fail with "database is locked"."""
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def build_engine(url: str, *, for_tests: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=NullPool
        )

        # pysqlite's own transaction handling defers BEGIN and never takes the write lock up
        # front; we issue BEGIN IMMEDIATE ourselves so a check-then-insert cannot race and a
        # writer waits (busy timeout) instead of failing when it upgrades a read lock.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if for_tests:  # NullPool takes no pool sizes
        return create_engine(url, pool_pre_ping=True, poolclass=NullPool)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine() -> Engine:
    global _engine, _factory
    with _lock:
        if _engine is None:
            _engine = build_engine(get_settings().resolved_database_url)
            _factory = sessionmaker(bind=_engine, expire_on_commit=False, autoflush=True)
        return _engine


def set_engine(engine: Engine | None) -> None:
    """Tests point the process at their own database."""
    global _engine, _factory
    with _lock:
        _engine = engine
        _factory = (
            sessionmaker(bind=engine, expire_on_commit=False, autoflush=True) if engine else None
        )


def session_factory() -> sessionmaker[Session]:
    get_engine()
    assert _factory is not None
    return _factory


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    session.info.setdefault("after_commit", []).append(fn)


def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop("after_commit", []):
        try:
            fn()
        except Exception:  # a nudge failing must not fail the request: beat catches up
            log.warning("after_commit_failed", exc_info=True)


def commit(session: Session) -> None:
    session.commit()
    _run_after_commit(session)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction for a task or a command: commit on success, roll back on error."""
    session = session_factory()()
    try:
        yield session
        commit(session)
    except AppError as exc:
        if exc.persist_changes:
            commit(session)
        else:
            session.info.pop("after_commit", None)
            session.rollback()
        raise
    except BaseException:
        session.info.pop("after_commit", None)
        session.rollback()
        raise
    finally:
        session.close()


def get_session() -> Iterator[Session]:
    """FastAPI dependency (used with scope="function" so the commit precedes the response)."""
    with session_scope() as session:
        yield session
