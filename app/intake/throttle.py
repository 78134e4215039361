"""Per-client limit on submissions: the public page and ``POST /api/v1/requests`` share it.

A fixed window per client address, counted in the ``login_throttles`` table (generic enough:
a hashed key, a counter, a window start), so every API process sees the same count. Keys are
``submit:ip:<sha256 of the address>`` and never collide with sign-in's ``account:``/``ip:``
keys. The count is written in its own one-statement transaction, so attempts that end in a
validation error count too. Over the limit: ``429`` with ``Retry-After`` (the end of the window).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from fastapi import Request
from sqlalchemy import case, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core import database
from app.core.errors import TooManyRequests
from app.core.settings import get_settings
from app.core.time import now
from app.models import LoginThrottle
from app.models.base import UTCDateTime

KEY_PREFIX = "submit:ip:"


def client_address(request: Request) -> str:
    """The client's address: the last X-Forwarded-For entry (the one our proxy added) when
    ``INTAKE_TRUST_PROXY_HEADERS`` is set, else the peer (uvicorn has already applied its own
    FORWARDED_ALLOW_IPS rule to it)."""
    if get_settings().trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.client.host if request.client else "unknown"


def key_for(address: str) -> str:
    return KEY_PREFIX + hashlib.sha256(address.encode()).hexdigest()[:64]


def hit(address: str) -> float:
    """Count one submission attempt; the seconds to wait when over the limit, else 0.

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in its own transaction (PostgreSQL
    and SQLite alike): the row lock lasts one statement, so many submissions from one address
    (an office behind one NAT) do not queue behind a read-then-write transaction, and two
    first attempts at once cannot both create the row."""
    settings = get_settings()
    window = dt.timedelta(minutes=settings.submit_rate_window_minutes)
    current = now()
    table = LoginThrottle.__table__
    expired = table.c.window_started_at <= literal(current - window, UTCDateTime())
    with database.session_scope() as session:
        insert_fn = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert_fn(LoginThrottle).values(
            key=key_for(address), failures=1, window_started_at=current, last_failure_at=current
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((expired, 1), else_=table.c.failures + 1),
                "window_started_at": case(
                    (expired, literal(current, UTCDateTime())), else_=table.c.window_started_at
                ),
                "last_failure_at": literal(current, UTCDateTime()),
            },
        )
        count, started = session.execute(
            stmt.returning(LoginThrottle.failures, LoginThrottle.window_started_at)
        ).one()
    if count > settings.submit_rate_limit:
        return max(1.0, (started + window - current).total_seconds())
    return 0.0


def check_submission_rate(request: Request) -> None:
    """FastAPI dependency: raise ``TooManyRequests`` (429 + Retry-After) over the limit."""
    wait = hit(client_address(request))
    if wait > 0:
        raise TooManyRequests(
            "Too many requests from this address. Please try again later.",
            retry_after_seconds=math.ceil(wait),
        )
