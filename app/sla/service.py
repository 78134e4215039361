"""The first response: recording a contact with the requester, who may, and what it stops.

Only a person's outbound contact counts (docs/domain.md): a phone, WhatsApp or e-mail contact
that staff or the assigned expert log here, or a reply sent from the case page (which records
itself through ``record_contact`` with ``via=reply``). The first counting contact sets the
request's ``first_responded_at`` and cancels its pending reminders and escalation. A contact
whose reply bounced (``bounced_at``) does not count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.time import now
from app.intake import keys
from app.intake import records as intake
from app.models import (
    AssignmentStatus,
    ContactChannel,
    ContactVia,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    RequestContact,
    Role,
    User,
)
from app.routing import repository as routing_repository
from app.sla.errors import CaseNotFound, InvalidContact, RequestErased
from app.sla.scheduling import key_prefix
from app.sla.schemas import ContactOut

log = structlog.get_logger(__name__)

#: A contact time this far ahead of the server's clock is still accepted (clients' clocks drift).
FUTURE_TOLERANCE = dt.timedelta(minutes=1)
NOTE_KIND = "contact_note"


# Who may -----------------------------------------------------------------------------------


def case_for(session: Session, reference: str, user: User) -> IntakeRequest:
    """The request, for staff and admins, or for the expert who accepted it; 404 otherwise."""
    req = intake.get_by_reference(session, reference)
    if req is None:
        raise CaseNotFound()
    if user.role in (Role.staff, Role.admin):
        return req
    if user.role == Role.expert and req.assigned_expert_id == user.id:
        live = routing_repository.live_assignment(session, req.id)
        if (
            live is not None
            and live.expert_id == user.id
            and live.status == AssignmentStatus.accepted
        ):
            return req
    raise CaseNotFound()


# Recording -----------------------------------------------------------------------------------


def counting_contacts_first_at(session: Session, req: IntakeRequest) -> dt.datetime | None:
    """The earliest contact that counts (not bounced), or None."""
    return session.scalar(
        select(func.min(RequestContact.contacted_at)).where(
            RequestContact.request_id == req.id, RequestContact.bounced_at.is_(None)
        )
    )


def cancel_pending(session: Session, req: IntakeRequest) -> int:
    """Cancel the request's reminders, escalation and their not yet sent e-mails."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.dedup_key.startswith(key_prefix(req.id), autoescape=True),
        )
        .values(status=OutboxStatus.cancelled, updated_at=now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def rearm_pending(session: Session, req: IntakeRequest) -> int:
    """Undo ``cancel_pending``: the request's cancelled reminders, escalation and their e-mails
    are pending again (a step already past its minute comes due at once; the handlers decide at
    send time whether it still has something to say)."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.cancelled,
            OutboxMessage.dedup_key.startswith(key_prefix(req.id), autoescape=True),
        )
        .values(status=OutboxStatus.pending, updated_at=now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def reply_bounced(
    session: Session, req: IntakeRequest, contact: RequestContact, *, at: dt.datetime
) -> bool:
    """A reply that counted as a contact bounced: it stops counting. ``first_responded_at``
    becomes the earliest contact that still counts; when none is left the clock goes on and the
    reminders and escalation are re-armed. Returns True when the first response was lost."""
    if contact.bounced_at is not None:
        return False
    contact.bounced_at = at
    session.flush()
    before = req.first_responded_at
    req.first_responded_at = counting_contacts_first_at(session, req)
    lost = before is not None and req.first_responded_at is None
    rearmed = rearm_pending(session, req) if lost and not clock_stopped(req) else 0
    intake.add_history(
        session,
        req,
        actor="system",
        action="contact_bounced",
        details={
            "contact_id": contact.id,
            "first_response_lost": lost,
            "first_responded_at": (
                req.first_responded_at.isoformat() if req.first_responded_at else None
            ),
            "reminders_rearmed": rearmed,
        },
        at=at,
    )
    session.flush()
    log.info("sla_reply_bounced", reference=req.reference, first_response_lost=lost)
    return lost


def record_contact(
    session: Session,
    req: IntakeRequest,
    *,
    channel: ContactChannel,
    contacted_at: dt.datetime,
    note: str | None,
    by_user: User | None,
    via: ContactVia = ContactVia.logged,
    outbox_id: int | None = None,
) -> RequestContact:
    """Store an outbound contact. The first one that counts stops the clock: it sets
    ``first_responded_at`` (the earliest counting contact) and cancels the pending reminders
    and escalation. ``contacted_at`` may be neither in the future nor before the request
    arrived (422 naming the field)."""
    current = now()
    contacted_at = contacted_at.astimezone(dt.UTC)
    if contacted_at > current + FUTURE_TOLERANCE:
        raise InvalidContact("contacted_at", "is in the future")
    if contacted_at < req.received_at:
        raise InvalidContact("contacted_at", "is before the request arrived")
    text = (note or "").strip() or None
    note_enc: bytes | None = None
    if text is not None:
        dk = keys.data_key(req)
        if dk is None:
            raise RequestErased("This request's personal data was erased; a note cannot be kept.")
        note_enc = keys.seal(dk, NOTE_KIND, req.id, text.encode())
    contact = RequestContact(
        request_id=req.id,
        channel=channel,
        via=via,
        contacted_at=contacted_at,
        recorded_at=current,
        recorded_by=by_user.id if by_user is not None else None,
        note_enc=note_enc,
        outbox_id=outbox_id,
        bounced_at=None,
    )
    # Two contacts recorded at once: the row lock makes the second see the first, so the
    # earliest one wins (SQLite serialises writers anyway).
    before = session.scalar(
        select(IntakeRequest.first_responded_at).where(IntakeRequest.id == req.id).with_for_update()
    )
    session.add(contact)
    session.flush()
    first = counting_contacts_first_at(session, req)
    if first is not None and (before is None or first < before):
        req.first_responded_at = first
    elif req.first_responded_at != before:
        req.first_responded_at = before  # set meanwhile by another transaction
    cancelled = cancel_pending(session, req) if req.first_responded_at is not None else 0
    intake.add_history(
        session,
        req,
        actor=f"user:{by_user.id}" if by_user is not None else "system",
        action="contact_recorded",
        details={
            "contact_id": contact.id,
            "channel": channel.value,
            "via": via.value,
            "contacted_at": contacted_at.isoformat(),
            "first_response": before is None and req.first_responded_at is not None,
            "reminders_cancelled": cancelled,
        },
        at=current,
    )
    session.flush()
    log.info(
        "sla_contact_recorded",
        reference=req.reference,
        channel=channel.value,
        first_response=before is None,
    )
    return contact


def contacts(session: Session, req: IntakeRequest) -> Sequence[RequestContact]:
    return session.scalars(
        select(RequestContact)
        .where(RequestContact.request_id == req.id)
        .order_by(RequestContact.contacted_at, RequestContact.id)
    ).all()


def reveal_note(req: IntakeRequest, contact: RequestContact) -> str | None:
    if contact.note_enc is None:
        return None
    dk = keys.data_key(req)
    if dk is None:
        return None
    return keys.unseal(dk, NOTE_KIND, req.id, contact.note_enc).decode()


def contact_out(req: IntakeRequest, c: RequestContact) -> ContactOut:
    return ContactOut(
        id=c.id,
        channel=c.channel,
        via=c.via,
        contacted_at=c.contacted_at,
        recorded_at=c.recorded_at,
        recorded_by=c.recorded_by,
        note=reveal_note(req, c),
        counts=c.bounced_at is None,
        bounced_at=c.bounced_at,
    )


# At send time --------------------------------------------------------------------------------


def clock_stopped(req: IntakeRequest) -> bool:
    """Nothing more to remind of: a first response was recorded, or the request ended (a final
    status, or merged into another request: ``ended_at``, app/intake/status.py)."""
    return req.first_responded_at is not None or req.ended_at is not None
