"""Per-client limit on submissions: the public page and ``POST /api/v1/requests`` share it.

A fixed window per client address, counted in the ``login_throttles`` table (generic enough:
a hashed key, a counter, a window start), so every API process sees the same count. Keys are
``submit:ip:<sha256 of the address>`` and never collide with sign-in's ``account:``/``ip:``
keys. The count is written in its own short transaction, so attempts that end in a validation
error count too. Over the limit: ``429`` with ``Retry-After`` (the end of the window).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from fastapi import Request
from sqlalchemy.exc import IntegrityError

from app.core import database
from app.core.errors import TooManyRequests
from app.core.settings import get_settings
from app.core.time import now
from app.models import LoginThrottle

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
    """Count one submission attempt; the seconds to wait when over the limit, else 0."""
    settings = get_settings()
    window = dt.timedelta(minutes=settings.submit_rate_window_minutes)
    key = key_for(address)
    for _attempt in range(3):
        current = now()
        try:
            with database.session_scope() as session:
                row = session.get(LoginThrottle, key, with_for_update=True)
                if row is None:
                    session.add(
                        LoginThrottle(
                            key=key, failures=1, window_started_at=current, last_failure_at=current
                        )
                    )
                    return 0.0
                if row.window_started_at + window <= current:
                    row.failures = 0
                    row.window_started_at = current
                if row.failures >= settings.submit_rate_limit:
                    return max(1.0, (row.window_started_at + window - current).total_seconds())
                row.failures += 1
                row.last_failure_at = current
                return 0.0
        except IntegrityError:  # two first attempts at once: the other one created the row
            continue
    return 0.0  # pragma: no cover


def check_submission_rate(request: Request) -> None:
    """FastAPI dependency: raise ``TooManyRequests`` (429 + Retry-After) over the limit."""
    wait = hit(client_address(request))
    if wait > 0:
        raise TooManyRequests(
            "Too many requests from this address. Please try again later.",
            retry_after_seconds=math.ceil(wait),
        )
