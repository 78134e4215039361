"""A case's conversation as one timeline: what the staff case page shows first.

Data only (no HTTP, no labels): the page translates ``kind``, ``event`` and the statuses.
Oldest first, so the newest entry is the last one, right above the reply box.

What it holds:
- e-mails in both directions (``request_messages``): the requester's messages (``inbound``),
  replies written on the case (``reply``, with their delivery state: queued, sent, bounced),
  automatic e-mails (``automatic``: acknowledgement, documents) and delivery reports;
- contacts that staff or the expert logged (``contact``: channel, who, the short note);
  a reply's own contact is the reply itself and is not listed twice;
- internal notes (``note``), ``internal`` set: never the requester's;
- status changes (``status``, from and to) and consultation events (``consultation``: booked,
  rescheduled, moved, cancelled, held, no-show, with the consultation's start when known),
  from the history.

WhatsApp messages are among the messages, ``channel`` set to ``whatsapp`` and ``wa_status``
to how far WhatsApp took them (outbound: queued, sent, delivered, read, failed; inbound:
received).

A logged contact's note is internal too (the requester never sees it): ``internal`` is set on
the entry when it has a note.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.notes import notes
from app.cases.replies import messages
from app.models import (
    Consultation,
    ContactVia,
    IntakeRequest,
    RequestContact,
    RequestHistory,
    User,
    WhatsAppMessage,
)
from app.models.messages import MessageDirection, MessageKind
from app.sla import service as sla

#: The history's consultation events shown in the conversation.
CONSULTATION_EVENTS = (
    "consultation_booked",
    "consultation_rescheduled",
    "consultation_moved",
    "consultation_cancelled",
    "consultation_held",
    "consultation_no_show",
)

#: Entry kinds, in the order they sort when two share an instant.
KINDS = ("inbound", "delivery_report", "status", "consultation", "contact", "reply", "automatic")
_ORDER = {k: i for i, k in enumerate((*KINDS, "note"))}


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # inbound, reply, automatic, delivery_report, contact, note, status, consultation
    internal: bool = False  # for the organisation only (notes, a logged contact's note)
    author: str | None = None  # who wrote or did it (a person's name), when known
    subject: str | None = None
    body: str | None = None  # the text (message body, note, contact note)
    erased: bool = False  # the request's personal data was erased: the text is gone
    delivery: str | None = None  # replies and automatic e-mails: queued, sent, bounced
    channel: str | None = None  # contacts: email, phone, whatsapp; messages: whatsapp
    wa_status: str | None = None  # WhatsApp messages: queued, sent, delivered, read, failed...
    bounced: bool = False  # a logged contact that bounced (does not count)
    from_status: str | None = None
    to_status: str | None = None
    event: str | None = None  # consultations: the history's action
    starts_at: dt.datetime | None = None  # consultations: when it is (or was)
    key: int = 0  # the source row's id, to keep entries of one instant in a stable order


def _names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()
    return {uid: name for uid, name in rows}


def _user_of(actor: str) -> uuid.UUID | None:
    if not actor.startswith("user:"):
        return None
    try:
        return uuid.UUID(actor[5:])
    except ValueError:
        return None


def _message_kind(direction: MessageDirection, kind: MessageKind) -> str:
    if direction == MessageDirection.inbound:
        return "delivery_report" if kind == MessageKind.delivery_report else "inbound"
    return "reply" if kind == MessageKind.reply else "automatic"


def _starts(
    session: Session, details: dict[str, Any], cache: dict[str, dt.datetime | None]
) -> dt.datetime | None:
    cid = details.get("consultation_id")
    if not isinstance(cid, str):
        return None
    if cid not in cache:
        try:
            c = session.get(Consultation, uuid.UUID(cid))
        except ValueError:
            c = None
        cache[cid] = c.start_at if c is not None else None
    return cache[cid]


def timeline(session: Session, req: IntakeRequest) -> list[TimelineEntry]:
    """The case's conversation, oldest first (the newest last)."""
    entries: list[TimelineEntry] = []
    msgs = messages(session, req)
    contacts: Sequence[RequestContact] = sla.contacts(session, req)
    history = session.scalars(
        select(RequestHistory).where(
            RequestHistory.request_id == req.id,
            RequestHistory.action.in_(("status_changed", *CONSULTATION_EVENTS)),
        )
    ).all()
    people = {m.author_id for m in msgs if m.author_id is not None}
    people |= {c.recorded_by for c in contacts if c.recorded_by is not None}
    people |= {u for h in history if (u := _user_of(h.actor)) is not None}
    names = _names(session, people)
    wa_status = dict(
        session.execute(
            select(WhatsAppMessage.request_message_id, WhatsAppMessage.status).where(
                WhatsAppMessage.request_id == req.id
            )
        ).all()
    )

    for m in msgs:
        data = m.data or {}
        status = wa_status.get(m.id)
        entries.append(
            TimelineEntry(
                at=m.at,
                kind=_message_kind(m.direction, m.kind),
                author=names.get(m.author_id) if m.author_id is not None else None,
                subject=data.get("subject"),
                body=data.get("body"),
                erased=m.data is None,
                delivery=m.delivery.value if m.delivery is not None else None,
                channel="whatsapp" if status is not None else None,
                wa_status=status.value if status is not None else None,
                key=m.id,
            )
        )
    for c in contacts:
        if c.via == ContactVia.reply:
            continue  # the reply itself is in the timeline
        note = sla.reveal_note(req, c)
        entries.append(
            TimelineEntry(
                at=c.contacted_at,
                kind="contact",
                internal=note is not None,
                author=names.get(c.recorded_by) if c.recorded_by is not None else None,
                body=note,
                erased=c.note_enc is not None and note is None,
                channel=c.channel.value,
                bounced=c.bounced_at is not None,
                key=c.id,
            )
        )
    for n in notes(session, req):
        entries.append(
            TimelineEntry(
                at=n.created_at,
                kind="note",
                internal=True,
                author=n.author_name,
                body=n.body,
                erased=n.body is None,
                key=n.id,
            )
        )
    starts: dict[str, dt.datetime | None] = {}
    for h in history:
        actor = _user_of(h.actor)
        author = names.get(actor) if actor is not None else None
        if h.action == "status_changed":
            entries.append(
                TimelineEntry(
                    at=h.at,
                    kind="status",
                    author=author,
                    from_status=h.from_status,
                    to_status=h.to_status,
                    key=h.id,
                )
            )
        else:
            entries.append(
                TimelineEntry(
                    at=h.at,
                    kind="consultation",
                    author=author,
                    event=h.action,
                    starts_at=_starts(session, dict(h.details or {}), starts),
                    key=h.id,
                )
            )
    entries.sort(key=lambda e: (e.at, _ORDER[e.kind], e.key))
    return entries
