"""Availability, free slots, booking, rescheduling, cancelling, and what happens to a booking
when its request is reassigned.

The slot engine (``app/scheduling/slots.py``) decides every question of time; this module only
loads its inputs (availability, bookings, unavailable periods) from the database, in the
caller's transaction, and writes the outcome.

Never double-booked:
- The expert's availability row is locked (``SELECT ... FOR UPDATE``) before the engine
  re-checks a slot, so bookings of one expert are checked one after the other on PostgreSQL
  (which also keeps the daily cap exact). On SQLite every write transaction is
  ``BEGIN IMMEDIATE`` (app/core/database.py): the check-then-insert cannot race.
- Underneath, PostgreSQL's exclusion constraint ``ex_consultations_booked_overlap`` refuses two
  booked consultations of one expert whose blocked ranges overlap, whatever code path wrote
  them; its violation is answered like a taken slot (409 with alternatives).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.crypto import encrypt_with_master
from app.core.settings import get_settings
from app.core.time import now
from app.experts import assignments as expert_assignments
from app.experts import bookings as expert_bookings
from app.experts import flows as expert_flows
from app.intake import service as intake
from app.meetings.errors import MeetingError
from app.meetings.factory import get_meeting_provider
from app.meetings.providers import MeetingInfo, MeetingSpec
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
    UnavailablePeriod,
    User,
    guard_band,
)
from app.notifications.mail import stable_message_id
from app.outbox import service as outbox
from app.scheduling import slots
from app.scheduling.errors import (
    BookingNotAllowed,
    ConsultationNotFound,
    ExpertNotFound,
    SlotTaken,
)
from app.scheduling.schemas import AvailabilityIn

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


# Availability --------------------------------------------------------------------------------


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


def _profile(session: Session, expert_id: uuid.UUID) -> ExpertProfile:
    profile = session.get(ExpertProfile, expert_id)
    if profile is None:
        raise ExpertNotFound("No expert with this id.")
    return profile


def get_availability(
    session: Session, expert_id: uuid.UUID
) -> tuple[ExpertProfile, ExpertAvailability | None, Sequence[AvailabilityOverride]]:
    profile = _profile(session, expert_id)
    row = session.get(ExpertAvailability, expert_id)
    overrides = session.scalars(
        select(AvailabilityOverride)
        .where(AvailabilityOverride.expert_id == expert_id)
        .order_by(AvailabilityOverride.date)
    ).all()
    return profile, row, overrides


def put_availability(
    session: Session, expert_id: uuid.UUID, data: AvailabilityIn, *, actor: str
) -> tuple[ExpertProfile, ExpertAvailability, Sequence[AvailabilityOverride]]:
    """Replace the expert's availability. Existing bookings stay as they are (a booking outside
    the new hours is kept; staff or the expert reschedule it if they want)."""
    profile = _profile(session, expert_id)
    row = session.get(ExpertAvailability, expert_id, with_for_update=True)
    if row is None:
        row = ExpertAvailability(expert_id=expert_id)
        session.add(row)
    row.timezone = data.timezone or profile.timezone
    row.weekly = [r.model_dump() for r in data.weekly]
    row.slot_minutes = data.slot_minutes
    row.interval_minutes = data.interval_minutes
    row.buffer_before_minutes = data.buffer_before_minutes
    row.buffer_after_minutes = data.buffer_after_minutes
    row.min_notice_minutes = data.min_notice_minutes
    row.horizon_days = data.horizon_days
    row.max_per_day = data.max_per_day
    existing = {
        o.date: o
        for o in session.scalars(
            select(AvailabilityOverride).where(AvailabilityOverride.expert_id == expert_id)
        )
    }
    wanted = {o.date: o for o in data.overrides}
    for date, old in existing.items():
        if date not in wanted:
            session.delete(old)
    for date, new in wanted.items():
        ranges = [r.model_dump() for r in new.ranges]
        if date in existing:
            existing[date].ranges = ranges
        else:
            session.add(AvailabilityOverride(expert_id=expert_id, date=date, ranges=ranges))
    session.flush()
    # The engine validates what the schema cannot (e.g. the zone); fail before commit.
    _, stored, overrides = get_availability(session, expert_id)
    assert stored is not None
    engine_availability(stored, overrides)
    log.info("availability_saved", expert_id=str(expert_id), actor=actor)
    return profile, stored, overrides


# Loading the engine's inputs -----------------------------------------------------------------


@dataclass
class _Expert:
    row: ExpertAvailability
    profile: ExpertProfile
    overrides: list[AvailabilityOverride]
    bookings: list[slots.Booking]
    unavailable: list[slots.UnavailablePeriod]

    def member(self, availability: slots.Availability | None = None) -> slots.PoolMember:
        return slots.PoolMember(
            self.row.expert_id,
            availability or engine_availability(self.row, self.overrides),
            self.bookings,
            self.unavailable,
        )


def _load_experts(
    session: Session,
    expert_ids: Sequence[uuid.UUID],
    low: dt.datetime,
    high: dt.datetime,
    *,
    lock: bool = False,
    skip_consultation: uuid.UUID | None = None,
) -> list[_Expert]:
    """Availability, bookings and absences of these experts over ``[low, high)``, in id
    order. ``lock``: their availability rows ``FOR UPDATE`` (id order: no deadlock)."""
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
    return [
        _Expert(rows[i], profiles[i], overrides[i], busy[i], away[i])
        for i in sorted(found, key=str)
        if i in profiles
    ]


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


# Slots ---------------------------------------------------------------------------------------


@dataclass
class SlotList:
    query: slots.SlotQuery
    expert_name: str | None
    pool: bool
    days: list[slots.LocalDay]


def _horizon_days(experts: Sequence[_Expert]) -> int:
    return max((e.row.horizon_days for e in experts), default=DEFAULT_HORIZON_DAYS)


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
        )
    return slots.pool_slots(
        [e.member() for e in experts],
        now_utc=current,
        window_start_utc=window_start,
        window_end_utc=window_end,
        horizon_timezone=zone,
    )


def list_slots(
    session: Session,
    req: IntakeRequest,
    *,
    from_raw: str | None,
    to_raw: str | None,
    timezone_raw: str | None,
) -> SlotList:
    current = now()
    ids, pool = _target(session, req)
    # The horizon check needs the experts' horizons first; read their rows over a wide span.
    rows = session.scalars(
        select(ExpertAvailability.horizon_days).where(ExpertAvailability.expert_id.in_(ids))
    ).all()
    horizon = max(rows, default=DEFAULT_HORIZON_DAYS)
    query = slots.parse_slot_query(
        from_raw, to_raw, timezone_raw, now_utc=current, horizon_days=horizon
    )
    # The request's own booking does not hide the slots it could be moved to.
    own = booked_consultation(session, req)
    experts = _load_experts(
        session,
        ids,
        query.window_start_utc - _AROUND,
        query.window_end_utc + _AROUND,
        skip_consultation=own.id if own is not None else None,
    )
    found = (
        _free(
            experts,
            current=current,
            window_start=query.window_start_utc,
            window_end=query.window_end_utc,
            zone=query.timezone,
        )
        if experts
        else []
    )
    name = experts[0].profile.public_name if experts and not pool else None
    if not pool and name is None and req.assigned_expert_id is not None:
        profile = session.get(ExpertProfile, req.assigned_expert_id)
        name = profile.public_name if profile else None
    days = slots.requester_view(found, query.timezone, query.from_date, query.to_date)
    return SlotList(query=query, expert_name=name, pool=pool, days=days)


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


# Booking -------------------------------------------------------------------------------------


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


def _check_status(req: IntakeRequest) -> None:
    if req.status in BOOKABLE:
        return
    allowed = [s.value for s in BOOKABLE]
    raise BookingNotAllowed(
        f"A consultation can be booked only while the request is {' or '.join(allowed)}; "
        f"it is {req.status.value}."
        + (
            " Change the booked consultation instead (PATCH)."
            if req.status == RequestStatus.consultation_scheduled
            else ""
        ),
        details={"status": req.status.value, "allowed": allowed},
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


def book(
    session: Session,
    req: IntakeRequest,
    *,
    start: dt.datetime,
    zone: str | None,
    caller: Caller,
) -> Consultation:
    """Book the consultation of ``req`` at ``start`` (one of its offered slots)."""
    req = _lock_request(session, req)
    _check_status(req)
    zone = zone or req.timezone
    current = now()
    start = _as_utc(start)
    ids, pool = _target(session, req)
    experts = _load_experts(session, ids, start - _AROUND, start + _AROUND, lock=True)
    by_id = {e.row.expert_id: e for e in experts}
    if not pool:
        if not experts:
            raise _taken(session, req, zone, "not_offered")
        check = slots.is_slot_free(
            *_engine_args(experts[0]),
            now_utc=current,
            expert_id=experts[0].row.expert_id,
            start_utc=start,
            horizon_timezone=zone,
        )
        if not check:
            assert check.reason is not None
            raise _taken(session, req, zone, check.reason.value)
        candidates: list[uuid.UUID] = [experts[0].row.expert_id]
    else:
        pool_check = slots.check_pool_slot(
            [e.member() for e in experts], now_utc=current, start_utc=start, horizon_timezone=zone
        )
        if not pool_check:
            reasons = set(pool_check.reasons.values())
            reason = reasons.pop().value if len(reasons) == 1 else "no_expert"
            raise _taken(session, req, zone, reason)
        candidates = [uuid.UUID(str(i)) for i in pool_check.expert_ids]
    chosen: _Expert | None = None
    for expert_id in candidates:
        if expert_bookings.pin_for_booking(session, req, expert_id, actor=caller.actor):
            chosen = by_id[expert_id]
            break
    if chosen is None:
        raise _taken(session, req, zone, "no_expert")
    row = chosen.row
    length = dt.timedelta(minutes=row.slot_minutes)
    band = guard_band(row.buffer_before_minutes, row.buffer_after_minutes)
    consultation_id = uuid.uuid4()
    c = Consultation(
        id=consultation_id,
        request_id=req.id,
        expert_id=row.expert_id,
        start_at=start,
        end_at=start + length,
        blocked_from=start - band,
        blocked_until=start + length + band,
        status=ConsultationStatus.booked,
        ical_uid=f"consultation-{consultation_id}@{_uid_domain()}",
        ical_sequence=0,
        created_by=caller.actor,
    )
    try:
        _insert_or_refuse(session, c)
    except _Overlap:
        raise _taken(session, req, zone, "conflict", expert_ids=[row.expert_id]) from None
    intake.change_status(session, req, RequestStatus.consultation_scheduled, actor=caller.actor)
    intake.add_history(
        session,
        req,
        actor=caller.actor,
        action="consultation_booked",
        details={
            "consultation_id": str(c.id),
            "expert_id": str(c.expert_id),
            "start_at": c.start_at.isoformat(),
            "pool": pool,
        },
    )
    _attach_meeting(session, c, chosen.profile, req, row.timezone)
    send_invites(session, c, "booked")
    session.flush()
    log.info("consultation_booked", reference=req.reference, consultation_id=str(c.id))
    return c


def _engine_args(
    e: _Expert, availability: slots.Availability | None = None
) -> tuple[slots.Availability, list[slots.Booking], list[slots.UnavailablePeriod]]:
    return (availability or engine_availability(e.row, e.overrides), e.bookings, e.unavailable)


def _uid_domain() -> str:
    return stable_message_id("x").split("@", 1)[1].rstrip(">")


# Meetings ------------------------------------------------------------------------------------


def meeting_spec(
    c: Consultation, profile: ExpertProfile, req: IntakeRequest, zone: str
) -> MeetingSpec:
    """No personal data: the reference is the topic and the agenda (so a duplicate made by a
    retried create can be recognised)."""
    return MeetingSpec(
        topic=f"Consultation {req.reference}",
        start=c.start_at,
        duration_minutes=int((c.end_at - c.start_at).total_seconds() // 60),
        timezone=zone,
        agenda=f"Reference {req.reference}",
        host=profile.zoom_user or profile.email,
        personal_meeting_url=profile.personal_meeting_link,
    )


def store_meeting(c: Consultation, info: MeetingInfo) -> None:
    c.meeting_provider = info.provider
    c.meeting_external_id = str(info.external_id)
    c.meeting_join_url = info.join_url
    if info.password:
        key_id, blob = encrypt_with_master(info.password.encode(), str(c.id).encode())
        c.meeting_password_enc, c.meeting_password_key_id = blob, key_id
    else:
        c.meeting_password_enc = c.meeting_password_key_id = None


def _clear_meeting(c: Consultation) -> None:
    c.meeting_provider = c.meeting_external_id = c.meeting_join_url = None
    c.meeting_password_enc = c.meeting_password_key_id = None


def _attach_meeting(
    session: Session, c: Consultation, profile: ExpertProfile, req: IntakeRequest, zone: str
) -> None:
    """The ``link`` provider makes no call: the join link (the expert's personal link, or one
    from the template) is known at once. Other providers, or a link that cannot be made now:
    the link follows, through a ``meetings.create`` outbox row."""
    if get_settings().resolved_meeting_provider == "link":
        try:
            store_meeting(c, get_meeting_provider().create(meeting_spec(c, profile, req, zone)))
            return
        except MeetingError:
            log.warning("meeting_link_missing", consultation_id=str(c.id))
    outbox.enqueue(session, MEETING_CREATE, {"consultation_id": str(c.id)})


def _drop_meeting(session: Session, c: Consultation) -> None:
    if c.meeting_external_id is not None and c.meeting_provider not in (None, "link"):
        outbox.enqueue(
            session,
            MEETING_DELETE,
            {
                "consultation_id": str(c.id),
                "provider": c.meeting_provider,
                "external_id": c.meeting_external_id,
            },
        )


# E-mails -------------------------------------------------------------------------------------


def send_invites(
    session: Session,
    c: Consultation,
    event: Event,
    *,
    experts: Iterable[uuid.UUID] | None = None,
    requester: bool = True,
) -> None:
    """Queue the invite to the requester and to the expert(s); rendered at send time from the
    consultation as it then is (an expert no longer on it gets a cancellation)."""
    if requester:
        outbox.enqueue(
            session,
            INVITE_KIND,
            {"consultation_id": str(c.id), "to": "requester", "event": event},
        )
    for expert_id in experts if experts is not None else [c.expert_id]:
        outbox.enqueue(
            session,
            INVITE_KIND,
            {
                "consultation_id": str(c.id),
                "to": "expert",
                "expert_id": str(expert_id),
                "event": event,
            },
        )


# Changing and cancelling ---------------------------------------------------------------------


def _own_consultation(
    session: Session, req: IntakeRequest, caller: Caller, *, lock: bool
) -> Consultation:
    c = booked_consultation(session, req, lock=lock)
    if c is None or (
        caller.kind == "expert" and (caller.user is None or c.expert_id != caller.user.id)
    ):
        raise ConsultationNotFound("This request has no booked consultation.")
    return c


def check_expert_access(session: Session, req: IntakeRequest, user: User) -> None:
    """An expert sees a request's consultation only when it is theirs (404 otherwise)."""
    if req.assigned_expert_id == user.id:
        return
    mine = session.scalar(
        select(Consultation.id).where(
            Consultation.request_id == req.id, Consultation.expert_id == user.id
        )
    )
    if mine is None:
        raise ConsultationNotFound("This request has no consultation of yours.")


def reschedule(
    session: Session,
    req: IntakeRequest,
    *,
    start: dt.datetime,
    zone: str | None,
    caller: Caller,
) -> Consultation:
    """Move the booked consultation to another free slot of the same expert: same UID,
    SEQUENCE + 1, the updated invite to both sides."""
    req = _lock_request(session, req)
    c = _own_consultation(session, req, caller, lock=True)
    zone = zone or req.timezone
    start = _as_utc(start)
    if start == c.start_at:
        return c
    experts = _load_experts(
        session, [c.expert_id], start - _AROUND, start + _AROUND, lock=True, skip_consultation=c.id
    )
    if not experts:
        raise _taken(session, req, zone, "not_offered", expert_ids=[c.expert_id])
    e = experts[0]
    check = slots.is_slot_free(
        *_engine_args(e),
        now_utc=now(),
        expert_id=c.expert_id,
        start_utc=start,
        horizon_timezone=zone,
    )
    if not check:
        assert check.reason is not None
        raise _taken(
            session,
            req,
            zone,
            check.reason.value,
            expert_ids=[c.expert_id],
            skip_consultation=c.id,
        )
    before = c.start_at
    length = dt.timedelta(minutes=e.row.slot_minutes)
    band = guard_band(e.row.buffer_before_minutes, e.row.buffer_after_minutes)
    c.start_at, c.end_at = start, start + length
    c.blocked_from, c.blocked_until = start - band, start + length + band
    c.ical_sequence += 1
    try:
        _update_or_refuse(session)
    except _Overlap:
        raise _taken(
            session, req, zone, "conflict", expert_ids=[c.expert_id], skip_consultation=c.id
        ) from None
    intake.add_history(
        session,
        req,
        actor=caller.actor,
        action="consultation_rescheduled",
        details={
            "consultation_id": str(c.id),
            "from": before.isoformat(),
            "to": c.start_at.isoformat(),
            "sequence": c.ical_sequence,
        },
    )
    if c.meeting_external_id is not None and c.meeting_provider != "link":
        outbox.enqueue(session, MEETING_UPDATE, {"consultation_id": str(c.id)})
    send_invites(session, c, "rescheduled")
    session.flush()
    log.info("consultation_rescheduled", reference=req.reference, consultation_id=str(c.id))
    return c


def _cancel(
    session: Session,
    req: IntakeRequest,
    c: Consultation,
    *,
    actor: str,
    reason: str,
    event: Event,
    tell_requester: bool = True,
) -> None:
    c.status = ConsultationStatus.cancelled
    c.cancelled_at = now()
    c.cancelled_by = actor
    c.cancel_reason = reason
    c.ical_sequence += 1
    session.flush()
    if req.status == RequestStatus.consultation_scheduled:
        intake.change_status(session, req, RequestStatus.in_progress, actor=actor)
    intake.add_history(
        session,
        req,
        actor=actor,
        action="consultation_cancelled",
        details={
            "consultation_id": str(c.id),
            "expert_id": str(c.expert_id),
            "reason": reason,
            "sequence": c.ical_sequence,
        },
    )
    _drop_meeting(session, c)
    send_invites(session, c, event, requester=tell_requester)


def cancel(session: Session, req: IntakeRequest, *, caller: Caller) -> Consultation:
    """Cancel the booked consultation: METHOD:CANCEL to both sides; the request goes back to
    ``in_progress``."""
    req = _lock_request(session, req)
    c = _own_consultation(session, req, caller, lock=True)
    _cancel(session, req, c, actor=caller.actor, reason=f"by_{caller.kind}", event="cancelled")
    session.flush()
    log.info("consultation_cancelled", reference=req.reference, consultation_id=str(c.id))
    return c


# Reassignment --------------------------------------------------------------------------------


def can_take_over(
    session: Session, c: Consultation, expert_id: uuid.UUID
) -> tuple[bool, _Expert | None]:
    """Whether ``expert_id`` is free at the consultation's time: inside their working hours
    (any whole minute; their grid does not matter for a booking that exists), no booking or
    buffer in the way, not away, the day's cap not reached. Minimum notice and the horizon do
    not apply to a booking that already exists. The same engine decides."""
    experts = _load_experts(
        session, [expert_id], c.start_at - _AROUND, c.start_at + _AROUND, lock=True
    )
    if not experts:
        return False, None
    e = experts[0]
    minutes = int((c.end_at - c.start_at).total_seconds() // 60)
    days_ahead = (c.start_at - now()).days + 2
    relaxed = dataclasses.replace(
        engine_availability(e.row, e.overrides),
        slot_minutes=minutes,
        interval_minutes=1,
        min_notice_minutes=0,
        horizon_days=max(e.row.horizon_days, days_ahead),
    )
    check = slots.is_slot_free(
        *_engine_args(e, relaxed),
        now_utc=min(now(), c.start_at),
        expert_id=expert_id,
        start_utc=c.start_at,
    )
    return bool(check), e


def on_request_reassigned(
    session: Session, req: IntakeRequest, from_expert: uuid.UUID, to_expert: uuid.UUID | None
) -> None:
    """Routing's hook (``app.experts.assignments.REASSIGNMENT_HOOKS``): the booking moves to the
    new expert if they are free then (same UID, SEQUENCE + 1; the requester is told, the old
    expert gets a cancellation), otherwise it is cancelled and the requester asked to rebook."""
    c = session.scalar(
        select(Consultation)
        .where(
            Consultation.request_id == req.id,
            Consultation.expert_id == from_expert,
            Consultation.status == ConsultationStatus.booked,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if c is None:
        return
    if to_expert is not None and to_expert != from_expert:
        free, e = can_take_over(session, c, to_expert)
        if free and e is not None:
            band = guard_band(e.row.buffer_before_minutes, e.row.buffer_after_minutes)
            c.expert_id = to_expert
            c.blocked_from, c.blocked_until = c.start_at - band, c.end_at + band
            c.ical_sequence += 1
            old = (c.meeting_provider, c.meeting_external_id)
            try:
                _update_or_refuse(session)
            except _Overlap:
                free = False
            if free:
                if old[1] is not None and old[0] not in (None, "link"):
                    outbox.enqueue(
                        session,
                        MEETING_DELETE,
                        {"consultation_id": str(c.id), "provider": old[0], "external_id": old[1]},
                    )
                _clear_meeting(c)
                expert_bookings.pin_for_booking(session, req, to_expert, actor="system")
                intake.add_history(
                    session,
                    req,
                    actor="system",
                    action="consultation_moved",
                    details={
                        "consultation_id": str(c.id),
                        "from_expert_id": str(from_expert),
                        "to_expert_id": str(to_expert),
                        "sequence": c.ical_sequence,
                    },
                )
                _attach_meeting(session, c, e.profile, req, e.row.timezone)
                send_invites(session, c, "moved", experts=[from_expert, to_expert])
                session.flush()
                log.info("consultation_moved", reference=req.reference, consultation_id=str(c.id))
                return
            # Refused by the constraint: the row is as it was; cancel it below.
            session.refresh(c)
    _cancel(
        session,
        req,
        c,
        actor="system",
        reason="expert_reassigned",
        event="cancelled_reassigned",
    )
    session.flush()
    log.info("consultation_cancelled_on_reassign", reference=req.reference)


def on_request_ended(session: Session, req: IntakeRequest) -> None:
    """Routing's hook (``app.experts.flows.ENDED_HOOKS``): a request that ends (withdrawn,
    declined, spam, closed) takes its booked consultation with it. Nothing goes to the
    address of a request marked as spam."""
    c = booked_consultation(session, req, lock=True)
    if c is None:
        return
    _cancel(
        session,
        req,
        c,
        actor="system",
        reason=f"request_{req.status.value}",
        event="cancelled",
        tell_requester=req.status != RequestStatus.spam,
    )
    log.info("consultation_cancelled_request_ended", reference=req.reference)


def _register() -> None:
    hooks = expert_assignments.REASSIGNMENT_HOOKS
    if on_request_reassigned not in hooks:
        hooks.append(on_request_reassigned)
    if on_request_ended not in expert_flows.ENDED_HOOKS:
        expert_flows.ENDED_HOOKS.append(on_request_ended)


_register()
