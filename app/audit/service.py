"""The audit trail: append a chained row, verify the chain, search.

``record`` is the only writer. It takes a lock so appends are serial and the chain is linear
(PostgreSQL: ``pg_advisory_xact_lock``, held to the end of the caller's transaction; SQLite:
every transaction is ``BEGIN IMMEDIATE`` already, see ``app.core.database``). It flushes in the
caller's session: a write and its audit row commit or roll back together. A refusal, whose
transaction rolls back, is recorded by ``AuditMiddleware`` in its own short transaction.

Rows hold ids, references, route templates and status codes: never names, contact details or
tokens. Where the caller's address and user agent come from: ``client_context`` (set for every
HTTP request by ``AuditMiddleware``); outside a request they are empty.
"""

from __future__ import annotations

import contextvars
import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from app.core.time import UTC, now
from app.models import AuditEvent, User

log = structlog.get_logger(__name__)

GENESIS = "0" * 64
# Any 64-bit number of our own: the advisory lock that serialises appends on PostgreSQL.
ADVISORY_LOCK_ID = 0x4155444954  # "AUDIT"
OUTCOMES = ("ok", "denied", "not_found", "error")


@dataclass
class ClientContext:
    """Who is calling, for the request being served: the address and user agent (set by the
    middleware) and the actor once authentication succeeded (``note_actor``). Mutable on
    purpose: endpoints run in a thread pool with a copy of the context, and the middleware
    reads what they noted on this same object."""

    address: str | None = None
    user_agent: str | None = None
    actor: str | None = None
    actor_role: str | None = None


client_context: contextvars.ContextVar[ClientContext | None] = contextvars.ContextVar(
    "audit_client", default=None
)


def note_actor(actor: str, actor_role: str) -> None:
    """Called where authentication succeeds (a user's session, a requester's link), so the
    middleware knows who made the request without reading any token itself."""
    ctx = client_context.get()
    if ctx is not None:
        ctx.actor, ctx.actor_role = actor, actor_role


def outcome_for(status_code: int) -> str:
    if status_code < 400:
        return "ok"
    if status_code in (401, 403, 429):
        return "denied"
    if status_code == 404:
        return "not_found"
    return "error"


def user_actor(user: User) -> tuple[str, str]:
    return str(user.id), user.role.value


def _iso(at: dt.datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: AuditEvent) -> bytes:
    """The bytes hashed for a row: every column but ``row_hash``, in a fixed form."""
    fields = {
        "seq": row.seq,
        "at": _iso(row.at),
        "actor": row.actor,
        "actor_role": row.actor_role,
        "address": row.address,
        "user_agent": row.user_agent,
        "action": row.action,
        "target": row.target,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "details": row.details or {},
        "prev_hash": row.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def compute_hash(row: AuditEvent) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def _lock(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_ID})


def _clip(value: str | None, length: int) -> str | None:
    if value is None:
        return None
    value = "".join(ch if ch.isprintable() else "?" for ch in value)
    return value[:length] or None


def record(
    session: Session,
    *,
    action: str,
    actor: str,
    actor_role: str | None = None,
    target: str | None = None,
    outcome: str = "ok",
    status_code: int | None = None,
    details: dict[str, Any] | None = None,
    address: str | None = None,
    user_agent: str | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Append one row in the caller's transaction (flushed, not committed)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    ctx = client_context.get() or ClientContext()
    _lock(session)
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    row = AuditEvent(
        seq=(last.seq + 1) if last else 1,
        at=(at or now()).astimezone(UTC),
        actor=_clip(actor, 64) or "anonymous",
        actor_role=_clip(actor_role, 16),
        address=_clip(address if address is not None else ctx.address, 64),
        user_agent=_clip(user_agent if user_agent is not None else ctx.user_agent, 255),
        action=_clip(action, 160) or "-",
        target=_clip(target, 160),
        outcome=outcome,
        status_code=status_code,
        details=details or {},
        prev_hash=last.row_hash if last else GENESIS,
    )
    # Microseconds survive both databases; nothing finer is hashed.
    row.row_hash = compute_hash(row)
    session.add(row)
    session.flush()
    return row


# Verification -----------------------------------------------------------------------------


@dataclass
class VerifyReport:
    rows: int
    head_seq: int | None
    head_hash: str
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


def _stream(session: Session, batch: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        after = rows[-1].seq
        for row in rows:
            yield row
            session.expunge(row)


def verify(session: Session, *, batch: int = 1000) -> VerifyReport:
    """Walk the chain from the first row. The first row whose hash does not match its content,
    whose ``prev_hash`` is not the previous row's hash, or whose ``seq`` is not the previous
    plus one, is reported: an altered, removed or inserted row."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    last_seq: int | None = None
    for row in _stream(session, batch):
        if row.seq != expected_seq:
            problem = f"sequence jumps from {expected_seq - 1} to {row.seq} (rows removed?)"
            return VerifyReport(count, last_seq, expected_prev, row.seq, problem)
        if row.prev_hash != expected_prev:
            problem = "prev_hash does not match the previous row (row removed or inserted)"
            return VerifyReport(count, last_seq, expected_prev, row.seq, problem)
        if compute_hash(row) != row.row_hash:
            problem = "row_hash does not match the row's content (row altered)"
            return VerifyReport(count, last_seq, expected_prev, row.seq, problem)
        expected_prev = row.row_hash
        expected_seq += 1
        last_seq = row.seq
        count += 1
    return VerifyReport(count, last_seq, expected_prev)


# Search -------------------------------------------------------------------------------------


def search_query(
    *,
    actor: str | None = None,
    reference: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_seq: int | None = None,
) -> Select[AuditEvent]:
    """Newest first; keyset on ``seq`` (``before_seq``: the cursor of the previous page)."""
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if reference:
        stmt = stmt.where(AuditEvent.target == reference.strip().upper())
    if action:
        stmt = stmt.where(AuditEvent.action.contains(action, autoescape=True))
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    if before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < before_seq)
    return stmt.order_by(AuditEvent.seq.desc())


def resolve_actor(session: Session, actor: str | None) -> str | None:
    """An e-mail address names a user: search by their id (an unknown address finds
    nothing)."""
    if actor is None or "@" not in actor:
        return actor
    user_id = session.scalar(select(User.id).where(User.email == actor.strip().lower()))
    return str(user_id) if user_id is not None else "(no such user)"


def search(session: Session, *, limit: int, **filters: Any) -> Sequence[AuditEvent]:
    filters["actor"] = resolve_actor(session, filters.get("actor"))
    return session.scalars(search_query(**filters).limit(limit)).all()


CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_role",
    "address",
    "user_agent",
    "action",
    "target",
    "outcome",
    "status_code",
    "details",
    "prev_hash",
    "row_hash",
)


def csv_row(row: AuditEvent) -> list[str]:
    values: list[Any] = [
        row.seq,
        _iso(row.at),
        row.actor,
        row.actor_role or "",
        row.address or "",
        row.user_agent or "",
        row.action,
        row.target or "",
        row.outcome,
        "" if row.status_code is None else row.status_code,
        json.dumps(row.details or {}, sort_keys=True),
        row.prev_hash,
        row.row_hash,
    ]
    out = []
    for v in values:
        s = str(v)
        # A cell starting with = + - @ would run as a formula in a spreadsheet.
        out.append("'" + s if s[:1] in ("=", "+", "-", "@") else s)
    return out


#: The CSV's row limit (newest first): the API's download and the Operations page's.
CSV_MAX_ROWS = 100_000


def csv_text(session: Session, **filters: Any) -> str:
    """The search as CSV text (header, then at most ``CSV_MAX_ROWS`` rows, newest first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in search(session, limit=CSV_MAX_ROWS, **filters):
        writer.writerow(csv_row(row))
    return buffer.getvalue()
