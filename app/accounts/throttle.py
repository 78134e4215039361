"""Slow down, then lock, repeated failed sign-ins per account and per client address.

After ``login_slow_after_failures`` failures each further try must wait 2^(n-k) seconds; after
``login_lock_after_failures`` the key is locked for ``login_lock_minutes``. State lives in the
database so every API process sees it. Keys are keyed hashes (HMAC, with a key derived from the
master key): no e-mail or address in clear, and none recoverable by hashing candidates.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.errors import TooManyRequests
from app.core.settings import get_settings
from app.core.time import now
from app.models import LoginThrottle

MAX_SLOWDOWN_SECONDS = 60


HASH_PURPOSE = "sign-in throttle"


def keys_for(email: str, ip: str | None) -> list[str]:
    keys = ["account:" + crypto.keyed_hash(HASH_PURPOSE, email)]
    if ip:
        keys.append("ip:" + crypto.keyed_hash(HASH_PURPOSE, ip))
    return keys


def _wait_seconds(row: LoginThrottle, current: dt.datetime) -> float:
    s = get_settings()
    if row.locked_until and row.locked_until > current:
        return (row.locked_until - current).total_seconds()
    window_start = current - dt.timedelta(minutes=s.login_failure_window_minutes)
    if row.last_failure_at < window_start:
        return 0.0
    if row.failures >= s.login_slow_after_failures:
        delay = min(2 ** (row.failures - s.login_slow_after_failures), MAX_SLOWDOWN_SECONDS)
        return (row.last_failure_at + dt.timedelta(seconds=delay) - current).total_seconds()
    return 0.0


def check(session: Session, keys: list[str]) -> None:
    current = now()
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is None:
            continue
        wait = _wait_seconds(row, current)
        if wait > 0:
            locked = bool(row.locked_until and row.locked_until > current)
            raise TooManyRequests(
                "Too many failed sign-in attempts. "
                + ("This account or address is locked for a while." if locked else "Slow down.")
                + f" Try again in {math.ceil(wait)} seconds.",
                retry_after_seconds=math.ceil(wait),
            )


def record_failure(session: Session, keys: list[str]) -> None:
    s = get_settings()
    current = now()
    for key in keys:
        row = session.get(LoginThrottle, key, with_for_update=True)
        if row is None:
            row = LoginThrottle(
                key=key, failures=0, window_started_at=current, last_failure_at=current
            )
            session.add(row)
        window_start = current - dt.timedelta(minutes=s.login_failure_window_minutes)
        expired_lock = row.locked_until is not None and row.locked_until <= current
        if row.last_failure_at < window_start or expired_lock:
            row.failures = 0
            row.window_started_at = current
            row.locked_until = None
        row.failures += 1
        row.last_failure_at = current
        if row.failures >= s.login_lock_after_failures:
            row.locked_until = current + dt.timedelta(minutes=s.login_lock_minutes)
    session.flush()


def purge_forgotten(session: Session, current: dt.datetime) -> int:
    """Delete sign-in counts that no longer slow or lock anyone (the daily retention run calls
    this): no lock in force and no failure within the window. Returns how many."""
    window_start = current - dt.timedelta(minutes=get_settings().login_failure_window_minutes)
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.key.startswith("account:") | LoginThrottle.key.startswith("ip:"),
            LoginThrottle.last_failure_at < window_start,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until <= current),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def clear(session: Session, key: str) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)
