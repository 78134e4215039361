"""Test fixtures.

- One PostgreSQL database per test run, migrated to head; each test runs inside a transaction
  that is rolled back (the app's own commits become savepoint releases).
- Tests marked ``sqlite`` get a fresh SQLite file at the newest schema instead (the embedded
  default): a copy of one migrated once per test process, as are the databases of their own
  that some tests make (``create_migrated_sqlite``, ``create_migrated_pg_database``).
- ``clock`` moves the one time source (app.core.time) for this process and any child process
  started with ``child_env()``; ``clock.at(instant)`` pins it to an instant.
- ``INTAKE_TEST_NOW`` (an ISO 8601 instant with its offset, e.g. ``2027-03-28T00:10:00Z``) makes
  every test start at that instant, child processes included: the suite believes it is that
  time. Unset, tests start at the real time.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

# Compiled modules are kept (__pycache__, ignored by git) even where the machine's environment
# says PYTHONDONTWRITEBYTECODE: the suite starts a hundred-odd service processes, each of which
# would otherwise compile every app module from source again (about a third of a second each).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN_DSN.rsplit("/", 1)[0]
RUN_ID = secrets.token_hex(4)
PG_DB = f"intake_test_{RUN_ID}"


def pg_url(name: str) -> str:
    """The app's URL (psycopg driver) of the PostgreSQL database ``name``."""
    return f"{PG_BASE.replace('postgresql://', 'postgresql+psycopg://')}/{name}"


PG_URL = pg_url(PG_DB)
SUITE_NOW_VAR = "INTAKE_TEST_NOW"


def _suite_now() -> dt.datetime | None:
    raw = os.environ.get(SUITE_NOW_VAR, "").strip()
    if not raw:
        return None
    try:
        instant = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise pytest.UsageError(
            f"{SUITE_NOW_VAR}={raw!r} is not an ISO 8601 instant (e.g. 2027-03-28T00:10:00Z)"
        ) from None
    if instant.tzinfo is None:
        raise pytest.UsageError(
            f"{SUITE_NOW_VAR}={raw!r} needs its UTC offset (e.g. 2027-03-28T00:10:00Z)"
        )
    return instant.astimezone(dt.UTC)


#: The instant every test starts at (``INTAKE_TEST_NOW``), or None for the real time.
SUITE_NOW = _suite_now()
# Made only once the instant is read: a run stopped by a bad one leaves no folder behind.
TMP = Path(tempfile.mkdtemp(prefix=f"intake-tests-{RUN_ID}-"))
CLOCK_FILE = TMP / "clock"


def real_now() -> dt.datetime:
    """The machine's time, never shifted: only for turning an instant into a clock offset."""
    return dt.datetime.now(dt.UTC)


def suite_offset() -> float:
    """The clock offset (seconds) that makes ``now()`` the suite's instant at this moment."""
    return 0.0 if SUITE_NOW is None else (SUITE_NOW - real_now()).total_seconds()


def write_clock_offset(seconds: float, path: Path = CLOCK_FILE) -> None:
    """Every process of the run (this one, API, worker, beat) reads this file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(seconds))
    os.replace(tmp, path)
    from app.core import time as t

    t._cache.clear()


# argon2 at production cost would take most of the suite's time; tests/core/test_settings.py proves
# the default stays strong and that only the test environment may go this low.
CHEAP_PASSWORD_HASHING = {
    "INTAKE_PASSWORD_HASH_MEMORY_KIB": "8",
    "INTAKE_PASSWORD_HASH_TIME_COST": "1",
    "INTAKE_PASSWORD_HASH_PARALLELISM": "1",
}

# Before any app module reads settings.
os.environ.update(
    {
        "INTAKE_ENV": "test",
        "INTAKE_DATA_DIR": str(TMP / "var"),
        "INTAKE_DATABASE_URL": PG_URL,
        # Nudges from tests go nowhere; tests that need a real broker start one.
        "INTAKE_BROKER_URL": "memory://",
        "INTAKE_TEST_CLOCK_FILE": str(CLOCK_FILE),
        "INTAKE_LOG_LEVEL": "WARNING",
        **CHEAP_PASSWORD_HASHING,
    }
)

from app.core import database  # noqa: E402
from app.core.settings import get_settings  # noqa: E402
from app.core.startup import quick_imports  # noqa: E402

get_settings.cache_clear()
if os.environ.get("PYTEST_XDIST_WORKER"):
    # A pytest-xdist worker ignores Ctrl-C (SIGINT) and every process a test starts would
    # inherit that, so a Python child could not be stopped the way stop() stops it (as Ctrl-C
    # does): children start with the default again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Session fixtures (and child processes they start) already run at the suite's instant.
write_clock_offset(suite_offset())


# Collection imports every test module and with them the whole app: a few hundred thousand
# objects that live as long as the run. As for the service's own processes
# (app/core/startup.py), the cyclic collector is off while they are built, and what they built
# is frozen before the tests run: half the CPU of a collection, done by every xdist worker.
_collecting = [quick_imports()]
_collecting[0].__enter__()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Collection is over (pytest-xdist's controller collects nothing and gets here too)."""
    if _collecting:
        _collecting.pop().__exit__(None, None, None)
        FROZEN_BY_COLLECTION.append(gc.get_freeze_count())


#: How many objects collection left frozen (a test may unfreeze the heap later).
FROZEN_BY_COLLECTION: list[int] = []


#: Markers of the tests that take seconds each: real processes, or a lot of CPU in the test's own.
HEAVY_MARKERS = ("slow", "heavy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with heavy tests first, then the others with the most tests first (what
    pytest-xdist's file distribution would do by itself, told not to reorder in pyproject.toml).
    A worker that frees up takes the next file in this order, so the long files are spread over
    the workers while there is still plenty of short work to fill in after them, instead of
    one worker ending the run alone on a long file. Each file's tests keep their own order."""
    heavy: dict[str, bool] = {}
    count: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        count[path] = count.get(path, 0) + 1
        is_heavy = any(item.get_closest_marker(name) for name in HEAVY_MARKERS)
        heavy[path] = heavy.get(path, False) or is_heavy
    items.sort(key=lambda item: _file_rank(item.nodeid.split("::", 1)[0], heavy, count))


def _file_rank(path: str, heavy: dict[str, bool], count: dict[str, int]) -> tuple[int, int, str]:
    return (0 if heavy[path] else 1, -count[path], path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run's temporary folder (clock file, embedded mail and files) goes with the run, and
    so does the template database of this process, if it made one."""
    shutil.rmtree(TMP, ignore_errors=True)
    if _pg_template_made:
        drop_pg_database(PG_TEMPLATE)


def create_pg_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Databases migrated to head for tests that need one of their own (real commits, several
# connections): a copy of one migrated once per test process. Running the migrations takes about
# half a second each time, a copy milliseconds; the migrations themselves are tested on fresh
# databases (tests/core/test_migrations.py and the data migrations' own tests).
PG_TEMPLATE = f"intake_tpl_{RUN_ID}"
SQLITE_TEMPLATE = TMP / "template.sqlite3"
_pg_template_made = False


def create_migrated_pg_database(name: str) -> str:
    """A new PostgreSQL database ``name`` at the newest schema; returns its URL."""
    from app.core import migrate

    global _pg_template_made
    if not _pg_template_made:
        migrate.upgrade(create_pg_database(PG_TEMPLATE))  # its engine is disposed after
        _pg_template_made = True
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"')
    return pg_url(name)


def create_migrated_sqlite(path: Path) -> str:
    """A new SQLite file at ``path`` at the newest schema; returns its URL."""
    import sqlite3

    from app.core import migrate

    if not SQLITE_TEMPLATE.exists():
        building = SQLITE_TEMPLATE.with_suffix(".building")
        migrate.upgrade(f"sqlite:///{building}")
        building.rename(SQLITE_TEMPLATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite's backup copies a consistent database, whatever its journal mode left beside it.
    with (
        closing(sqlite3.connect(SQLITE_TEMPLATE)) as source,
        closing(sqlite3.connect(path)) as target,
    ):
        source.backup(target)
    return f"sqlite:///{path}"


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (service, worker) that shares this run's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(
        {
            "INTAKE_ENV": "test",
            "INTAKE_TEST_CLOCK_FILE": str(CLOCK_FILE),
            "INTAKE_LOG_LEVEL": "INFO",
            **CHEAP_PASSWORD_HASHING,
        }
    )
    env.update(extra)
    if env["INTAKE_ENV"] != "test":  # only tests may hash cheaply
        for name in CHEAP_PASSWORD_HASHING:
            env.pop(name, None)
    return env


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    from app.core import migrate

    create_pg_database(PG_DB)
    migrate.upgrade(PG_URL)
    engine = database.build_engine(PG_URL)
    yield engine
    engine.dispose()
    drop_pg_database(PG_DB)


def _bind(connection: Connection) -> None:
    factory = sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    database._engine = connection.engine
    database._factory = factory


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = create_migrated_sqlite(tmp_path / "intake.sqlite3")
    engine = database.build_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test; the app uses it too."""
    marker = request.node.get_closest_marker("sqlite")
    engine: Engine = request.getfixturevalue("sqlite_engine" if marker else "pg_engine")
    connection = engine.connect()
    outer = connection.begin()
    _bind(connection)
    session = Session(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()
        database.set_engine(None)
        from app.intake import keys

        keys.forget_cached_keys()  # a key cached in this rolled-back test is gone


@pytest.fixture
def client(db: Session) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def web(db: Session) -> Iterator[object]:
    """The pages as a browser reaches them: over https, so the Secure cookies (session, CSRF)
    are sent back."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


class Clock:
    """Moves ``app.core.time.now()`` for this process and child processes.

    ``set``/``advance`` are relative to the instant the test started at (``base``: the suite's
    instant when ``INTAKE_TEST_NOW`` is set, else the real time); ``at`` pins an instant.
    Either way the clock keeps running from there.
    """

    def __init__(self, path: Path, base: float = 0.0) -> None:
        self.path = path
        self.base = base
        self.offset = 0.0
        self.set(0)

    def set(self, seconds: float) -> None:
        self.offset = seconds
        write_clock_offset(self.base + seconds, self.path)

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> None:
        self.set(self.offset + seconds + minutes * 60 + hours * 3600)

    def at(self, instant: dt.datetime) -> dt.datetime:
        """Pin ``now()`` to ``instant`` (aware); returns it, so a test can name its "now"."""
        if instant.tzinfo is None:
            raise ValueError("clock.at needs an aware datetime")
        self.set((instant - real_now()).total_seconds() - self.base)
        return instant


@pytest.fixture(autouse=True)
def suite_clock() -> float:
    """Every test starts at the suite's instant (``INTAKE_TEST_NOW``), or at the real time."""
    base = suite_offset()
    write_clock_offset(base)
    return base


@pytest.fixture
def clock(suite_clock: float) -> Iterator[Clock]:
    c = Clock(CLOCK_FILE, base=suite_clock)
    yield c
    c.set(0)


@pytest.fixture
def mail_dir() -> Iterator[Path]:
    """The embedded default's mail folder, emptied before the test."""
    folder = get_settings().mail_dir
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.eml"):
        f.unlink()
    yield folder
