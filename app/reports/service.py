"""SLA reports: how well the one-hour promise is kept.

Every figure is measured against what was stored with each request when it arrived
(``sla_minutes``, ``first_response_due_at``): changing ``INTAKE_SLA_FIRST_RESPONSE_MINUTES``
never rewrites history.

Per request (``outcome``), by the one SLA rule (``app/intake/sla.py::sla_state``):
- ``met``: the first response came at or before the deadline;
- ``breached``: it came after the deadline, or none came and the deadline has passed, or the
  request ended at or after its deadline without one (``open_breached``: breached, still
  without a response, and still open: someone should still answer);
- ``ended``: the request ended (withdrawn, spam, declined, closed, merged) before its deadline
  without a response: no outcome, counted apart, in neither the share nor the times;
- ``open``: no response yet, deadline not passed, not ended (counted, neither met nor breached).
``minutes_to_first_response`` is from arrival to the first response; ``minutes_over`` is how far
past the deadline the response came (with none: how far past it the request ended, or, still
open, the clock is now).

Groups: ``day`` (the UTC date of arrival), ``region`` (the region at submission; ``general``
for the triage pool), ``expert`` (the currently assigned expert; ``unassigned``) and ``channel``
(how the request arrived: ``form`` or ``email``; the channel of the first response is a property
of the answer, not of the demand, and is not used for grouping).

Figures per group: count (= met + breached + ended + open), met, breached, open_breached, open,
ended, ``share_within_hour`` = met / (met + breached) (each request against its own stored
target, which is the hour unless the setting was changed; ended ones are in neither), and the
median and 90th percentile of minutes to first response over the requests
answered (linear interpolation, as PostgreSQL's ``percentile_cont``). The rows are read with one
bounded select of non-personal columns (at most ``MAX_DAYS`` of arrivals) and computed in Python,
so the numbers are the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import ensure_utc, now
from app.intake.sla import SlaState, sla_state
from app.models import GENERAL_POOL, ExpertProfile, IntakeRequest, Region
from app.reports.errors import InvalidRange
from app.roster import service as roster

MAX_DAYS = 366


class Group(enum.StrEnum):
    day = "day"
    region = "region"
    expert = "expert"
    channel = "channel"


@dataclass(frozen=True)
class Outcome:
    state: str  # met | breached | ended | open
    minutes_to_first_response: float | None
    minutes_over: float | None
    open_breached: bool

    @property
    def label(self) -> str:
        if self.state == "met":
            return f"met, {_fmt(self.minutes_to_first_response)} min"
        if self.state == "breached":
            suffix = " (no response yet)" if self.open_breached else ""
            return f"breached by {_fmt(self.minutes_over)} min{suffix}"
        if self.state == "ended":
            return "ended before the deadline, no response"
        return "open"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _minutes(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


def outcome(
    received_at: dt.datetime,
    due_at: dt.datetime,
    responded_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    at: dt.datetime,
) -> Outcome:
    received_at, due_at = ensure_utc(received_at), ensure_utc(due_at)
    responded_at = ensure_utc(responded_at) if responded_at is not None else None
    ended_at = ensure_utc(ended_at) if ended_at is not None else None
    state = sla_state(
        due_at=due_at,
        responded_at=responded_at,
        ended_at=ended_at,
        current=at,
        due_soon=dt.timedelta(0),  # reports do not tell due_soon from awaiting: both open
    )
    if state == SlaState.met and responded_at is not None:
        return Outcome("met", _minutes(responded_at - received_at), 0.0, False)
    if state == SlaState.ended:
        return Outcome("ended", None, None, False)
    if state != SlaState.breached:
        return Outcome("open", None, None, False)
    if responded_at is not None:
        taken = _minutes(responded_at - received_at)
        return Outcome("breached", taken, _minutes(responded_at - due_at), False)
    if ended_at is not None:  # ended at or after the deadline: its clock stopped then
        return Outcome("breached", None, _minutes(ended_at - due_at), False)
    return Outcome("breached", None, _minutes(at - due_at), True)


def request_outcome(req: IntakeRequest, at: dt.datetime | None = None) -> Outcome:
    return outcome(
        req.received_at,
        req.first_response_due_at,
        req.first_responded_at,
        req.ended_at,
        at or now(),
    )


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    value = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    return round(value, 1)


@dataclass
class Row:
    id: uuid.UUID
    reference: str
    received_at: dt.datetime
    region: str
    expert_id: uuid.UUID | None
    channel: str
    outcome: Outcome


@dataclass
class GroupFigures:
    key: str
    label: str
    count: int = 0
    met: int = 0
    breached: int = 0
    open_breached: int = 0
    open: int = 0
    ended: int = 0
    minutes: list[float] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.count += 1
        if o.state == "met":
            self.met += 1
        elif o.state == "breached":
            self.breached += 1
            self.open_breached += o.open_breached
        elif o.state == "ended":
            self.ended += 1
        else:
            self.open += 1
        if o.minutes_to_first_response is not None:
            self.minutes.append(o.minutes_to_first_response)

    @property
    def share_within_hour(self) -> float | None:
        decided = self.met + self.breached
        return round(self.met / decided, 4) if decided else None

    @property
    def median_minutes(self) -> float | None:
        return percentile(self.minutes, 0.5)

    @property
    def p90_minutes(self) -> float | None:
        return percentile(self.minutes, 0.9)


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00 UTC, end + 1 day 00:00 UTC)``: both dates included."""
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
    )


def rows(session: Session, start: dt.datetime, end: dt.datetime) -> Iterator[Row]:
    """Requests that arrived in ``[start, end)``: non-personal columns only."""
    at = now()
    stmt = (
        select(
            IntakeRequest.id,
            IntakeRequest.reference,
            IntakeRequest.received_at,
            IntakeRequest.first_response_due_at,
            IntakeRequest.first_responded_at,
            IntakeRequest.ended_at,
            IntakeRequest.region_code,
            IntakeRequest.assigned_expert_id,
            IntakeRequest.source,
        )
        .where(IntakeRequest.received_at >= start, IntakeRequest.received_at < end)
        .order_by(IntakeRequest.received_at, IntakeRequest.id)
        .execution_options(yield_per=2000)
    )
    for r in session.execute(stmt):
        yield Row(
            id=r.id,
            reference=r.reference,
            received_at=ensure_utc(r.received_at),
            region=r.region_code or GENERAL_POOL,
            expert_id=r.assigned_expert_id,
            channel=r.source.value,
            outcome=outcome(
                r.received_at, r.first_response_due_at, r.first_responded_at, r.ended_at, at
            ),
        )


def _key(row: Row, group: Group) -> str:
    if group == Group.day:
        return row.received_at.date().isoformat()
    if group == Group.region:
        return row.region
    if group == Group.expert:
        return str(row.expert_id) if row.expert_id else "unassigned"
    return row.channel


def _labels(session: Session, group: Group, keys: Iterable[str]) -> dict[str, str]:
    if group == Group.region:
        # People read a region's name, not its code (the general pool keeps its key).
        names = dict(session.execute(select(Region.code, Region.name)).tuples().all())
        return {k: names[k] for k in keys if k in names}
    if group != Group.expert:
        return {}
    ids = [uuid.UUID(k) for k in keys if k != "unassigned"]
    if not ids:
        return {}
    found = session.execute(
        select(ExpertProfile.user_id, ExpertProfile.public_name).where(
            ExpertProfile.user_id.in_(ids)
        )
    ).all()
    return {str(uid): name for uid, name in found}


@dataclass
class Report:
    start: dt.datetime
    end: dt.datetime
    group: Group
    total: GroupFigures
    groups: list[GroupFigures]


def sla_report(session: Session, start: dt.datetime, end: dt.datetime, group: Group) -> Report:
    total = GroupFigures(key="total", label="total")
    by_key: dict[str, GroupFigures] = {}
    for row in rows(session, start, end):
        key = _key(row, group)
        figures = by_key.get(key)
        if figures is None:
            figures = by_key[key] = GroupFigures(key=key, label=key)
        figures.add(row.outcome)
        total.add(row.outcome)
    labels = _labels(session, group, by_key)
    for key, figures in by_key.items():
        figures.label = labels.get(key, key)
    return Report(start, end, group, total, [by_key[k] for k in sorted(by_key)])


def arrivals_by_hour_of_week(session: Session, start: dt.datetime, end: dt.datetime) -> list[int]:
    """168 counts: Monday 00:00-01:00 UTC first."""
    counts: Counter[int] = Counter()
    for row in rows(session, start, end):
        counts[row.received_at.weekday() * 24 + row.received_at.hour] += 1
    return [counts[i] for i in range(168)]


def coverage_by_hour_of_week(session: Session, week_start: dt.datetime) -> list[int]:
    """168 counts of staff on duty (roster) at the middle of each UTC hour of the week that
    starts at ``week_start``; an empty roster: every active staff user, every hour."""
    if roster.roster_is_empty(session):
        return [len(roster.all_staff(session))] * 168
    end = week_start + dt.timedelta(days=7)
    intervals = roster.duty_intervals(session, week_start, end)
    staff_ids = {u.id for u in roster.on_duty_candidates(session)}
    out = []
    for h in range(168):
        mid = week_start + dt.timedelta(hours=h, minutes=30)
        out.append(
            len(
                {
                    iv.user_id
                    for iv in intervals
                    if iv.user_id in staff_ids and iv.start <= mid < iv.end
                }
            )
        )
    return out


def monday_of(value: dt.datetime) -> dt.datetime:
    day = value.astimezone(dt.UTC).date()
    return dt.datetime.combine(day - dt.timedelta(days=day.weekday()), dt.time(), tzinfo=dt.UTC)


def date_range(start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime, dt.datetime]:
    """Whole UTC days ``from``..``to`` (both included); defaults: the last 30 days."""
    today = now().date()
    end = end or today
    start = start or end - dt.timedelta(days=29)
    if start > end:
        raise InvalidRange("from", "must be on or before `to`")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidRange("to", f"a report covers at most {MAX_DAYS} days")
    return day_bounds(start, end)


def report_for_dates(
    session: Session, start: dt.date | None, end: dt.date | None, group: Group
) -> Report:
    lo, hi = date_range(start, end)
    return sla_report(session, lo, hi, group)
