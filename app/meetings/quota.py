"""Counting meeting creates/updates per Zoom user per day.

Zoom allows each host 100 meeting create/update requests per day; the day resets at 00:00 UTC.
A busy expert can reach it, so the count is kept here and "nearing the cap" is visible before
Zoom starts answering 429.

The counting is pure logic over a small storage interface (``UsageStore``). The in-memory store
is for tests and single-process use; a database table with a unique (host, day) key and an
``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count`` backs it in
production (see ``docs/zoom.md``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

ZOOM_DAILY_MEETING_WRITES = 100
NEARING_CAP_AT = 80


def usage_day(at: dt.datetime) -> dt.date:
    """The Zoom day a moment belongs to (days run from 00:00 UTC)."""
    if at.tzinfo is None:
        raise ValueError("usage_day needs a timezone-aware datetime")
    return at.astimezone(dt.UTC).date()


def seconds_until_reset(at: dt.datetime) -> float:
    """Seconds from ``at`` to the next 00:00 UTC, when the daily cap resets."""
    day = usage_day(at)
    reset = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return (reset - at.astimezone(dt.UTC)).total_seconds()


def host_key(host: str) -> str:
    """One key per host: Zoom user e-mails are case-insensitive."""
    return host.strip().lower()


class UsageStore(Protocol):
    def increment(self, host: str, day: dt.date) -> int:
        """Atomically add one for (host, day) and return the new count."""
        ...

    def get(self, host: str, day: dt.date) -> int:
        """The count for (host, day), 0 if none."""
        ...


class InMemoryUsageStore:
    """Thread-safe dictionary store (tests, single process)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, dt.date], int] = {}
        self._lock = threading.Lock()

    def increment(self, host: str, day: dt.date) -> int:
        with self._lock:
            value = self._counts.get((host, day), 0) + 1
            self._counts[(host, day)] = value
            return value

    def get(self, host: str, day: dt.date) -> int:
        with self._lock:
            return self._counts.get((host, day), 0)


@dataclass(frozen=True)
class UsageStatus:
    host: str
    day: dt.date
    count: int
    limit: int
    warn_at: int

    @property
    def nearing_cap(self) -> bool:
        return self.count >= self.warn_at

    @property
    def at_cap(self) -> bool:
        return self.count >= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


class DailyMeetingQuota:
    """Counts create/update requests per host per UTC day over a ``UsageStore``."""

    def __init__(
        self,
        store: UsageStore,
        *,
        limit: int = ZOOM_DAILY_MEETING_WRITES,
        warn_at: int = NEARING_CAP_AT,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not 0 < warn_at <= limit:
            raise ValueError("need 0 < warn_at <= limit")
        self.store = store
        self.limit = limit
        self.warn_at = warn_at
        self._clock = clock or _now

    def record(self, host: str) -> UsageStatus:
        """Count one create/update for ``host`` now; returns the status after counting."""
        key, day = host_key(host), usage_day(self._clock())
        return self._status(key, day, self.store.increment(key, day))

    def status(self, host: str) -> UsageStatus:
        key, day = host_key(host), usage_day(self._clock())
        return self._status(key, day, self.store.get(key, day))

    def _status(self, key: str, day: dt.date, count: int) -> UsageStatus:
        return UsageStatus(host=key, day=day, count=count, limit=self.limit, warn_at=self.warn_at)


def _now() -> dt.datetime:
    from app.core.time import now

    return now()
