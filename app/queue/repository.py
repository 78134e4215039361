"""The queue's composable select: filters, views, keyset pagination and the header counts.

Everything here reads non-personal columns only. The SLA state is computed in SQL with
``app.intake.sla.sla_state_sql`` (the same rule as ``sla_state``), so a filter on it needs no
stored status. Keyset pagination orders by ``(first_response_due_at, id)`` (or
``(received_at DESC, id DESC)``): ``id`` breaks ties, so every row comes exactly once.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.intake.sla import OPEN_STATES, SlaState, sla_state_sql
from app.intake.status import FINAL
from app.models import (
    ExpertProfile,
    IntakeRequest,
    RequestContact,
    RequesterType,
    RequestHistory,
    RequestOwner,
    RequestSource,
    RequestStatus,
    User,
)

R = IntakeRequest


class QueueView(enum.StrEnum):
    all_open = "all_open"  # every request not yet ended (the default)
    due_soon = "due_soon"  # open, no response yet, less than the due-soon margin left
    breached = "breached"  # open and breached (overdue, or answered late)
    unassigned = "unassigned"  # open, no expert (staff have no regions yet: all regions)
    mine = "mine"  # open, and this user took it, recorded a contact or acted on it (history)
    all = "all"  # also ended ones (SLA state ``ended``, or ``breached`` when they ended late)


class QueueSort(enum.StrEnum):
    due = "due"  # first_response_due_at, id (ascending): the default
    received_desc = "received_desc"  # received_at, id (descending)


@dataclass
class QueueFilters:
    statuses: list[RequestStatus] = field(default_factory=list)
    sla_states: list[SlaState] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    expert_id: uuid.UUID | None = None
    unassigned: bool = False
    assigned: bool = False  # any expert (the staff queue page's "Assigned")
    wants: list[str] = field(default_factory=list)
    sources: list[RequestSource] = field(default_factory=list)
    requester_types: list[RequesterType] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    due_within_minutes: int | None = None
    received_from: dt.datetime | None = None
    received_to: dt.datetime | None = None
    reference: str | None = None
    email_lookup: str | None = None


def sla_column(current: dt.datetime, due_soon: dt.timedelta) -> ColumnElement[str]:
    return sla_state_sql(
        R.first_response_due_at,
        R.first_responded_at,
        R.ended_at,
        current=current,
        due_soon=due_soon,
    )


#: Open statuses listed (not ``NOT IN FINAL``): an ``IN`` list lets PostgreSQL use the leading
#: ``status`` column of ``ix_requests_status_due`` instead of scanning every request.
OPEN_STATUSES: list[RequestStatus] = [s for s in RequestStatus if s not in FINAL]


def open_clause() -> ColumnElement[bool]:
    """Not ended, and not a duplicate merged into another request (that one is worked). The
    same requests as ``ended_at IS NULL`` (set by exactly these moves: tests/sla/test_sla_ended.py),
    written on the indexed columns."""
    return and_(R.status.in_(OPEN_STATUSES), R.merged_into_id.is_(None))


def _wants_clause(want: str) -> ColumnElement[bool]:
    # ``wants`` is a JSON list of fixed tokens (never personal): match the quoted token in its
    # text on both databases (PostgreSQL json keeps the text as written; SQLite stores text).
    return cast(R.wants, String).like(f'%"{want}"%')


def _mine_clause(user_id: uuid.UUID) -> ColumnElement[bool]:
    contacted = exists().where(
        RequestContact.request_id == R.id, RequestContact.recorded_by == user_id
    )
    acted = exists().where(
        RequestHistory.request_id == R.id, RequestHistory.actor == f"user:{user_id}"
    )
    # Its own alias: the page's select joins request_owners too (the owner's name), and an
    # EXISTS over the same entity would be correlated to that join and select from nothing.
    owner = aliased(RequestOwner)
    taken = exists().where(owner.request_id == R.id, owner.user_id == user_id)
    return or_(taken, contacted, acted)


def where_clauses(
    f: QueueFilters,
    *,
    view: QueueView,
    user_id: uuid.UUID,
    current: dt.datetime,
    due_soon: dt.timedelta,
) -> list[ColumnElement[bool]]:
    state = sla_column(current, due_soon)
    out: list[ColumnElement[bool]] = []
    if view != QueueView.all:
        out.append(open_clause())
    if view == QueueView.due_soon:
        out.append(state == SlaState.due_soon.value)
    elif view == QueueView.breached:
        out.append(state == SlaState.breached.value)
    elif view == QueueView.unassigned:
        out.append(R.assigned_expert_id.is_(None))
    elif view == QueueView.mine:
        out.append(_mine_clause(user_id))
    if f.statuses:
        out.append(R.status.in_(f.statuses))
    if f.sla_states:
        out.append(state.in_([s.value for s in f.sla_states]))
    if f.regions:
        out.append(R.region_code.in_(f.regions))
    if f.countries:
        out.append(R.country_of_origin.in_(f.countries))
    if f.expert_id is not None:
        out.append(R.assigned_expert_id == f.expert_id)
    if f.unassigned:
        out.append(R.assigned_expert_id.is_(None))
    if f.assigned:
        out.append(R.assigned_expert_id.is_not(None))
    if f.wants:
        out.append(or_(*[_wants_clause(w) for w in f.wants]))
    if f.sources:
        out.append(R.source.in_(f.sources))
    if f.requester_types:
        out.append(R.requester_type.in_(f.requester_types))
    if f.languages:
        out.append(R.language.in_(f.languages))
    if f.due_within_minutes is not None:
        # Still waiting for the first response and due by then (overdue ones included); an
        # ended request waits for nothing.
        out.append(R.first_responded_at.is_(None))
        out.append(R.ended_at.is_(None))
        out.append(R.first_response_due_at <= current + dt.timedelta(minutes=f.due_within_minutes))
    if f.received_from is not None:
        out.append(R.received_at >= f.received_from)
    if f.received_to is not None:
        out.append(R.received_at < f.received_to)
    if f.reference is not None:
        out.append(R.reference == f.reference)
    if f.email_lookup is not None:
        out.append(R.email_lookup == f.email_lookup)
    return out


def _after(sort: QueueSort, key: tuple[dt.datetime, uuid.UUID]) -> ColumnElement[bool]:
    at, rid = key
    if sort == QueueSort.due:
        return or_(R.first_response_due_at > at, and_(R.first_response_due_at == at, R.id > rid))
    return or_(R.received_at < at, and_(R.received_at == at, R.id < rid))


def page_select(
    clauses: list[ColumnElement[bool]],
    *,
    sort: QueueSort,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
    current: dt.datetime,
    due_soon: dt.timedelta,
) -> Select[Any]:
    """One page (``limit + 1`` rows, to know whether another follows)."""
    stmt = (
        select(
            R.id,
            R.reference,
            R.status,
            sla_column(current, due_soon).label("sla_state"),
            R.first_response_due_at,
            R.first_responded_at,
            R.ended_at,
            R.received_at,
            R.country_of_origin,
            R.region_code,
            R.wants,
            R.source,
            R.requester_type,
            R.language,
            R.assigned_expert_id,
            ExpertProfile.public_name.label("expert_public_name"),
            RequestOwner.user_id.label("owner_id"),
            User.display_name.label("owner_name"),
        )
        .outerjoin(ExpertProfile, ExpertProfile.user_id == R.assigned_expert_id)
        .outerjoin(RequestOwner, RequestOwner.request_id == R.id)
        .outerjoin(User, User.id == RequestOwner.user_id)
        .where(*clauses)
    )
    if after is not None:
        stmt = stmt.where(_after(sort, after))
    if sort == QueueSort.due:
        stmt = stmt.order_by(R.first_response_due_at, R.id)
    else:
        stmt = stmt.order_by(R.received_at.desc(), R.id.desc())
    limited: Select[Any] = stmt.limit(limit + 1)  # type: ignore[assignment]
    return limited


def open_counts(
    session: Session, *, current: dt.datetime, due_soon: dt.timedelta
) -> tuple[dict[str, int], dict[str, int]]:
    """Open requests per status and per SLA state: one grouped query over the open rows."""
    state = sla_column(current, due_soon).label("sla_state")
    rows = session.execute(
        select(R.status, state, func.count()).where(open_clause()).group_by(R.status, state)
    ).all()
    by_status: dict[str, int] = {}
    by_sla: dict[str, int] = {s.value: 0 for s in OPEN_STATES}
    for status, sla, n in rows:
        key = status.value if isinstance(status, RequestStatus) else str(status)
        by_status[key] = by_status.get(key, 0) + int(n)
        by_sla[str(sla)] = by_sla.get(str(sla), 0) + int(n)
    return by_status, by_sla
