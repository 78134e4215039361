"""Mail set aside: the trace every message leaves that is not taken as a person's mail.

Nothing that reaches the mailbox disappears without a trace. An auto-reply, list mail, a bounce
that is no delivery report for our mail, a read receipt, our own mail coming back, a loop, or
something the poller cannot read as an e-mail leaves one ``InboundSetAside`` row: why (the
reason and the header or rule that decided), when the mailbox received it, its size, and,
encrypted with the row's own data key (wrapped by the master key like a request's), the sender,
their name, the subject and the whole message (up to ``INTAKE_INBOUND_MAX_MESSAGE_BYTES``), so
staff can open it as a request if it was a person after all (``service.open_set_aside``).

Staff see the list through ``GET /api/v1/inbound/set-aside`` and the page
``/staff/inbound/set-aside``: the reason, the dates, the size, the subject and a masked sender
(first letter and domain), never the full address. A message that answers one of our threads
(an out-of-office reply to a requester's acknowledgement, a read receipt) is linked to that
request and noted in its history; it never becomes the requester's message and never counts as
anything on the request's clock.

The daily retention run deletes rows older than ``INTAKE_INBOUND_SET_ASIDE_DAYS``; erasing a
request deletes the rows linked to it or sent from its address.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from app.core import crypto
from app.core.settings import get_settings
from app.core.time import now
from app.inbound.errors import InvalidSetAsideParameter
from app.intake import records as intake
from app.models import InboundSetAside, IntakeRequest, SetAsideReason, User

HASH_PURPOSE = "inbound-set-aside-message"
HISTORY_ACTION = "mail_set_aside"


def message_key(message_id: str) -> str:
    """Keyed hash of a Message-ID: finds a trace again without storing the Message-ID, which
    can name the sender's host or address."""
    return crypto.keyed_hash(HASH_PURPOSE, message_id)


def exists(session: Session, message_id: str) -> bool:
    key = message_key(message_id)
    return (
        session.scalar(select(InboundSetAside.id).where(InboundSetAside.message_key == key))
        is not None
    )


def _aad(kind: str, row_id: uuid.UUID) -> bytes:
    return f"set_aside_{kind}:{row_id}".encode()


def record(
    session: Session,
    *,
    raw: bytes,
    message_id: str,
    reason: SetAsideReason,
    detail: str,
    received_at: dt.datetime,
    via: str,
    sender: str | None,
    sender_name: str | None = None,
    subject: str | None = None,
    date_at: dt.datetime | None = None,
    sender_lookup: str | None = None,
    request: IntakeRequest | None = None,
    keep_raw: bool = True,
) -> InboundSetAside:
    """Write the trace (flushed); a linked request gets a history row naming it."""
    row_id = uuid.uuid4()
    key = os.urandom(32)
    key_id, wrapped = crypto.encrypt_with_master(key, _aad("dk", row_id))
    data = {
        "from": sender,
        "from_name": sender_name,
        "subject": subject,
        "date": format_datetime(date_at) if date_at is not None else None,
    }
    kept = keep_raw and len(raw) <= get_settings().inbound_max_message_bytes
    row = InboundSetAside(
        id=row_id,
        received_at=received_at,
        recorded_at=now(),
        via=via[:16],
        reason=reason,
        detail=detail[:200],
        size=len(raw),
        message_key=message_key(message_id),
        sender_lookup=sender_lookup,
        request_id=request.id if request is not None else None,
        data_key_id=key_id,
        data_key_enc=wrapped,
        data_enc=crypto.encrypt(key, json.dumps(data).encode(), _aad("data", row_id)),
        raw_enc=crypto.encrypt(key, raw, _aad("raw", row_id)) if kept else None,
    )
    session.add(row)
    session.flush()
    if request is not None:
        intake.add_history(
            session,
            request,
            actor="system",
            action=HISTORY_ACTION,
            details={"set_aside_id": str(row_id), "reason": reason.value, "detail": row.detail},
        )
    return row


def _key(row: InboundSetAside) -> bytes | None:
    try:
        return crypto.decrypt_with_master(row.data_key_id, row.data_key_enc, _aad("dk", row.id))
    except (KeyError, InvalidTag, ValueError):
        return None  # an old master key no longer configured: the trace stays, unreadable


def reveal(row: InboundSetAside) -> dict[str, Any] | None:
    key = _key(row)
    if key is None:
        return None
    value: dict[str, Any] = json.loads(crypto.decrypt(key, row.data_enc, _aad("data", row.id)))
    return value


def reveal_raw(row: InboundSetAside) -> bytes | None:
    key = _key(row)
    if key is None or row.raw_enc is None:
        return None
    return crypto.decrypt(key, row.raw_enc, _aad("raw", row.id))


def mask(address: str | None) -> tuple[str | None, str | None]:
    """(masked address, domain): ``farid@example.org`` -> ``f***@example.org``."""
    if not address or "@" not in address:
        return None, None
    local, domain = address.rsplit("@", 1)
    return f"{local[:1]}***@{domain}", domain


def can_open(row: InboundSetAside) -> bool:
    return (
        row.opened_at is None
        and row.raw_enc is not None
        and row.reason not in (SetAsideReason.own_mail, SetAsideReason.unreadable)
    )


@dataclass(frozen=True)
class SetAsideView:
    id: uuid.UUID
    received_at: dt.datetime
    recorded_at: dt.datetime
    via: str
    reason: SetAsideReason
    detail: str
    size: int
    sender: str | None  # masked
    sender_domain: str | None
    subject: str | None
    reference: str | None
    can_open: bool
    opened_at: dt.datetime | None
    opened_by: str | None  # display name


@dataclass(frozen=True)
class SetAsidePage:
    items: list[SetAsideView]
    next_cursor: str | None
    retention_days: int


def _cursor(row: InboundSetAside) -> str:
    return f"{row.recorded_at.isoformat()}_{row.id}"


def _parse_cursor(value: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        at_text, id_text = value.rsplit("_", 1)
        at = dt.datetime.fromisoformat(at_text)
        row_id = uuid.UUID(id_text)
        if at.tzinfo is None:
            raise ValueError("no zone")
        at = at.astimezone(dt.UTC)  # year 1 at +14:00 does not exist in UTC
    except (ValueError, OverflowError):
        raise InvalidSetAsideParameter("cursor", "is not a cursor this list gave") from None
    return at, row_id


def listing(
    session: Session,
    *,
    limit: int = 100,
    reason: SetAsideReason | None = None,
    cursor: str | None = None,
) -> SetAsidePage:
    """Newest first, ``limit`` at a time; ``cursor`` is the previous page's ``next_cursor``."""
    stmt = select(InboundSetAside, IntakeRequest.reference, User.display_name).outerjoin(
        IntakeRequest, IntakeRequest.id == InboundSetAside.request_id
    )
    stmt = stmt.outerjoin(User, User.id == InboundSetAside.opened_by)
    if reason is not None:
        stmt = stmt.where(InboundSetAside.reason == reason)
    if cursor:
        at, row_id = _parse_cursor(cursor)
        stmt = stmt.where(
            or_(
                InboundSetAside.recorded_at < at,
                and_(InboundSetAside.recorded_at == at, InboundSetAside.id < row_id),
            )
        )
    stmt = stmt.order_by(InboundSetAside.recorded_at.desc(), InboundSetAside.id.desc())
    rows = session.execute(stmt.limit(limit + 1)).all()
    items = []
    for row, reference, opener in rows[:limit]:
        data = reveal(row) or {}
        masked, domain = mask(data.get("from"))
        items.append(
            SetAsideView(
                id=row.id,
                received_at=row.received_at,
                recorded_at=row.recorded_at,
                via=row.via,
                reason=row.reason,
                detail=row.detail,
                size=row.size,
                sender=masked,
                sender_domain=domain,
                subject=data.get("subject"),
                reference=reference,
                can_open=can_open(row),
                opened_at=row.opened_at,
                opened_by=opener,
            )
        )
    more = len(rows) > limit
    return SetAsidePage(
        items=items,
        next_cursor=_cursor(rows[limit - 1][0]) if more else None,
        retention_days=get_settings().inbound_set_aside_days,
    )


def purge(session: Session, current: dt.datetime) -> int:
    """Delete the traces past ``INTAKE_INBOUND_SET_ASIDE_DAYS`` (the daily retention run)."""
    before = current - dt.timedelta(days=get_settings().inbound_set_aside_days)
    result = session.execute(delete(InboundSetAside).where(InboundSetAside.recorded_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def erase_for(session: Session, request_id: uuid.UUID, email_lookup: str | None) -> int:
    """Delete the traces linked to a request or sent from its address (erasure)."""
    cond = InboundSetAside.request_id == request_id
    if email_lookup:
        cond = or_(cond, InboundSetAside.sender_lookup == email_lookup)
    result = session.execute(delete(InboundSetAside).where(cond))
    return int(getattr(result, "rowcount", 0) or 0)
