"""Who is on duty, read from the roster (docs/domain.md, "Who is on duty").

A weekly shift is a local weekday and wall-clock start and end in the person's zone; its
occurrences are computed in that zone and converted to UTC (so a shift keeps its wall-clock hours
across a daylight-saving change; a start that does not exist on the day the clocks go forward is
read with the offset before the change, i.e. an hour later on the wall clock). An extra override
adds a UTC interval at its level; a cancel override removes the person from duty for its
interval, whatever shift they had. Intervals are half-open ``[start, end)``.

An EMPTY roster (no weekly shift and no extra override at all) keeps the old rule: every active
staff user is on duty and every active admin is a supervisor. Once the roster has anything in
it, only the roster counts, with these fallbacks so that a reminder or escalation never goes to
nobody: no staff on duty -> the duty lead -> the supervisors; no supervisor on duty -> every
active admin.

Only active users count. "Staff" here means a user whose role is staff or admin.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.core.time import now
from app.models import (
    DutyLevel,
    ExpertProfile,
    ExpertRegion,
    OverrideKind,
    Region,
    Role,
    RosterOverride,
    RosterShift,
    User,
)

STAFF_ROLES = (Role.staff, Role.admin)
LEVEL_RANK = {DutyLevel.member: 0, DutyLevel.lead: 1, DutyLevel.supervisor: 2}


@dataclass(frozen=True)
class Interval:
    user_id: uuid.UUID
    start: dt.datetime
    end: dt.datetime
    level: DutyLevel


@dataclass(frozen=True)
class Gap:
    """``kind`` "staff": nobody of staff is on duty; "region": no expert of ``region_code``
    (nor its lead) is on duty."""

    kind: str
    start: dt.datetime
    end: dt.datetime
    region_code: str | None = None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


# Occurrences ---------------------------------------------------------------------------------


def shift_occurrences(
    shift: RosterShift, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The shift's UTC intervals that overlap ``[start, end)``."""
    tz = zone(shift.timezone)
    first = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date()
    out: list[tuple[dt.datetime, dt.datetime]] = []
    day = first + dt.timedelta(days=(shift.weekday - first.weekday()) % 7)
    while day <= last:
        s_local = dt.datetime.combine(day, shift.starts_local, tzinfo=tz)
        end_day = day if shift.ends_local > shift.starts_local else day + dt.timedelta(days=1)
        e_local = dt.datetime.combine(end_day, shift.ends_local, tzinfo=tz)
        s, e = s_local.astimezone(dt.UTC), e_local.astimezone(dt.UTC)
        if e > s and s < end and e > start:
            out.append((s, e))
        day += dt.timedelta(days=7)
    return out


def _subtract(
    pieces: list[tuple[dt.datetime, dt.datetime]], cut: tuple[dt.datetime, dt.datetime]
) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    for s, e in pieces:
        if cut[1] <= s or cut[0] >= e:
            out.append((s, e))
            continue
        if s < cut[0]:
            out.append((s, cut[0]))
        if cut[1] < e:
            out.append((cut[1], e))
    return out


def roster_is_empty(session: Session) -> bool:
    has_shift = session.scalar(select(exists().where(RosterShift.id.is_not(None))))
    has_extra = session.scalar(select(exists().where(RosterOverride.kind == OverrideKind.extra)))
    return not (has_shift or has_extra)


def duty_intervals(session: Session, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    """Every on-duty interval of an active user overlapping ``[start, end)``, clipped to it,
    after cancellations."""
    active = set(session.scalars(select(User.id).where(User.is_active.is_(True))).all())
    raw: list[Interval] = []
    for shift in session.scalars(select(RosterShift)).all():
        if shift.user_id not in active:
            continue
        for s, e in shift_occurrences(shift, start, end):
            raw.append(Interval(shift.user_id, s, e, shift.level))
    overrides = session.scalars(
        select(RosterOverride).where(RosterOverride.starts_at < end, RosterOverride.ends_at > start)
    ).all()
    cancels: dict[uuid.UUID, list[tuple[dt.datetime, dt.datetime]]] = {}
    for o in overrides:
        if o.kind == OverrideKind.extra:
            if o.user_id in active:
                raw.append(Interval(o.user_id, o.starts_at, o.ends_at, o.level))
        else:
            cancels.setdefault(o.user_id, []).append((o.starts_at, o.ends_at))
    out: list[Interval] = []
    for iv in raw:
        pieces = [(max(iv.start, start), min(iv.end, end))]
        for cut in cancels.get(iv.user_id, []):
            pieces = _subtract(pieces, cut)
        out.extend(Interval(iv.user_id, s, e, iv.level) for s, e in pieces if e > s)
    return out


def _levels_at(session: Session, at: dt.datetime) -> dict[uuid.UUID, DutyLevel]:
    """On-duty users at ``at`` with their highest level."""
    found: dict[uuid.UUID, DutyLevel] = {}
    for iv in duty_intervals(session, at, at + dt.timedelta(microseconds=1)):
        old = found.get(iv.user_id)
        if old is None or LEVEL_RANK[iv.level] > LEVEL_RANK[old]:
            found[iv.user_id] = iv.level
    return found


def _users(session: Session, ids: Iterable[uuid.UUID]) -> list[User]:
    wanted = list(ids)
    if not wanted:
        return []
    return list(
        session.scalars(
            select(User).where(User.id.in_(wanted), User.is_active.is_(True)).order_by(User.id)
        ).all()
    )


def region_members(session: Session, region_code: str) -> set[uuid.UUID]:
    """The region's active experts and its lead expert."""
    return members_by_region(session, only=region_code).get(region_code, set())


def members_by_region(session: Session, *, only: str | None = None) -> dict[str, set[uuid.UUID]]:
    """``region_members`` of every region (or of ``only``), keyed by region code in the
    database's order of codes, in two statements whatever the number of regions (every admin
    page asks it for the checklist)."""
    regions = select(Region.code, Region.lead_expert_id).order_by(Region.code)
    experts = (
        select(ExpertRegion.region_code, ExpertRegion.expert_id)
        .join(ExpertProfile, ExpertProfile.user_id == ExpertRegion.expert_id)
        .where(ExpertProfile.is_active.is_(True))
    )
    if only is not None:
        regions = regions.where(Region.code == only)
        experts = experts.where(ExpertRegion.region_code == only)
    members: dict[str, set[uuid.UUID]] = {
        code: {lead} if lead is not None else set() for code, lead in session.execute(regions)
    }
    for code, expert_id in session.execute(experts):
        members.setdefault(code, set()).add(expert_id)
    return members


# The questions the rest of the service asks ------------------------------------------------


def on_duty(
    session: Session,
    at: dt.datetime,
    *,
    role: Role | Sequence[Role] | None = None,
    region: str | None = None,
    level: DutyLevel | None = None,
) -> list[User]:
    """Who the roster has on duty at ``at`` (roster only: no fallback). ``role`` filters by
    the account's role(s); ``region`` keeps the region's experts and its lead expert;
    ``level`` keeps those whose highest level on duty is that one."""
    levels = _levels_at(session, at)
    if level is not None:
        levels = {uid: lvl for uid, lvl in levels.items() if lvl == level}
    users = _users(session, levels)
    if role is not None:
        roles = {role} if isinstance(role, Role) else set(role)
        users = [u for u in users if u.role in roles]
    if region is not None:
        members = region_members(session, region)
        users = [u for u in users if u.id in members]
    return users


def duty_lead(session: Session, at: dt.datetime) -> User | None:
    """The person on a duty-lead shift at ``at`` (several: the first by id); None when nobody
    is, or the roster is empty."""
    levels = _levels_at(session, at)
    leads = [uid for uid, lvl in levels.items() if lvl == DutyLevel.lead]
    users = _users(session, leads)
    return users[0] if users else None


def all_admins(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.role == Role.admin, User.is_active.is_(True)).order_by(User.id)
        ).all()
    )


def all_staff(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.role == Role.staff, User.is_active.is_(True)).order_by(User.id)
        ).all()
    )


def on_duty_candidates(session: Session) -> list[User]:
    """Every active staff or admin account (who can be "staff on duty")."""
    return list(
        session.scalars(
            select(User)
            .where(User.role.in_(STAFF_ROLES), User.is_active.is_(True))
            .order_by(User.id)
        ).all()
    )


def supervisors(session: Session, at: dt.datetime | None = None) -> list[User]:
    """People on a supervisor shift at ``at``; with an empty roster, or nobody on that level,
    every active admin."""
    at = at or now()
    if roster_is_empty(session):
        return all_admins(session)
    levels = _levels_at(session, at)
    found = _users(session, [u for u, lvl in levels.items() if lvl == DutyLevel.supervisor])
    return found or all_admins(session)


def _supervisor_ids(session: Session, at: dt.datetime) -> set[uuid.UUID]:
    return {uid for uid, lvl in _levels_at(session, at).items() if lvl == DutyLevel.supervisor}


def on_duty_staff(session: Session, at: dt.datetime | None = None) -> list[User]:
    """The "on-duty staff" of reminders and triage alerts: with an
    empty roster every active staff user; otherwise staff and admins on duty at ``at`` as
    members or duty lead (supervisors have their own level); nobody -> the duty lead -> the
    supervisors."""
    at = at or now()
    if roster_is_empty(session):
        return all_staff(session)
    sups = _supervisor_ids(session, at)
    found = [u for u in on_duty(session, at, role=STAFF_ROLES) if u.id not in sups]
    if found:
        return found
    lead = duty_lead(session, at)
    return [lead] if lead is not None else supervisors(session, at)


def region_covered(session: Session, region_code: str, at: dt.datetime) -> bool:
    """True when an expert of the region, or its lead, is on duty at ``at``."""
    return bool(on_duty(session, at, region=region_code))


# Gaps ----------------------------------------------------------------------------------------


def _uncovered(
    covered: list[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    pieces = [(start, end)]
    for cut in covered:
        pieces = _subtract(pieces, cut)
    return sorted(pieces)


def gaps(session: Session, start: dt.datetime, end: dt.datetime) -> list[Gap]:
    """Periods in ``[start, end)`` with no staff on duty, and per region periods with neither
    an expert of the region nor its lead on duty. Nothing while the roster is empty (the old
    rule applies then: every active staff user is on duty)."""
    if roster_is_empty(session):
        return []
    intervals = duty_intervals(session, start, end)
    roles = dict(
        session.execute(
            select(User.id, User.role).where(User.id.in_({iv.user_id for iv in intervals}))
        ).all()
    )
    out: list[Gap] = []
    staff = [(iv.start, iv.end) for iv in intervals if roles.get(iv.user_id) in STAFF_ROLES]
    out.extend(Gap("staff", s, e) for s, e in _uncovered(staff, start, end))
    for code, members in members_by_region(session).items():
        covered = [(iv.start, iv.end) for iv in intervals if iv.user_id in members]
        out.extend(Gap("region", s, e, code) for s, e in _uncovered(covered, start, end))
    return out


def upcoming_gaps(session: Session, days: int = 7) -> list[Gap]:
    start = now()
    return gaps(session, start, start + dt.timedelta(days=days))


# The week view -------------------------------------------------------------------------------
# Pure: the admin console's week grid (app/web/admin_roster.py) lays the roster out on the 7
# local days of the viewer's zone. Every instant comes from zoneinfo on the actual dates, so a
# week with a daylight-saving change has a 23- or 25-hour day and each shift keeps the
# wall-clock hours of its own zone.


@dataclass(frozen=True)
class WeekEntry:
    """One piece of duty on one local day of the viewer's week.

    ``kind``: "shift" (weekly), "extra" or "cancel" (one-off changes); ``source_id`` is the
    shift's or override's id. ``start``/``end`` are the piece in the viewer's zone (an end at the
    next local midnight when the duty runs on into the next day); ``from_previous_day`` and
    ``into_next_day`` say it was cut there. ``own_start``/``own_end`` are the whole occurrence in
    ``own_zone`` (the shift's zone; for an override the person's). ``off`` tells how much of a
    shift's piece a cancellation of the same person covers: "", "part" or "all".
    """

    kind: str
    source_id: int
    user_id: uuid.UUID
    level: DutyLevel
    day: dt.date
    start: dt.datetime
    end: dt.datetime
    from_previous_day: bool
    into_next_day: bool
    own_zone: str
    own_start: dt.datetime
    own_end: dt.datetime
    note: str | None = None
    off: str = ""


def week_monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def week_days(monday: dt.date, viewer_zone: str) -> list[tuple[dt.date, dt.datetime, dt.datetime]]:
    """The 7 local days from ``monday`` in ``viewer_zone``, each with its UTC ``[start, end)``
    (consecutive: a day's end is the next day's start)."""
    tz = zone(viewer_zone)
    edges = [
        dt.datetime.combine(monday + dt.timedelta(days=i), dt.time(), tzinfo=tz).astimezone(dt.UTC)
        for i in range(8)
    ]
    return [(monday + dt.timedelta(days=i), edges[i], edges[i + 1]) for i in range(7)]


def _pieces(
    kind: str,
    source_id: int,
    user_id: uuid.UUID,
    level: DutyLevel,
    span: tuple[dt.datetime, dt.datetime],
    days: list[tuple[dt.date, dt.datetime, dt.datetime]],
    viewer: ZoneInfo,
    own_zone: str,
    note: str | None,
) -> list[WeekEntry]:
    s, e = span
    own = zone(own_zone)
    out = []
    for day, d_start, d_end in days:
        lo, hi = max(s, d_start), min(e, d_end)
        if lo >= hi:
            continue
        out.append(
            WeekEntry(
                kind=kind,
                source_id=source_id,
                user_id=user_id,
                level=level,
                day=day,
                start=lo.astimezone(viewer),
                end=hi.astimezone(viewer),
                from_previous_day=s < d_start,
                into_next_day=e > d_end,
                own_zone=own_zone,
                own_start=s.astimezone(own),
                own_end=e.astimezone(own),
                note=note,
            )
        )
    return out


def _covered_by(entry: WeekEntry, cancels: Sequence[tuple[dt.datetime, dt.datetime]]) -> str:
    # In UTC: aware times sharing one zone compare by wall clock (wrong in a repeated hour).
    whole = (entry.start.astimezone(dt.UTC), entry.end.astimezone(dt.UTC))
    pieces = [whole]
    for cut in cancels:
        pieces = _subtract(pieces, cut)
    if not pieces:
        return "all"
    return "part" if pieces != [whole] else ""


def week_entries(
    shifts: Iterable[RosterShift],
    overrides: Iterable[RosterOverride],
    monday: dt.date,
    viewer_zone: str,
    person_zones: dict[uuid.UUID, str] | None = None,
) -> list[WeekEntry]:
    """Every shift and one-off change of the week from ``monday`` (a local date in
    ``viewer_zone``), cut at the viewer's local midnights, sorted by person, day and start.
    ``person_zones`` names each person's zone for their overrides (default UTC)."""
    days = week_days(monday, viewer_zone)
    start, end = days[0][1], days[-1][2]
    viewer = zone(viewer_zone)
    zones = person_zones or {}
    out: list[WeekEntry] = []
    for shift in shifts:
        for span in shift_occurrences(shift, start, end):
            out.extend(
                _pieces(
                    "shift",
                    shift.id,
                    shift.user_id,
                    shift.level,
                    span,
                    days,
                    viewer,
                    shift.timezone,
                    shift.note,
                )
            )
    cancels: dict[uuid.UUID, list[tuple[dt.datetime, dt.datetime]]] = {}
    for o in overrides:
        span = (o.starts_at.astimezone(dt.UTC), o.ends_at.astimezone(dt.UTC))
        if o.kind == OverrideKind.cancel:
            cancels.setdefault(o.user_id, []).append(span)
        own = zones.get(o.user_id, "UTC")
        out.extend(_pieces(o.kind.value, o.id, o.user_id, o.level, span, days, viewer, own, o.note))
    marked = [
        replace(e, off=_covered_by(e, cancels.get(e.user_id, [])))
        if e.kind != OverrideKind.cancel.value
        else e
        for e in out
    ]
    return sorted(marked, key=lambda e: (str(e.user_id), e.day, e.start, e.kind, e.source_id))
