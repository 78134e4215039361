"""Replying to the requester by e-mail from the case, and the messages of a case.

A reply is a ``RequestMessage`` (outbound, kind ``reply``) whose personal part (to, subject,
body) is sealed with the request's data key, carried by one outbox row (``cases.reply``, ids
only) and rendered at send time in the requester's language (app/cases/handlers.py). Its
Message-ID is derived from the outbox row (``reply-<outbox id>@<mail domain>``), stored without
angle brackets in ``message_id`` and sent as the header, so a reply to it threads back here.
It answers the latest inbound message of the request (``In-Reply-To``/``References``), if any.

Queuing the reply records the first response (``app.sla.service.record_contact`` with
``via=reply``): the clock stops when a person sends it, not when the mail server took it. A reply
that bounces later stops counting (``request_contacts.bounced_at``, set by inbound e-mail).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.errors import CaseErased, InvalidCaseInput
from app.core.time import now
from app.intake import keys
from app.intake.records import add_history, reveal_pii
from app.models import (
    ContactChannel,
    ContactVia,
    IntakeRequest,
    User,
)
from app.models.messages import (
    MESSAGE_SEAL_KIND,
    DeliveryState,
    MessageDirection,
    MessageKind,
    RequestMessage,
)
from app.notifications import mail
from app.outbox import service as outbox
from app.sla import service as sla

REPLY_KIND = "cases.reply"
BODY_MAX_CHARS = 20_000
SUBJECT_MAX_CHARS = 200


def message_id_for(outbox_id: int) -> str:
    """The reply's RFC 5322 Message-ID, without angle brackets (deterministic per outbox row)."""
    return mail.stable_message_id(f"reply-{outbox_id}").strip("<>")


def latest_inbound(session: Session, req: IntakeRequest) -> RequestMessage | None:
    return session.scalar(
        select(RequestMessage)
        .where(
            RequestMessage.request_id == req.id,
            RequestMessage.direction == MessageDirection.inbound,
            RequestMessage.message_id.is_not(None),
        )
        .order_by(RequestMessage.at.desc(), RequestMessage.id.desc())
        .limit(1)
    )


def references_of(session: Session, msg: RequestMessage) -> list[str]:
    """The ``References`` chain of an outbound message: the parent's parent (if known) and the
    parent (RFC 5322 3.6.4, shortened to what the service knows)."""
    if msg.in_reply_to is None:
        return []
    parent = session.scalar(
        select(RequestMessage).where(RequestMessage.message_id == msg.in_reply_to)
    )
    chain = [parent.in_reply_to] if parent is not None and parent.in_reply_to else []
    return [*chain, msg.in_reply_to]


def seal_message(req: IntakeRequest, data: dict[str, Any]) -> bytes:
    dk = keys.data_key(req)
    if dk is None:
        raise CaseErased()
    return keys.seal_json(dk, MESSAGE_SEAL_KIND, req.id, data)


def reveal_message(req: IntakeRequest, msg: RequestMessage) -> dict[str, Any] | None:
    dk = keys.data_key(req)
    if dk is None or msg.data_enc is None:
        return None
    value: dict[str, Any] = keys.unseal_json(dk, MESSAGE_SEAL_KIND, req.id, msg.data_enc)
    return value


def checked_reply(body: str, subject: str | None) -> tuple[str, str | None]:
    """The reply's body and subject as they will be kept (trimmed; an empty subject is none),
    or 422 naming ``body`` or ``subject`` (empty, too long, a subject over several lines)."""
    text = (body or "").strip()
    if not text:
        raise InvalidCaseInput("body", "is empty; write the reply")
    if len(text) > BODY_MAX_CHARS:
        raise InvalidCaseInput("body", f"is longer than {BODY_MAX_CHARS} characters")
    title = (subject or "").strip() or None
    if title is not None and ("\n" in title or "\r" in title):
        raise InvalidCaseInput("subject", "must be one line")
    if title is not None and len(title) > SUBJECT_MAX_CHARS:
        raise InvalidCaseInput("subject", f"is longer than {SUBJECT_MAX_CHARS} characters")
    return text, title


def reply_address(req: IntakeRequest) -> dict[str, Any]:
    """The request's personal data when a reply can go to it (409 once erased, 422 ``email``
    without an address)."""
    pii = reveal_pii(req)
    if pii is None:
        raise CaseErased()
    if not pii.get("email"):
        raise InvalidCaseInput("email", "the request has no e-mail address; correct it first")
    return pii


def reply(
    session: Session, req: IntakeRequest, user: User, body: str, subject: str | None = None
) -> RequestMessage:
    """Queue an e-mail reply to the requester; it counts as the first response.

    ``subject`` is optional (the default is a neutral one in the requester's language, with the
    reference); 422 naming ``body`` or ``subject`` when they are empty, too long or (subject)
    span lines; 409 once the request's personal data was erased."""
    text, title = checked_reply(body, subject)
    pii = reply_address(req)
    parent = latest_inbound(session, req)
    current = now()
    msg = RequestMessage(
        request_id=req.id,
        direction=MessageDirection.outbound,
        kind=MessageKind.reply,
        in_reply_to=parent.message_id if parent is not None else None,
        at=current,
        recorded_at=current,
        author_id=user.id,
        delivery=DeliveryState.queued,
        data_enc=seal_message(req, {"to": pii["email"], "subject": title, "body": text}),
    )
    session.add(msg)
    session.flush()
    row = outbox.enqueue(
        session,
        REPLY_KIND,
        {"request_id": str(req.id), "request_message_id": msg.id},
        dedup_key=f"{REPLY_KIND}:{msg.id}",
    )
    if row is None:  # pragma: no cover - the key is new by construction
        raise RuntimeError("reply already queued")
    msg.outbox_id = row.id
    msg.message_id = message_id_for(row.id)
    contact = sla.record_contact(
        session,
        req,
        channel=ContactChannel.email,
        contacted_at=current,
        note=None,
        by_user=user,
        via=ContactVia.reply,
        outbox_id=row.id,
    )
    msg.contact_id = contact.id
    add_history(
        session,
        req,
        actor=f"user:{user.id}",
        action="reply_queued",
        details={
            "request_message_id": msg.id,
            "outbox_id": row.id,
            "contact_id": contact.id,
            "threaded": parent is not None,
        },
        at=current,
    )
    session.flush()
    return msg


@dataclass(frozen=True)
class MessageView:
    id: int
    direction: MessageDirection
    kind: MessageKind
    at: dt.datetime
    message_id: str | None
    in_reply_to: str | None
    author_id: uuid.UUID | None
    delivery: DeliveryState | None
    outbox_id: int | None
    contact_id: int | None
    data: dict[str, Any] | None  # decrypted (to/from, subject, body, ...); None once erased


def messages(session: Session, req: IntakeRequest) -> list[MessageView]:
    """Messages in both directions (request_messages), oldest first, decrypted."""
    rows = session.scalars(
        select(RequestMessage)
        .where(RequestMessage.request_id == req.id)
        .order_by(RequestMessage.at, RequestMessage.id)
    ).all()
    return [
        MessageView(
            id=m.id,
            direction=m.direction,
            kind=m.kind,
            at=m.at,
            message_id=m.message_id,
            in_reply_to=m.in_reply_to,
            author_id=m.author_id,
            delivery=m.delivery,
            outbox_id=m.outbox_id,
            contact_id=m.contact_id,
            data=reveal_message(req, m),
        )
        for m in rows
    ]
