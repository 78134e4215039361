"""Liveness and readiness: is the database reachable, is the broker reachable; and what
``asylum-intake check`` and the admins' Operations page report (``check_report``: the settings
with secrets masked and each dependency's reachability), one function so the two cannot
disagree."""

from __future__ import annotations

import hmac
import smtplib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu import Connection  # type: ignore[attr-defined]
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core.errors import NotAuthenticated, NotFound
from app.core.settings import Settings, get_settings, mask_url
from app.ops import figures
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


#: Seconds each reachability check may wait: the page runs them in its request's thread.
CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Reachability:
    name: str
    error: str | None  # None: reachable


@dataclass(frozen=True)
class CheckReport:
    settings: dict[str, Any]
    dependencies: list[Reachability]

    @property
    def ok(self) -> bool:
        return all(dep.error is None for dep in self.dependencies)


def _database_error(settings: Settings, timeout: float) -> str | None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = settings.resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # as `run` does
        # Not the app's engine: its BEGIN IMMEDIATE would wait for the write lock that the
        # page's own request holds (the Operations page runs this inside a request).
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})
    else:
        # A short connect timeout (the app's pooled engine would wait much longer).
        timeout_s = max(1, round(timeout))
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": timeout_s})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        return f"INTAKE_DATABASE_URL: cannot connect to {mask_url(url)} ({reason})"
    finally:
        engine.dispose()


def reachability(settings: Settings, timeout: float = CHECK_TIMEOUT_SECONDS) -> list[Reachability]:
    """Each dependency and why it cannot be reached (blocking: call it from a thread)."""
    results = [Reachability("database", _database_error(settings, timeout))]
    broker_error = check_broker(settings.resolved_broker_url, timeout=timeout)
    results.append(
        Reachability("broker", f"INTAKE_BROKER_URL: {broker_error}" if broker_error else None)
    )
    if settings.mail_backend == "smtp":
        wait = min(timeout, settings.smtp_timeout_seconds)
        try:
            with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=wait) as client:
                client.ehlo()
            results.append(Reachability("smtp", None))
        except (OSError, smtplib.SMTPException) as exc:
            results.append(
                Reachability(
                    "smtp",
                    f"INTAKE_SMTP_HOST: cannot reach {settings.smtp_host}:{settings.smtp_port} "
                    f"({type(exc).__name__}: {exc})",
                )
            )
    else:
        results.append(Reachability("mail", None))
    return results


def check_report(settings: Settings, timeout: float = CHECK_TIMEOUT_SECONDS) -> CheckReport:
    """What ``asylum-intake check`` prints and the Operations page shows: the resolved settings
    (secrets masked by ``Settings.describe``) and the reachability of each dependency."""
    return CheckReport(settings.describe(), reachability(settings, timeout))


def readiness(session: Session) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    db_error = check_database(session)
    checks["database"] = {"ok": db_error is None, "error": db_error}
    broker_error = check_broker()
    checks["broker"] = {"ok": broker_error is None, "error": broker_error}
    if db_error is None:
        checks["outbox"] = outbox.stats(session)
        # Workers, beat, the oldest unanswered request and what alerts: reported, never a 503.
        checks.update(figures.readiness_checks(session, checks["outbox"]))
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
