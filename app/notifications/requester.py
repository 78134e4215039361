"""Sending an automatic e-mail to a requester and recording it, so that replies thread onto it.

Every automatic e-mail about a request (acknowledgement, link, documents, consultation invites
and reminders) gets a ``RequestMessage(direction=outbound, kind=automatic)`` whose
``message_id`` is the Message-ID header actually sent (staff replies are recorded by the cases
domain with ``kind=reply``). Handlers send such an e-mail with ``send_to_requester`` (the mail
goes out, then its Message-ID is recorded); a resend of the same outbox row carries the same
Message-ID and records nothing new.

Deliberately small (models, keys, time, the Message-ID parser): the handlers of intake,
inbound, cases, sendouts and scheduling import it without a cycle.
"""

from __future__ import annotations

from email.message import Message

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.inbound.parsing import message_ids
from app.intake import keys
from app.models import (
    DeliveryState,
    IntakeRequest,
    MessageDirection,
    MessageKind,
    RequestMessage,
)
from app.models.messages import MESSAGE_SEAL_KIND
from app.notifications import mail


def send_to_requester(
    session: Session, req: IntakeRequest, message: Message, *, outbox_id: int, what: str
) -> None:
    """Send an automatic e-mail to the requester and record its Message-ID for threading."""
    mail.send(message)
    record_sent(session, req, message, outbox_id=outbox_id, what=what)


def record_sent(
    session: Session,
    req: IntakeRequest,
    message: Message,
    *,
    outbox_id: int | None,
    kind: MessageKind = MessageKind.automatic,
    what: str = "",
) -> RequestMessage | None:
    """Store the sent message's Message-ID (and, encrypted, its subject and recipient)."""
    found = message_ids(message.get("Message-ID"))
    if not found:
        return None
    message_id = found[0][:255]
    existing = session.scalar(select(RequestMessage).where(RequestMessage.message_id == message_id))
    if existing is not None:
        return existing
    current = now()
    dk = keys.data_key(req)
    data = {
        "to": str(message.get("To") or ""),
        "subject": str(message.get("Subject") or ""),
        "what": what,
    }
    replied = message_ids(message.get("In-Reply-To"))
    row = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.outbound,
        kind=kind,
        message_id=message_id,
        in_reply_to=replied[0][:255] if replied else None,
        at=current,
        recorded_at=current,
        outbox_id=outbox_id,
        delivery=DeliveryState.sent,
        data_enc=keys.seal_json(dk, MESSAGE_SEAL_KIND, req.id, data) if dk is not None else None,
    )
    session.add(row)
    session.flush()
    return row
