"""Case handling for staff (and the expert who accepted the request): the one entry point the
API and the web pages call.

Reading: the decrypted request, SLA, country profile, routing, consultations, contacts, messages
in both directions, notes, presence and the full history. Acting (one module per use case):
``actions`` (log a contact, resend the sample report), ``notes``, ``replies``
(e-mail replies, counted as the first response), ``corrections`` (fields; whether to re-route),
``merging`` (duplicates), ``presence`` (who else has the case open), ``ownership`` ("Take it":
the staff member who answers the requester). ``timeline``: the conversation as one list (the
case page's centre); ``reply_mail``: the e-mail a reply becomes, for its preview and its sending.

Who may: ``access`` (``case_for``: staff, admins and the accepted expert, else 404;
``staff_case_for``: staff and admins, the accepted expert 403, else 404).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.access import HISTORY_KIND, STAFF_ROLES, case_for, staff_case_for
from app.cases.actions import (
    RESEND_SAMPLE_KIND,
    log_contact,
    resend_sample_report,
)
from app.cases.corrections import correct, wants_reroute
from app.cases.merging import merge, merged_from_references, merged_into_reference, unlink
from app.cases.notes import NoteView, add_note, notes
from app.cases.ownership import Owner, owner_of, take
from app.cases.presence import PRESENCE_WINDOW, Present, heartbeat, leave, others
from app.cases.replies import REPLY_KIND, MessageView, messages, reply
from app.cases.reply_mail import ComposedReply, leading_greeting, preview_digest, preview_reply
from app.cases.timeline import TimelineEntry, timeline
from app.intake import keys
from app.intake.records import reveal_pii
from app.models import (
    Consultation,
    Country,
    IntakeRequest,
    OutboxMessage,
    RequestContact,
    RequestHistory,
)
from app.sla import service as sla

__all__ = [
    "HISTORY_KIND",
    "PRESENCE_WINDOW",
    "REPLY_KIND",
    "RESEND_SAMPLE_KIND",
    "STAFF_ROLES",
    "ComposedReply",
    "MessageView",
    "NoteView",
    "Owner",
    "Present",
    "TimelineEntry",
    "add_note",
    "case_for",
    "consultations",
    "contacts",
    "correct",
    "country_of",
    "heartbeat",
    "history",
    "leading_greeting",
    "leave",
    "linked_reference",
    "log_contact",
    "merge",
    "merged_from_references",
    "merged_into_reference",
    "messages",
    "notes",
    "others",
    "outbox_rows",
    "owner_of",
    "personal",
    "preview_digest",
    "preview_reply",
    "reply",
    "resend_sample_report",
    "staff_case_for",
    "take",
    "timeline",
    "unlink",
    "wants_reroute",
]


def contacts(session: Session, req: IntakeRequest) -> Sequence[RequestContact]:
    return sla.contacts(session, req)


def country_of(session: Session, req: IntakeRequest) -> Country | None:
    return session.get(Country, req.country_of_origin)


def linked_reference(session: Session, req: IntakeRequest) -> str | None:
    if req.linked_request_id is None:
        return None
    return session.scalar(
        select(IntakeRequest.reference).where(IntakeRequest.id == req.linked_request_id)
    )


def personal(req: IntakeRequest) -> dict[str, Any] | None:
    return reveal_pii(req)


def consultations(session: Session, req: IntakeRequest) -> Sequence[Consultation]:
    return session.scalars(
        select(Consultation).where(Consultation.request_id == req.id).order_by(Consultation.id)
    ).all()


def outbox_rows(session: Session, req: IntakeRequest) -> Sequence[OutboxMessage]:
    """Outbox rows whose params name this request (``{"request_id": ...}``)."""
    return session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.params["request_id"].as_string() == str(req.id))
        .order_by(OutboxMessage.id)
    ).all()


def history(session: Session, req: IntakeRequest) -> list[tuple[RequestHistory, Any | None]]:
    rows = session.scalars(
        select(RequestHistory)
        .where(RequestHistory.request_id == req.id)
        .order_by(RequestHistory.at, RequestHistory.id)
    ).all()
    dk = keys.data_key(req) if any(r.data_enc is not None for r in rows) else None
    out: list[tuple[RequestHistory, Any | None]] = []
    for r in rows:
        data: Any | None = None
        if r.data_enc is not None and dk is not None:
            data = keys.unseal_json(dk, HISTORY_KIND, req.id, r.data_enc)
        out.append((r, data))
    return out
