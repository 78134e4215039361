"""The one time source. Every process (API, worker, beat) calls ``now()``.

In tests (``INTAKE_ENV=test``) a file named by ``INTAKE_TEST_CLOCK_FILE`` may hold an offset in
seconds; every process reads it, so scenario tests can move the clock of real processes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

UTC = dt.UTC

_cache: dict[str, tuple[float, float]] = {}


def _offset_seconds() -> float:
    from app.core.settings import get_settings

    settings = get_settings()
    if settings.env != "test" or settings.test_clock_file is None:
        return 0.0
    path: Path = settings.test_clock_file
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
    key = str(path)
    cached = _cache.get(key)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        value = float(path.read_text().strip() or 0)
    except ValueError:
        value = 0.0
    _cache[key] = (mtime, value)
    return value


def now() -> dt.datetime:
    """Timezone-aware UTC now, shifted by the test clock when one is set."""
    current = dt.datetime.now(UTC)
    offset = _offset_seconds()
    return current + dt.timedelta(seconds=offset) if offset else current


def ensure_utc(value: dt.datetime) -> dt.datetime:
    """Naive values are taken as UTC (SQLite returns them so); aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
