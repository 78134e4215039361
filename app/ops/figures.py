"""What operations watch, for /readyz and /metrics: live workers and beat (heartbeats), the
oldest request still waiting for its first response, and outbox rows failing by kind (a
calendar or Zoom failing shows here first, long before its rows are dead-lettered)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake.status import FINAL
from app.models import IntakeRequest, OutboxMessage, OutboxStatus
from app.ops.heartbeat import Liveness, liveness

#: Outbox lag above which /readyz names it (the alert rule uses the same minute).
OUTBOX_LAG_ALERT_SECONDS = 60.0


def oldest_unanswered_age_seconds(session: Session, at: dt.datetime | None = None) -> float:
    """Age of the oldest open request without a first response (0 when there is none).
    Open as the queue counts it: not ended, not merged into another."""
    r = IntakeRequest
    oldest = session.scalar(
        select(func.min(r.received_at)).where(
            and_(
                r.status.not_in(list(FINAL)),
                r.merged_into_id.is_(None),
                r.first_responded_at.is_(None),
            )
        )
    )
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite's aggregate may come back as text
        oldest = dt.datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return round(((at or now()) - oldest).total_seconds(), 1)


def failing_by_kind(session: Session) -> dict[tuple[str, str], int]:
    """(kind, state) -> rows, for rows being retried (pending after a failed attempt) and dead."""
    o = OutboxMessage
    retrying = session.execute(
        select(o.kind, func.count())
        .where(o.status == OutboxStatus.pending, o.attempts > 0)
        .group_by(o.kind)
    ).all()
    dead = session.execute(
        select(o.kind, func.count()).where(o.status == OutboxStatus.dead).group_by(o.kind)
    ).all()
    out = {(str(k), "retrying"): int(n) for k, n in retrying}
    out.update({(str(k), "dead"): int(n) for k, n in dead})
    return out


def processes(session: Session) -> dict[str, Liveness]:
    return liveness(session)


def readiness_checks(session: Session, outbox: dict[str, Any]) -> dict[str, Any]:
    """The operational part of /readyz. It never makes the API unready: a stopped worker must
    not take the API (and its submissions, which wait in the outbox) out of a load balancer."""
    states = processes(session)
    unanswered = oldest_unanswered_age_seconds(session)
    alerts = [f"no_live_{kind}" for kind, s in states.items() if not s.ok]
    if outbox.get("oldest_due_age_seconds", 0) > OUTBOX_LAG_ALERT_SECONDS:
        alerts.append("outbox_lag")
    if outbox.get("dead", 0):
        alerts.append("dead_letters")
    checks: dict[str, Any] = {
        kind: {"ok": s.ok, "live": s.live, "last_seen_age_seconds": s.age_seconds}
        for kind, s in states.items()
    }
    checks["oldest_unanswered_request_age_seconds"] = unanswered
    checks["alerts"] = alerts
    return checks
