"""Write, claim and deliver outbox rows.

- ``enqueue`` adds a row in the caller's transaction and, after commit, nudges the worker.
- ``claim`` takes due rows (and rows whose lease ran out: a crashed worker's) in one statement:
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the transaction is BEGIN IMMEDIATE, so a
  single UPDATE ... RETURNING cannot race.
- The lease is short (``INTAKE_OUTBOX_LEASE_SECONDS``) and the pump renews it
  (``renew_leases``) while it works through a batch, so a killed worker's rows come back
  seconds after its last renewal while a live worker keeps its own. The group being delivered
  is row-locked (``lock_claimed``) until its commit, so a lease that runs out during a slow
  send never hands that group to another worker: claimers skip locked rows.
- ``deliver`` runs one row's handler in its own transaction; failure schedules a retry with
  exponential backoff and jitter, and the last failure dead-letters the row.

Delivery is at-least-once: a worker killed after sending but before recording it sends again
once the lease expires. Message-IDs derive from the row id so a resend is recognisable.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

import structlog
from sqlalchemy import (
    FromClause,
    Insert,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from app.core.database import after_commit
from app.core.logging import request_id_var
from app.core.settings import get_settings
from app.core.tasks import nudge
from app.core.time import now
from app.models import OutboxMessage, OutboxStatus, Role, User
from app.outbox.errors import NotDeadLettered, OutboxMessageNotFound
from app.outbox.registry import PermanentFailure, RetryLater, get_handler

log = structlog.get_logger(__name__)

PUMP_TASK = "outbox.pump"
#: The e-mail telling staff that a row was dead-lettered (handler: app/outbox/handlers.py).
DEAD_LETTER_ALERT = "outbox.dead_letter_alert"


@dataclass(frozen=True)
class Queued:
    """One row for ``enqueue_many``."""

    kind: str
    params: dict[str, Any]
    due_at: dt.datetime | None = None
    dedup_key: str | None = None


def enqueue(
    session: Session,
    kind: str,
    params: dict[str, Any],
    *,
    due_at: dt.datetime | None = None,
    dedup_key: str | None = None,
) -> OutboxMessage | None:
    """Add an outbound message. Returns None if ``dedup_key`` was already used.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL and SQLite alike): a used
    key costs no extra query, and two transactions racing for one key cannot both insert.
    """
    current = now()
    values = {
        "kind": kind,
        "params": params,
        "dedup_key": dedup_key,
        "status": OutboxStatus.pending,
        "due_at": due_at or current,
        "attempts": 0,
        "correlation_id": request_id_var.get(),
        "created_at": current,
        "updated_at": current,
    }
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(OutboxMessage).values(**values)
    if dedup_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[OutboxMessage.dedup_key])
    row = session.scalars(stmt.returning(OutboxMessage)).first()
    if row is None:
        return None
    if row.due_at <= current + dt.timedelta(seconds=1):
        after_commit(session, lambda: nudge(PUMP_TASK))
    return row


def nudge_after_commit(session: Session) -> None:
    """For a row written by a caller's own statement (due now): nudge the worker after commit,
    as ``enqueue`` does."""
    after_commit(session, lambda: nudge(PUMP_TASK))


_CORRELATION = "outbox_correlation_id"


def insert_from(
    source: FromClause,
    kind: str,
    params: Mapping[str, ColumnElement[Any]],
    *,
    at: ColumnElement[Any],
) -> Insert:
    """``enqueue`` for a caller that writes its rows in one statement of its own (routing's
    offer on PostgreSQL): the INSERT of one pending row of ``kind``, due at ``at``, per row of
    ``source``, its params the JSON object of ``params`` (ids only). Meant as a CTE; run it
    with ``insert_from_values()`` among the parameters, and ``nudge_after_commit`` once a row
    is written. No dedup key: it is for rows about ids the same statement creates."""
    param_pairs = chain.from_iterable((literal(key), value) for key, value in params.items())
    rows = select(
        literal(kind),
        func.json_build_object(*param_pairs),
        literal(OutboxStatus.pending.value),
        at,
        literal(0),
        bindparam(_CORRELATION, type_=String()),
        at,
        at,
    ).select_from(source)
    columns = [
        "kind",
        "params",
        "status",
        "due_at",
        "attempts",
        "correlation_id",
        "created_at",
        "updated_at",
    ]
    return insert(cast(Table, OutboxMessage.__table__)).from_select(columns, rows)


def insert_from_values() -> dict[str, Any]:
    """The parameters an ``insert_from`` statement needs besides the caller's own."""
    return {_CORRELATION: request_id_var.get()}


def enqueue_many(session: Session, rows: Sequence[Queued]) -> int:
    """Add several rows in one ``INSERT ... ON CONFLICT DO NOTHING`` (the hot path of a
    submission writes several); rows whose ``dedup_key`` was already used are skipped.
    Returns how many were written."""
    if not rows:
        return 0
    current = now()
    correlation = request_id_var.get()
    values = [
        {
            "kind": r.kind,
            "params": r.params,
            "dedup_key": r.dedup_key,
            "status": OutboxStatus.pending,
            "due_at": r.due_at or current,
            "attempts": 0,
            "correlation_id": correlation,
            "created_at": current,
            "updated_at": current,
        }
        for r in rows
    ]
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(OutboxMessage).on_conflict_do_nothing(index_elements=[OutboxMessage.dedup_key])
    # The rows as parameters of one statement (SQLAlchemy sends them as one multi-row INSERT):
    # unlike .values([...]), whose SQL changes with the rows, this statement is compiled once.
    written = session.execute(stmt.returning(OutboxMessage.due_at), values).scalars().all()
    if any(due <= current + dt.timedelta(seconds=1) for due in written):
        after_commit(session, lambda: nudge(PUMP_TASK))
    return len(written)


def claim(session: Session, *, worker: str, limit: int) -> list[int]:
    """Claim up to ``limit`` due rows for ``worker``; their ids, oldest due first."""
    return [row.id for row in claim_rows(session, worker=worker, limit=limit)]


def claim_rows(session: Session, *, worker: str, limit: int) -> list[OutboxMessage]:
    """``claim``, returning the rows themselves (one statement), so that delivering them does
    not read each one again in full."""
    settings = get_settings()
    current = now()
    lease = current + dt.timedelta(seconds=settings.outbox_lease_seconds)
    due = ((OutboxMessage.status == OutboxStatus.pending) & (OutboxMessage.due_at <= current)) | (
        (OutboxMessage.status == OutboxStatus.claimed) & (OutboxMessage.lease_until < current)
    )
    candidates = select(OutboxMessage.id).where(due).order_by(OutboxMessage.due_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates.scalar_subquery()))
        .values(
            status=OutboxStatus.claimed,
            lease_until=lease,
            claimed_by=worker,
            attempts=OutboxMessage.attempts + 1,
            updated_at=current,
        )
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted(session.scalars(stmt).all(), key=lambda row: (row.due_at, row.id))


def renew_leases(session: Session, rows: Sequence[OutboxMessage], *, worker: str) -> int:
    """Give ``rows`` that ``worker`` still holds a fresh lease (one statement); returns how
    many. A row locked by someone else (another worker claiming it after its lease ran out,
    an erasure cancelling it) is skipped rather than waited for: renewing never blocks, and
    ``lock_claimed`` drops a row that is no longer ours anyway."""
    if not rows:
        return 0
    current = now()
    mine = select(OutboxMessage.id).where(
        OutboxMessage.id.in_([row.id for row in rows]),
        OutboxMessage.status == OutboxStatus.claimed,
        OutboxMessage.claimed_by == worker,
    )
    if session.get_bind().dialect.name == "postgresql":
        mine = mine.with_for_update(skip_locked=True)
    lease = current + dt.timedelta(seconds=get_settings().outbox_lease_seconds)
    renewed = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(mine.scalar_subquery()))
        .values(lease_until=lease)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    by_id = {row.id: row for row in rows}
    for row_id in renewed:
        set_committed_value(by_id[row_id], "lease_until", lease)
    return len(renewed)


def backoff_seconds(attempts: int) -> float:
    settings = get_settings()
    base = settings.outbox_backoff_base_seconds * float(2 ** max(0, attempts - 1))
    capped = min(base, settings.outbox_backoff_max_seconds)
    jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    return capped * jitter


def deliver(session: Session, message_id: int, *, worker: str) -> OutboxStatus | None:
    """Deliver one claimed row. The caller commits. Returns the new status (None: not ours)."""
    # populate_existing: a claim in this same session was a bulk UPDATE the identity map missed.
    row = session.get(OutboxMessage, message_id, with_for_update=True, populate_existing=True)
    if row is None or row.status != OutboxStatus.claimed or row.claimed_by != worker:
        return None
    return deliver_locked(session, [row])[row.id]


def lock_claimed(
    session: Session, rows: Sequence[OutboxMessage], *, worker: str
) -> list[OutboxMessage]:
    """Lock ``rows`` (one statement) and keep those still claimed by ``worker``: since the
    claim, the lease may have run out and another worker claimed a row, or an erasure
    cancelled it. The locks last until the caller commits."""
    if not rows:
        return []
    mine = set(
        session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.id.in_([row.id for row in rows]),
                OutboxMessage.status == OutboxStatus.claimed,
                OutboxMessage.claimed_by == worker,
            )
            .with_for_update()
        ).all()
    )
    return [row for row in rows if row.id in mine]


def deliver_locked(
    session: Session, rows: Sequence[OutboxMessage], *, budget_seconds: float | None = None
) -> dict[int, OutboxStatus]:
    """Deliver rows that ``lock_claimed`` (or ``deliver``) locked, in order, each handler in
    its own savepoint; stop early once ``budget_seconds`` have passed (the rest stay claimed
    for the next round). The caller commits. Returns the new status of each row handled.

    The sent rows are marked in one statement at the end: per e-mail, the database costs a
    savepoint and its release, no more."""
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    done: dict[int, OutboxStatus] = {}
    sent: list[dict[str, Any]] = []
    for row in rows:
        if deadline is not None and done and time.monotonic() > deadline:
            break
        if _run_handler(session, row):
            at = now()
            sent.append(
                {
                    "id": row.id,
                    "status": OutboxStatus.sent,
                    "sent_at": at,
                    "updated_at": at,
                    "lease_until": None,
                    "last_error": None,
                }
            )
            done[row.id] = OutboxStatus.sent
        else:
            done[row.id] = row.status
    if sent:
        # ORM bulk UPDATE by primary key: one executemany, one round trip with psycopg.
        session.execute(update(OutboxMessage), sent)
        by_id = {row.id: row for row in rows}
        for values in sent:
            # The rows in memory as they are in the database now (no second UPDATE).
            for key, value in values.items():
                set_committed_value(by_id[values["id"]], key, value)
    return done


def _run_handler(session: Session, row: OutboxMessage) -> bool:
    """Run the row's handler in a savepoint. True when it succeeded; on failure the row is
    scheduled for a retry or dead-lettered (and flushed), and False returned."""
    # The worker's lines carry the id of the API request that caused the message.
    bound = structlog.contextvars.bound_contextvars(
        outbox_id=row.id, outbox_kind=row.kind, request_id=row.correlation_id
    )
    with bound:
        try:
            with session.begin_nested():
                get_handler(row.kind)(session, row)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            row.last_error = error
            row.lease_until = None
            permanent = isinstance(exc, PermanentFailure)
            delay = backoff_seconds(row.attempts)
            if isinstance(exc, RetryLater):
                delay = max(delay, exc.retry_after_seconds)
                if not exc.counts_as_attempt:
                    row.attempts -= 1
            if permanent or row.attempts >= get_settings().outbox_max_attempts:
                row.status = OutboxStatus.dead
                log.error("outbox_dead_letter", attempts=row.attempts, error=type(exc).__name__)
                if row.kind != DEAD_LETTER_ALERT:  # an alert's own dead letter: no loop
                    alert_staff(session, row, error=type(exc).__name__)
            else:
                row.status = OutboxStatus.pending
                row.due_at = now() + dt.timedelta(seconds=delay)
                log.warning("outbox_retry", attempts=row.attempts, error=type(exc).__name__)
            session.flush()
            return False
        log.info("outbox_sent", attempts=row.attempts)
        return True


def alert_staff(session: Session, row: OutboxMessage, *, error: str) -> int:
    """Tell every active staff and admin user (until a duty roster exists) that ``row`` was
    dead-lettered: one alert row each, in the same transaction. The alert carries the kind, the
    row id and the error's class only - never personal data. Returns how many were written."""
    recipients = session.scalars(
        select(User.id).where(User.is_active.is_(True), User.role.in_([Role.staff, Role.admin]))
    ).all()
    for user_id in recipients:
        enqueue(
            session,
            DEAD_LETTER_ALERT,
            {"user_id": str(user_id), "outbox_id": row.id, "kind": row.kind, "error": error},
        )
    return len(recipients)


def retry_dead(session: Session, message_id: int) -> OutboxMessage | None:
    """Staff retry of a dead-lettered row: due now, attempts start over."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != OutboxStatus.dead:
        return row
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.due_at = now()
    after_commit(session, lambda: nudge(PUMP_TASK))
    return row


def retry_dead_letter(session: Session, message_id: int) -> OutboxMessage:
    """``retry_dead`` for staff: a missing row or one that is not dead-lettered is an error."""
    row = session.get(OutboxMessage, message_id, with_for_update=True)
    if row is None:
        raise OutboxMessageNotFound("No such outbox message.")
    if row.status != OutboxStatus.dead:
        raise NotDeadLettered(
            f"Only dead-lettered messages can be retried; this one is {row.status.value}."
        )
    retry_dead(session, message_id)
    session.flush()
    return row


def stats(session: Session) -> dict[str, Any]:
    current = now()
    counts = dict(
        session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    )
    oldest_due = session.scalar(
        select(func.min(OutboxMessage.due_at)).where(
            OutboxMessage.status == OutboxStatus.pending, OutboxMessage.due_at <= current
        )
    )
    due = session.scalar(
        select(func.count()).where(
            OutboxMessage.status == OutboxStatus.pending, OutboxMessage.due_at <= current
        )
    )
    return {
        "due": int(due or 0),
        # Every row by state (pending counts rows scheduled for later too), and the oldest
        # due row's moment: the Operations page shows them beside the lag.
        "pending": int(counts.get(OutboxStatus.pending, 0)),
        "claimed": int(counts.get(OutboxStatus.claimed, 0)),
        "sent": int(counts.get(OutboxStatus.sent, 0)),
        "oldest_due_at": oldest_due,
        "in_flight": int(counts.get(OutboxStatus.claimed, 0)),
        "dead": int(counts.get(OutboxStatus.dead, 0)),
        "oldest_due_age_seconds": (
            round((current - oldest_due).total_seconds(), 1) if oldest_due else 0.0
        ),
    }


def dead_letters(session: Session, limit: int = 100) -> Sequence[OutboxMessage]:
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.dead)
        .order_by(OutboxMessage.updated_at.desc())
        .limit(limit)
    ).all()
