"""Shared pieces: constants, who acts, loading the engine's inputs, the pool, free slots,
alternatives, row locks, and writing a consultation under the exclusion constraint."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.calendars import busy as calendar_busy
from app.core.time import now
from app.experts import bookings as expert_bookings
from app.models import (
    BOOKED_OVERLAP_CONSTRAINT,
    BUSY_STATUSES,
    AvailabilityOverride,
    Consultation,
    ConsultationStatus,
    ExpertAvailability,
    ExpertCountry,
    ExpertProfile,
    ExpertRegion,
    IntakeRequest,
    RequestStatus,
    Role,
    SlotHold,
    UnavailablePeriod,
    User,
)
from app.scheduling import slots
from app.scheduling.errors import BookingNotAllowed, SlotTaken

log = structlog.get_logger(__name__)

INVITE_KIND = "scheduling.invite"
MEETING_CREATE = "meetings.create"
MEETING_UPDATE = "meetings.update"
MEETING_DELETE = "meetings.delete"

BOOKABLE = (RequestStatus.new, RequestStatus.in_progress)
ALTERNATIVES = 5
DEFAULT_HORIZON_DAYS = 30

# Bookings and absences this far around a checked start are read (cap by local day, buffers).
_AROUND = dt.timedelta(days=2)

Event = Literal["booked", "rescheduled", "cancelled", "moved", "cancelled_reassigned", "link"]


@dataclass(frozen=True)
class Caller:
    """Who acts on a request's consultation: its requester (link), staff, or an expert."""

    kind: Literal["requester", "staff", "expert"]
    user: User | None = None

    @property
    def actor(self) -> str:
        return "requester" if self.user is None else f"user:{self.user.id}"


def _time(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def engine_availability(
    row: ExpertAvailability, overrides: Iterable[AvailabilityOverride]
) -> slots.Availability:
    """The stored availability as the engine's input."""
    return slots.Availability(
        timezone=row.timezone,
        weekly=[
            slots.WeeklyRange(int(r["weekday"]), _time(r["start"]), _time(r["end"]))
            for r in row.weekly
        ],
        overrides=[
            slots.DateOverride(o.date, [(_time(r["start"]), _time(r["end"])) for r in o.ranges])
            for o in overrides
        ],
        slot_minutes=row.slot_minutes,
        interval_minutes=row.interval_minutes,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        min_notice_minutes=row.min_notice_minutes,
        horizon_days=row.horizon_days,
        max_per_day=row.max_per_day,
    )


@dataclass
class _Expert:
    row: ExpertAvailability
    profile: ExpertProfile
    overrides: list[AvailabilityOverride]
    bookings: list[slots.Booking]
    unavailable: list[slots.UnavailablePeriod]
    # Busy times read from the expert's own calendars (the last good read of each).
    busy: list[slots.BusyTime] = field(default_factory=list)

    def member(self, availability: slots.Availability | None = None) -> slots.PoolMember:
        return slots.PoolMember(
            self.row.expert_id,
            availability or engine_availability(self.row, self.overrides),
            self.bookings,
            self.unavailable,
            self.busy,
        )


def _load_experts(
    session: Session,
    expert_ids: Sequence[uuid.UUID],
    low: dt.datetime,
    high: dt.datetime,
    *,
    lock: bool = False,
    skip_consultation: uuid.UUID | None = None,
    hold_of: uuid.UUID | None = None,
    now_utc: dt.datetime | None = None,
) -> list[_Expert]:
    """Availability, bookings and absences of these experts over ``[low, high)``, in id
    order. ``lock``: their availability rows ``FOR UPDATE`` (id order: no deadlock).
    Holds still live at ``now_utc`` count as bookings, except those of request ``hold_of``."""
    if not expert_ids:
        return []
    ids = sorted(set(expert_ids), key=str)
    stmt = select(ExpertAvailability).where(ExpertAvailability.expert_id.in_(ids))
    if lock:
        stmt = stmt.order_by(ExpertAvailability.expert_id).with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
    rows = {r.expert_id: r for r in session.scalars(stmt)}
    if not rows:
        return []
    found = list(rows)
    profiles = {
        p.user_id: p
        for p in session.scalars(select(ExpertProfile).where(ExpertProfile.user_id.in_(found)))
    }
    overrides: dict[uuid.UUID, list[AvailabilityOverride]] = {i: [] for i in found}
    for o in session.scalars(
        select(AvailabilityOverride).where(AvailabilityOverride.expert_id.in_(found))
    ):
        overrides[o.expert_id].append(o)
    busy: dict[uuid.UUID, list[slots.Booking]] = {i: [] for i in found}
    booked = select(Consultation.expert_id, Consultation.start_at, Consultation.end_at).where(
        Consultation.expert_id.in_(found),
        Consultation.status.in_(BUSY_STATUSES),
        Consultation.start_at < high,
        Consultation.end_at > low,
    )
    if skip_consultation is not None:
        booked = booked.where(Consultation.id != skip_consultation)
    for expert_id, start, end in session.execute(booked):
        busy[expert_id].append(slots.Booking(start, end))
    _add_holds(session, busy, low, high, hold_of, now_utc or now())
    away: dict[uuid.UUID, list[slots.UnavailablePeriod]] = {i: [] for i in found}
    for expert_id, start, end in session.execute(
        select(
            UnavailablePeriod.expert_id, UnavailablePeriod.starts_at, UnavailablePeriod.ends_at
        ).where(
            UnavailablePeriod.expert_id.in_(found),
            UnavailablePeriod.starts_at < high,
            UnavailablePeriod.ends_at > low,
        )
    ):
        away[expert_id].append(slots.UnavailablePeriod(start, end))
    calendars = calendar_busy.busy_for(session, found, low, high)
    return [
        _Expert(rows[i], profiles[i], overrides[i], busy[i], away[i], calendars.get(i, []))
        for i in sorted(found, key=str)
        if i in profiles
    ]


def _add_holds(
    session: Session,
    busy: dict[uuid.UUID, list[slots.Booking]],
    low: dt.datetime,
    high: dt.datetime,
    hold_of: uuid.UUID | None,
    now_utc: dt.datetime,
) -> None:
    """Other requests' live holds, as bookings (the engine's ``held`` decides what is live)."""
    stmt = select(SlotHold.expert_id, SlotHold.start_at, SlotHold.end_at, SlotHold.expires_at)
    stmt = stmt.where(
        SlotHold.expert_id.in_(list(busy)), SlotHold.start_at < high, SlotHold.end_at > low
    )
    if hold_of is not None:
        stmt = stmt.where(SlotHold.request_id != hold_of)
    for expert_id, start, end, expires_at in session.execute(stmt):
        busy[expert_id].extend(slots.held([slots.Hold(start, end, expires_at)], now_utc))


def pool_expert_ids(session: Session, req: IntakeRequest) -> list[uuid.UUID]:
    """The region pool of a request that has no expert yet: active experts covering its
    country or its region, with capacity left, not passed over for it before."""
    coverage: ColumnElement[bool] = ExpertProfile.user_id.in_(
        select(ExpertCountry.expert_id).where(ExpertCountry.country_code == req.country_of_origin)
    )
    if req.region_code is not None:
        coverage = coverage | ExpertProfile.user_id.in_(
            select(ExpertRegion.expert_id).where(ExpertRegion.region_code == req.region_code)
        )
    ids = session.scalars(
        select(ExpertProfile.user_id)
        .join(User, User.id == ExpertProfile.user_id)
        .join(ExpertAvailability, ExpertAvailability.expert_id == ExpertProfile.user_id)
        .where(
            coverage,
            ExpertProfile.is_active.is_(True),
            User.is_active.is_(True),
            User.role == Role.expert,
            ExpertProfile.open_assignments < ExpertProfile.max_open_assignments,
        )
    ).all()
    return [i for i in ids if expert_bookings.pool_assignable(session, req, i)]


def _target(session: Session, req: IntakeRequest) -> tuple[list[uuid.UUID], bool]:
    """(expert ids, is the pool)."""
    if req.assigned_expert_id is not None:
        return [req.assigned_expert_id], False
    return pool_expert_ids(session, req), True


def _free(
    experts: Sequence[_Expert],
    *,
    current: dt.datetime,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    zone: str,
) -> list[slots.Slot] | list[slots.PoolSlot]:
    if len(experts) == 1:
        e = experts[0]
        member = e.member()
        return slots.free_slots(
            member.availability,
            member.bookings,
            member.unavailable,
            now_utc=current,
            expert_id=member.expert_id,
            window_start_utc=window_start,
            window_end_utc=window_end,
            horizon_timezone=zone,
            busy=member.busy,
        )
    return slots.pool_slots(
        [e.member() for e in experts],
        now_utc=current,
        window_start_utc=window_start,
        window_end_utc=window_end,
        horizon_timezone=zone,
    )


def local_slot_dict(s: slots.LocalSlot) -> dict[str, Any]:
    return {
        "start_utc": s.start_utc,
        "end_utc": s.end_utc,
        "start_local": s.start_local,
        "end_local": s.end_local,
        "utc_offset": s.utc_offset,
        "label": s.label,
    }


def alternatives(
    session: Session,
    req: IntakeRequest,
    zone: str,
    *,
    expert_ids: Sequence[uuid.UUID] | None = None,
    skip_consultation: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """The next few free slots (from now to the horizon), in the requester's zone."""
    current = now()
    ids = list(expert_ids) if expert_ids is not None else _target(session, req)[0]
    experts = _load_experts(
        session,
        ids,
        current - _AROUND,
        current + dt.timedelta(days=366),
        skip_consultation=skip_consultation,
        hold_of=req.id,
        now_utc=current,
    )
    if not experts:
        return []
    found: list[slots.Slot | slots.PoolSlot] = list(
        _free(experts, current=current, window_start=None, window_end=None, zone=zone)
    )
    first = sorted(found, key=lambda s: s.start_utc)[:ALTERNATIVES]
    if not first:
        return []
    tz = slots.zone(zone)
    days = slots.requester_view(
        first,
        zone,
        first[0].start_utc.astimezone(tz).date(),
        first[-1].start_utc.astimezone(tz).date(),
    )
    return [local_slot_dict(s) for day in days for s in day.slots]


def _lock_request(session: Session, req: IntakeRequest) -> IntakeRequest:
    locked = session.get(IntakeRequest, req.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    return locked


def booked_consultation(
    session: Session, req: IntakeRequest, *, lock: bool = False
) -> Consultation | None:
    stmt = select(Consultation).where(
        Consultation.request_id == req.id, Consultation.status == ConsultationStatus.booked
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def latest_consultation(session: Session, req: IntakeRequest) -> Consultation | None:
    return session.scalar(
        select(Consultation)
        .where(Consultation.request_id == req.id)
        .order_by(Consultation.created_at.desc())
        .limit(1)
    )


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _taken(
    session: Session,
    req: IntakeRequest,
    zone: str,
    reason: str,
    *,
    expert_ids: Sequence[uuid.UUID] | None = None,
    skip_consultation: uuid.UUID | None = None,
) -> SlotTaken:
    messages = {
        "conflict": "This time has just been taken. Please choose another.",
        "not_offered": "This time is not one of the offered slots. Please choose another.",
        "too_soon": "This time is too soon to book. Please choose a later one.",
        "beyond_horizon": "This time is too far ahead to book. Please choose an earlier one.",
        "day_full": "That day is fully booked. Please choose another day.",
        "unavailable": "The expert is away at this time. Please choose another.",
        "no_expert": "No expert can take a consultation at this time. Please choose another.",
    }
    return SlotTaken(
        reason,
        alternatives(
            session, req, zone, expert_ids=expert_ids, skip_consultation=skip_consultation
        ),
        messages.get(reason, "This time is not available. Please choose another."),
    )


def _insert_or_refuse(session: Session, c: Consultation) -> None:
    """Write the row inside a savepoint; PostgreSQL's exclusion constraint may refuse it."""
    try:
        with session.begin_nested():
            session.add(c)
            session.flush()
    except IntegrityError as exc:
        if BOOKED_OVERLAP_CONSTRAINT in str(exc.orig):
            raise _Overlap() from None
        if "uq_consultations_booked_request" in str(exc.orig):
            raise BookingNotAllowed(
                "This request already has a booked consultation.",
                details={"status": RequestStatus.consultation_scheduled.value},
            ) from None
        raise


def _update_or_refuse(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if BOOKED_OVERLAP_CONSTRAINT in str(exc.orig):
            raise _Overlap() from None
        raise


class _Overlap(Exception):
    """The exclusion constraint refused the row."""


def _engine_args(
    e: _Expert, availability: slots.Availability | None = None
) -> tuple[slots.Availability, list[slots.Booking], list[slots.UnavailablePeriod]]:
    return (availability or engine_availability(e.row, e.overrides), e.bookings, e.unavailable)
