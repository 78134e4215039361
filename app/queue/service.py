"""The staff queue: parse the search, run the composable select, one page at a time.

- Views: ``all_open`` (default), ``due_soon``, ``breached``, ``unassigned`` (staff have no
  regions yet, so "unassigned in my regions" is every unassigned open request), ``mine``
  (requests this user took, recorded a contact on, or acted on in the history), ``all`` (ended
  ones too).
- Search ``q``: a reference (normalised like everywhere else) or an exact e-mail address,
  looked up through the keyed hash ``keys.email_lookup`` (never a LIKE on anything personal).
- Pagination: keyset on ``(first_response_due_at, id)`` (or ``(received_at, id)`` descending)
  with an opaque cursor (base64 of JSON holding the sort and the last row's key).
- Counts: per status and per SLA state over every open request, in a separate grouped query
  (a scan of the open rows: ``ix_requests_status_due`` narrows it to the open statuses).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.intake import keys
from app.intake.records import normalise_reference
from app.intake.sla import SlaState
from app.queue import repository
from app.queue.errors import InvalidQueueParameter
from app.queue.repository import QueueFilters, QueueSort, QueueView
from app.queue.schemas import QueueCounts, QueueExpert, QueueItem, QueueOwner, QueuePage

MAX_LIMIT = 100


def encode_cursor(sort: QueueSort, at: dt.datetime, rid: uuid.UUID) -> str:
    raw = json.dumps({"s": sort.value, "k": [at.isoformat(), str(rid)]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: QueueSort) -> tuple[dt.datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = dt.datetime.fromisoformat(data["k"][0])
        rid = uuid.UUID(data["k"][1])
        given = QueueSort(data["s"])
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        raise InvalidQueueParameter("cursor", "is not a cursor this queue gave out") from None
    if given != sort:
        raise InvalidQueueParameter(
            "cursor", f"belongs to sort '{given.value}', not '{sort.value}'"
        )
    if at.tzinfo is None:
        raise InvalidQueueParameter("cursor", "is not a cursor this queue gave out")
    return at, rid


def apply_search(session: Session, filters: QueueFilters, q: str | None) -> None:
    """``q``: a reference or an exact e-mail address (any case)."""
    if q is None or not q.strip():
        return
    text = q.strip()
    if "@" in text:
        filters.email_lookup = keys.email_lookup(session, text)
        return
    ref = normalise_reference(text)
    if ref is None:
        raise InvalidQueueParameter("q", "is neither a reference nor an e-mail address")
    filters.reference = ref


def _item(row: Any, current: dt.datetime) -> QueueItem:
    minutes_left: int | None = None
    if row.first_responded_at is None and row.ended_at is None:
        minutes_left = int((row.first_response_due_at - current).total_seconds() // 60)
    expert = (
        QueueExpert(id=row.assigned_expert_id, public_name=row.expert_public_name)
        if row.assigned_expert_id is not None
        else None
    )
    return QueueItem(
        reference=row.reference,
        status=row.status,
        sla_state=SlaState(row.sla_state),
        minutes_left=minutes_left,
        country=row.country_of_origin,
        region=row.region_code,
        wants=list(row.wants or []),
        source=row.source,
        requester_type=row.requester_type,
        language=row.language,
        expert=expert,
        owner=QueueOwner(id=row.owner_id, name=row.owner_name)
        if row.owner_id is not None
        else None,
        received_at=row.received_at,
        first_response_due_at=row.first_response_due_at,
        first_responded_at=row.first_responded_at,
        ended_at=row.ended_at,
    )


def counts(session: Session, *, current: dt.datetime | None = None) -> QueueCounts:
    by_status, by_sla = repository.open_counts(
        session, current=current or now(), due_soon=_due_soon()
    )
    return QueueCounts(by_status=by_status, by_sla_state=by_sla, total_open=sum(by_status.values()))


def _due_soon() -> dt.timedelta:
    return dt.timedelta(minutes=get_settings().sla_due_soon_minutes)


def queue_page(
    session: Session,
    *,
    user_id: uuid.UUID,
    filters: QueueFilters,
    view: QueueView = QueueView.all_open,
    sort: QueueSort = QueueSort.due,
    cursor: str | None = None,
    limit: int = 50,
    with_counts: bool = True,
) -> QueuePage:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueueParameter("limit", f"must be between 1 and {MAX_LIMIT}")
    current = now()
    due_soon = _due_soon()
    after = decode_cursor(cursor, sort) if cursor else None
    clauses = repository.where_clauses(
        filters, view=view, user_id=user_id, current=current, due_soon=due_soon
    )
    rows = session.execute(
        repository.page_select(
            clauses, sort=sort, after=after, limit=limit, current=current, due_soon=due_soon
        )
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor: str | None = None
    if more and rows:
        last = rows[-1]
        key = last.first_response_due_at if sort == QueueSort.due else last.received_at
        next_cursor = encode_cursor(sort, key, last.id)
    return QueuePage(
        view=view,
        sort=sort,
        items=[_item(r, current) for r in rows],
        next_cursor=next_cursor,
        counts=counts(session, current=current) if with_counts else None,
    )
