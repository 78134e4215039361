"""Heartbeats: each worker and beat process writes its row every ``INTAKE_HEARTBEAT_SECONDS``
from a small thread; the API reads them (``liveness``) for /readyz, /metrics and the watchdog.

Liveness is measured in real seconds (``wall_now``), not on the service's clock
(``app.core.time.now``), which tests move by hours to reach deadlines: a jump of the business
clock must not make a live worker look silent, nor a silent one look alive. In production the
two are the same.

A heartbeat proves the process is up and reaches the database. That its work flows is the
outbox's lag (``intake_outbox_oldest_due_age_seconds``), watched beside it.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.database import session_scope
from app.core.settings import get_settings
from app.models import ProcessHeartbeat

log = structlog.get_logger(__name__)

KINDS = ("worker", "beat")
#: Rows of processes gone this long are deleted (every restart adds a row under a new name).
FORGET_AFTER = dt.timedelta(days=2)


def wall_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def record(
    session: Session,
    *,
    name: str,
    kind: str,
    started_at: dt.datetime,
    at: dt.datetime | None = None,
) -> None:
    """Upsert this process's row (one statement), and forget long-gone processes."""
    at = at or wall_now()
    values = {"name": name, "kind": kind, "started_at": started_at, "seen_at": at}
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = make(ProcessHeartbeat).values(values)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"], set_={"seen_at": at, "started_at": started_at}
            )
        )
    else:  # pragma: no cover - only the two databases are supported
        done = session.execute(
            update(ProcessHeartbeat).where(ProcessHeartbeat.name == name).values(seen_at=at)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            session.add(ProcessHeartbeat(**values))
    session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.seen_at < at - FORGET_AFTER))
    session.flush()


@dataclass(frozen=True)
class Liveness:
    kind: str
    live: int  # processes seen within the stale limit
    newest_seen_at: dt.datetime | None  # None: never seen
    age_seconds: float | None

    @property
    def ok(self) -> bool:
        return self.live > 0


def liveness(session: Session, *, at: dt.datetime | None = None) -> dict[str, Liveness]:
    at = at or wall_now()
    stale = dt.timedelta(seconds=get_settings().heartbeat_stale_seconds)
    rows = session.execute(
        select(
            ProcessHeartbeat.kind,
            func.max(ProcessHeartbeat.seen_at),
            func.count().filter(ProcessHeartbeat.seen_at >= at - stale),
        ).group_by(ProcessHeartbeat.kind)
    ).all()
    found = {kind: (newest, int(live or 0)) for kind, newest, live in rows}
    out: dict[str, Liveness] = {}
    for kind in KINDS:
        newest, live = found.get(kind, (None, 0))
        if newest is not None and newest.tzinfo is None:  # SQLite's aggregate skips the type
            newest = dt.datetime.fromisoformat(str(newest)).replace(tzinfo=dt.UTC)
        elif isinstance(newest, str):
            newest = dt.datetime.fromisoformat(newest).replace(tzinfo=dt.UTC)
        age = round((at - newest).total_seconds(), 1) if newest is not None else None
        out[kind] = Liveness(kind, live, newest, age)
    return out


class HeartbeatThread(threading.Thread):
    """Writes the heartbeat now and then every ``interval`` seconds until ``stop()``."""

    def __init__(self, *, name: str, kind: str, interval: float | None = None) -> None:
        super().__init__(name=f"heartbeat-{kind}", daemon=True)
        self.process_name = name
        self.kind = kind
        self.interval = interval or get_settings().heartbeat_seconds
        self.started_at = wall_now()
        self._stopping = threading.Event()

    def beat_once(self) -> None:
        try:
            with session_scope() as session:
                record(session, name=self.process_name, kind=self.kind, started_at=self.started_at)
        except Exception:  # the database may be down for a moment: try again next time
            log.warning("heartbeat_failed", kind=self.kind, exc_info=True)

    def run(self) -> None:
        while not self._stopping.is_set():
            self.beat_once()
            self._stopping.wait(self.interval)

    def stop(self) -> None:
        self._stopping.set()
