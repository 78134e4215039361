"""The per-host daily count of Zoom meeting creates/updates in the database (``zoom_daily_usage``)
and the admins' alert when a host nears Zoom's cap.

``DbUsageStore`` implements ``quota.UsageStore`` on the caller's session: one
``INSERT ... ON CONFLICT (host, day) DO UPDATE SET count = zoom_daily_usage.count + 1 RETURNING
count`` (PostgreSQL, and SQLite 3.35+), so concurrent workers never lose a count. The outbox
handlers count in their own transaction (on SQLite a second connection would wait for the
handler's write lock).
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.meetings.quota import (
    NEARING_CAP_AT,
    ZOOM_DAILY_MEETING_WRITES,
    DailyMeetingQuota,
    UsageStatus,
)
from app.models import ZoomDailyUsage
from app.outbox import service as outbox

log = structlog.get_logger(__name__)

#: One e-mail to every admin, at most once per host and UTC day.
CAP_ALERT_KIND = "meetings.cap_alert"


class DbUsageStore:
    """``UsageStore`` over ``zoom_daily_usage`` in ``session``'s transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def increment(self, host: str, day: dt.date) -> int:
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(ZoomDailyUsage)
            .values(host=host, day=day, count=1)
            .on_conflict_do_update(
                index_elements=[ZoomDailyUsage.host, ZoomDailyUsage.day],
                set_={"count": ZoomDailyUsage.count + 1},
            )
            .returning(ZoomDailyUsage.count)
        )
        value = self.session.execute(stmt).scalar_one()
        return int(value)

    def get(self, host: str, day: dt.date) -> int:
        value = self.session.scalar(
            select(ZoomDailyUsage.count).where(
                ZoomDailyUsage.host == host, ZoomDailyUsage.day == day
            )
        )
        return int(value or 0)


def count_meeting_write(session: Session, host: str) -> UsageStatus:
    """Count one successful create/update for ``host`` today; near the cap, alert the admins
    once per host and day (an outbox row with a dedup key)."""
    status = DailyMeetingQuota(DbUsageStore(session)).record(host)
    if status.nearing_cap:
        row = outbox.enqueue(
            session,
            CAP_ALERT_KIND,
            {
                "host": status.host,
                "day": status.day.isoformat(),
                "count": status.count,
                "limit": status.limit,
            },
            dedup_key=f"zoom-cap:{status.host}:{status.day.isoformat()}"[:200],
        )
        if row is not None:
            log.warning("zoom_daily_cap_alert", count=status.count, limit=status.limit)
    return status


def daily_counts(session: Session, day: dt.date) -> list[UsageStatus]:
    """Each Zoom host's count of creates/updates on ``day`` (UTC) against the daily cap,
    busiest first (the admins' Operations page)."""
    rows = session.execute(
        select(ZoomDailyUsage.host, ZoomDailyUsage.count)
        .where(ZoomDailyUsage.day == day)
        .order_by(ZoomDailyUsage.count.desc(), ZoomDailyUsage.host)
    ).all()
    return [
        UsageStatus(
            host=host, day=day, count=count, limit=ZOOM_DAILY_MEETING_WRITES, warn_at=NEARING_CAP_AT
        )
        for host, count in rows
    ]
