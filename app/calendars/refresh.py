"""Reading each calendar every few minutes, politely, and what a read changes.

The worker's task (``workers/calendars.py``) does, per due calendar, three steps so that no
database transaction stays open while the network is slow:

1. :func:`claim` (a transaction): the calendar is taken for a while (``next_refresh_at`` moved
   on by one conditional UPDATE, so two workers never read the same calendar at once) and
   what the read needs is decrypted into a :class:`Target`.
2. :func:`read` (no database): the conditional GET or CalDAV query, then the parse.
3. :func:`record` (a transaction): a success replaces the calendar's busy times, clears the
   failure state and looks for new conflicts with booked consultations; a failure keeps the
   last good busy times (never "everything free" by accident), counts the failure, waits
   exponentially longer (``refresh_minutes * 2^failures``, at most ``backoff_max_minutes``),
   and once the calendar has been unreadable for ``alert_after_minutes`` alerts the expert and
   staff, once per run of failures.

A conflict is a busy time overlapping a booked consultation that has not ended: staff and the
expert are told the reference and the time (nothing of the event, nothing of the requester),
once per consultation and event (``calendar_conflict_alerts``, unique).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.calendars import fetch, parse
from app.calendars.service import reveal
from app.calendars.settings import CalendarSettings, calendar_settings
from app.core.time import now
from app.models import (
    CalendarBusy,
    CalendarConflictAlert,
    CalendarConnection,
    CalendarKind,
    Consultation,
    ConsultationStatus,
    ExpertAvailability,
    ExpertProfile,
)
from app.outbox import service as outbox

log = structlog.get_logger(__name__)

UNREADABLE_KIND = "calendars.unreadable"
CONFLICT_KIND = "calendars.conflict"
# A claimed calendar is not claimed again for this long (a crashed worker's claim runs out).
CLAIM_SECONDS = 300
# Busy times are read from a day ago to the expert's horizon plus this margin.
_BEFORE = dt.timedelta(days=1)
_AFTER = dt.timedelta(days=2)
_DEFAULT_HORIZON_DAYS = 30


@dataclass(frozen=True)
class Target:
    connection_id: uuid.UUID
    kind: CalendarKind
    address: str
    username: str | None
    password: str | None
    etag: str | None
    last_modified: str | None
    zone: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Outcome:
    """What one read found: ``busy`` None with ``error`` None means "not modified"."""

    busy: list[parse.BusyEvent] | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    events: list[parse.BusyEvent] = field(default_factory=list)


def due(session: Session, *, limit: int = 50) -> list[uuid.UUID]:
    """Calendars due for a read, the longest waiting first."""
    return list(
        session.scalars(
            select(CalendarConnection.id)
            .where(CalendarConnection.next_refresh_at <= now())
            .order_by(CalendarConnection.next_refresh_at, CalendarConnection.id)
            .limit(limit)
        )
    )


def claim(session: Session, connection_id: uuid.UUID) -> Target | None:
    """Take a due calendar for one read (None: gone, not due, or taken by another worker)."""
    current = now()
    taken = session.execute(
        update(CalendarConnection)
        .where(
            CalendarConnection.id == connection_id,
            CalendarConnection.next_refresh_at <= current,
        )
        .values(next_refresh_at=current + dt.timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return None
    connection = session.get(CalendarConnection, connection_id, populate_existing=True)
    if connection is None:
        return None
    secret = reveal(connection)
    availability = session.get(ExpertAvailability, connection.expert_id)
    profile = session.get(ExpertProfile, connection.expert_id)
    zone = (
        availability.timezone
        if availability is not None
        else profile.timezone
        if profile is not None
        else "UTC"
    )
    horizon = availability.horizon_days if availability is not None else _DEFAULT_HORIZON_DAYS
    return Target(
        connection_id=connection.id,
        kind=connection.kind,
        address=secret.address,
        username=connection.username,
        password=secret.password,
        etag=connection.etag,
        last_modified=connection.last_modified,
        zone=zone,
        start=current - _BEFORE,
        end=current + dt.timedelta(days=horizon) + _AFTER,
    )


def read(target: Target, settings: CalendarSettings | None = None) -> Outcome:
    """The network read and the parse; never raises for the calendar's own faults."""
    settings = settings or calendar_settings()
    try:
        if target.kind == CalendarKind.caldav:
            fetched = fetch.fetch_caldav(
                target.address,
                username=target.username or "",
                password=target.password or "",
                start=target.start,
                end=target.end,
                settings=settings,
            )
        else:
            fetched = fetch.fetch_ics(
                target.address,
                etag=target.etag,
                last_modified=target.last_modified,
                settings=settings,
            )
    except fetch.FetchFailed as exc:
        return Outcome(error=str(exc))
    if fetched.not_modified:
        return Outcome(not_modified=True, etag=target.etag, last_modified=target.last_modified)
    try:
        busy = parse.busy_times(
            fetched.data,
            start=target.start,
            end=target.end,
            zone=target.zone,
            limit=settings.max_events,
        )
    except parse.CalendarDataInvalid:
        return Outcome(error="The address does not give a calendar (not an iCalendar file).")
    return Outcome(busy=busy, etag=fetched.etag, last_modified=fetched.last_modified)


def backoff(failures: int, settings: CalendarSettings) -> dt.timedelta:
    """The wait after ``failures`` failed reads in a row (1, 2, ...)."""
    minutes = min(settings.refresh_minutes * 2 ** min(failures, 20), settings.backoff_max_minutes)
    return dt.timedelta(minutes=minutes)


def record(
    session: Session,
    connection_id: uuid.UUID,
    outcome: Outcome,
    settings: CalendarSettings | None = None,
) -> None:
    """Store what a read found (see the module's text)."""
    settings = settings or calendar_settings()
    connection = session.get(
        CalendarConnection, connection_id, with_for_update=True, populate_existing=True
    )
    if connection is None:
        return  # removed while it was being read
    current = now()
    connection.last_attempt_at = current
    if outcome.error is not None:
        _failed(session, connection, outcome.error, current, settings)
        return
    connection.last_success_at = current
    connection.last_error = None
    connection.failing_since = None
    connection.failures = 0
    connection.alerted_at = None
    connection.next_refresh_at = current + dt.timedelta(minutes=settings.refresh_minutes)
    connection.etag = (outcome.etag or "")[:500] or None
    connection.last_modified = (outcome.last_modified or "")[:100] or None
    if outcome.busy is not None:
        _replace_busy(session, connection, outcome.busy)
    session.flush()
    _alert_conflicts(session, connection, current)


def _failed(
    session: Session,
    connection: CalendarConnection,
    error: str,
    current: dt.datetime,
    settings: CalendarSettings,
) -> None:
    connection.failures += 1
    connection.last_error = error[:500]
    if connection.failing_since is None:
        connection.failing_since = current
    connection.next_refresh_at = current + backoff(connection.failures, settings)
    log.info("calendar_read_failed", connection_id=str(connection.id), failures=connection.failures)
    unreadable_for = current - connection.failing_since
    if connection.alerted_at is None and unreadable_for >= dt.timedelta(
        minutes=settings.alert_after_minutes
    ):
        connection.alerted_at = current
        outbox.enqueue(
            session,
            UNREADABLE_KIND,
            {"connection_id": str(connection.id)},
            dedup_key=f"{UNREADABLE_KIND}:{connection.id}:{connection.failing_since.isoformat()}",
        )
    session.flush()


def _replace_busy(
    session: Session, connection: CalendarConnection, busy: list[parse.BusyEvent]
) -> None:
    session.execute(delete(CalendarBusy).where(CalendarBusy.connection_id == connection.id))
    if busy:
        session.execute(
            insert(CalendarBusy),
            [
                {
                    "connection_id": connection.id,
                    "expert_id": connection.expert_id,
                    "starts_at": b.start,
                    "ends_at": b.end,
                    "event_key": b.key,
                }
                for b in busy
            ],
        )
    connection.busy_count = len(busy)


def _alert_conflicts(
    session: Session, connection: CalendarConnection, current: dt.datetime
) -> None:
    """Each booked, not yet ended consultation of the expert that a busy time of this calendar
    overlaps: one alert per consultation and event, ever."""
    overlapping = session.execute(
        select(Consultation.id, CalendarBusy.event_key)
        .join(
            CalendarBusy,
            (CalendarBusy.expert_id == Consultation.expert_id)
            & (CalendarBusy.starts_at < Consultation.end_at)
            & (CalendarBusy.ends_at > Consultation.start_at),
        )
        .where(
            CalendarBusy.connection_id == connection.id,
            Consultation.expert_id == connection.expert_id,
            Consultation.status == ConsultationStatus.booked,
            Consultation.end_at > current,
        )
        .order_by(Consultation.start_at, CalendarBusy.event_key)
    ).all()
    if not overlapping:
        return
    known: set[tuple[uuid.UUID, str]] = {
        (consultation_id, event_key)
        for consultation_id, event_key in session.execute(
            select(CalendarConflictAlert.consultation_id, CalendarConflictAlert.event_key).where(
                CalendarConflictAlert.consultation_id.in_({c for c, _ in overlapping})
            )
        )
    }
    for consultation_id, event_key in overlapping:
        if (consultation_id, event_key) in known:
            continue
        known.add((consultation_id, event_key))
        try:
            with session.begin_nested():
                alert = CalendarConflictAlert(
                    consultation_id=consultation_id,
                    connection_id=connection.id,
                    event_key=event_key,
                    created_at=current,
                )
                session.add(alert)
                session.flush()
        except IntegrityError:
            continue  # another read recorded it first: its alert is on its way
        outbox.enqueue(
            session,
            CONFLICT_KIND,
            {"alert_id": alert.id},
            dedup_key=f"{CONFLICT_KIND}:{consultation_id}:{event_key}",
        )
