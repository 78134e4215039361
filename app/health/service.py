"""Liveness and readiness: is the database reachable, is the broker reachable."""

from __future__ import annotations

import hmac
from typing import Any

from kombu import Connection  # type: ignore[attr-defined]
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core.errors import NotAuthenticated, NotFound
from app.core.settings import get_settings, mask_url
from app.outbox import service as outbox


def check_database(session: Session) -> str | None:
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: cannot reach the database"
    return None


def check_broker(url: str | None = None, timeout: float = 2.0) -> str | None:
    url = url or get_settings().resolved_broker_url
    try:
        with Connection(url, connect_timeout=timeout) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: cannot reach the broker at {mask_url(url)}"
    return None


def readiness(session: Session) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    db_error = check_database(session)
    checks["database"] = {"ok": db_error is None, "error": db_error}
    broker_error = check_broker()
    checks["broker"] = {"ok": broker_error is None, "error": broker_error}
    if db_error is None:
        checks["outbox"] = outbox.stats(session)
    return db_error is None and broker_error is None, checks


def check_metrics_token(authorization: str | None) -> None:
    """``INTAKE_METRICS_TOKEN`` set: the scraper must send it as a Bearer token (compared in
    constant time). Unset: open outside production (a development machine); in production the
    metrics do not exist (404) until the token is set, since a forgotten token would otherwise
    publish the service's figures to anyone who can reach it."""
    settings = get_settings()
    expected = settings.metrics_token
    if expected is None:
        if settings.env == "production":
            raise NotFound("Not found.")
        return
    scheme, _, given = (authorization or "").partition(" ")
    ok = hmac.compare_digest(given.strip().encode(), expected.get_secret_value().encode())
    if scheme.lower() != "bearer" or not ok:
        raise NotAuthenticated("The metrics need the metrics token as a Bearer token.")
