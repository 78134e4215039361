"""Outbox handlers of case handling: a reply written on the case, and the sample report sent
again on staff's request. Rendered at send time in the requester's language (en, ru, es, ar;
others English), from the discreet sender with a neutral subject when the requester asked for
discretion. The ru, es and ar texts need review by a native speaker.

Every e-mail sent here has a ``RequestMessage`` whose ``message_id`` is the Message-ID header
sent (the contract with inbound e-mail, which threads replies and bounces onto it).
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.orm import Session

from app.cases import reply_mail
from app.cases.actions import RESEND_SAMPLE_KIND
from app.cases.replies import REPLY_KIND, references_of, reveal_message, seal_message
from app.core.settings import get_settings
from app.core.time import now
from app.documents import service as documents
from app.intake import records as intake
from app.intake.handlers import template_language
from app.models import (
    IntakeRequest,
    OutboxMessage,
    RequestContact,
    RequestStatus,
)
from app.models.messages import DeliveryState, RequestMessage
from app.notifications import mail
from app.notifications.render import render_pair
from app.notifications.requester import send_to_requester
from app.outbox.registry import PermanentFailure, handler
from app.sendouts import service as sendouts
from app.sendouts.handlers import SUBJECTS as SENDOUT_SUBJECTS
from app.sla import service as sla

log = structlog.get_logger(__name__)

LANGUAGES = reply_mail.LANGUAGES


def _sender(req: IntakeRequest) -> str:
    settings = get_settings()
    return settings.mail_from_discreet if req.discreet else settings.mail_from


def _link(req: IntakeRequest) -> str | None:
    return reply_mail.private_link(req)


@handler(REPLY_KIND)
def send_reply(session: Session, row: OutboxMessage) -> None:
    msg = session.get(RequestMessage, int(row.params["request_message_id"]), populate_existing=True)
    if msg is None:
        raise PermanentFailure("message is gone")
    if msg.delivery == DeliveryState.sent:
        return  # delivered already (a resend after a lost acknowledgement)
    req = session.get(IntakeRequest, msg.request_id, populate_existing=True)
    if req is None:
        raise PermanentFailure("request is gone")
    pii = intake.reveal_pii(req)
    data = reveal_message(req, msg)
    if pii is None or data is None or not msg.message_id:
        raise PermanentFailure("request data erased")
    # The same composition the case page previewed (app/cases/reply_mail.py).
    composed = reply_mail.compose_reply(
        session,
        req,
        to=pii["email"],
        name=reply_mail.addressee(pii),
        author_id=msg.author_id,
        subject=data.get("subject"),
        body=data["body"],
        link=_link(req),
    )
    subject = composed.subject
    headers: dict[str, str] = {}
    if msg.in_reply_to:
        headers["In-Reply-To"] = f"<{msg.in_reply_to}>"
        headers["References"] = " ".join(f"<{m}>" for m in references_of(session, msg))
    message = mail.build_message(
        to=composed.to,
        subject=subject,
        text=composed.text,
        html=composed.html,
        sender=_sender(req),
        message_id=f"<{msg.message_id}>",
        headers=headers,
    )
    # A person wrote this one (RFC 3834): the requester's auto-responders may answer it.
    message.replace_header("Auto-Submitted", "no")
    try:
        mail.send(message)
    except mail.MailRefused as exc:
        # Refused for good (5xx): like a bounce, the reply stops counting as the first response
        # and the case shows it; retrying the same address cannot help (correct it, reply again).
        _refused(session, req, msg, row, exc)
        return
    msg.delivery = DeliveryState.sent
    msg.at = now()
    msg.data_enc = seal_message(req, {**data, "to": pii["email"], "subject": subject})
    intake.add_history(
        session,
        req,
        actor="system",
        action="reply_sent",
        details={"request_message_id": msg.id, "outbox_id": row.id},
    )
    session.flush()
    log.info("case_reply_sent", reference=req.reference, request_message_id=msg.id)


def _refused(
    session: Session,
    req: IntakeRequest,
    msg: RequestMessage,
    row: OutboxMessage,
    exc: Exception,
) -> None:
    current = now()
    msg.delivery = DeliveryState.bounced
    contact = session.get(RequestContact, msg.contact_id) if msg.contact_id else None
    lost = sla.reply_bounced(session, req, contact, at=current) if contact is not None else False
    intake.add_history(
        session,
        req,
        actor="system",
        action="reply_refused",
        details={
            "request_message_id": msg.id,
            "outbox_id": row.id,
            "error": type(exc).__name__,
            "first_response_lost": lost,
        },
        at=current,
    )
    session.flush()
    log.warning("case_reply_refused", reference=req.reference, request_message_id=msg.id)


@handler(RESEND_SAMPLE_KIND)
def resend_sample_report(session: Session, row: OutboxMessage) -> None:
    req = session.get(IntakeRequest, uuid.UUID(row.params["request_id"]), populate_existing=True)
    if req is None:
        raise PermanentFailure("request is gone")
    if req.status == RequestStatus.spam:
        raise PermanentFailure("request was marked as spam; nothing is sent")
    pii = intake.reveal_pii(req)
    link = _link(req)
    if pii is None or link is None:
        raise PermanentFailure("request data erased")
    doc = sendouts.best_sample_report(session, req)
    if doc is None:
        raise PermanentFailure("no sample report to send (it was deleted meanwhile)")
    lang = template_language(req.language, LANGUAGES)
    context = {
        "name": pii.get("contact_name") or pii["full_name"],
        "reference": req.reference,
        "discreet": req.discreet,
        "sample_report": True,
        "cv": False,
        "cv_source": "none",
        "missing": [],
        "link": link,
    }
    text, html = render_pair(f"sendouts/documents_{lang}", context)
    name = "document-1.pdf" if req.discreet else f"sample-report-{req.reference}.pdf"
    message_id = mail.stable_message_id(f"outbox-{row.id}")
    subject = SENDOUT_SUBJECTS[lang][("documents", req.discreet)].format(ref=req.reference)
    message = mail.build_message(
        to=pii["email"],
        subject=subject,
        text=text,
        html=html,
        sender=_sender(req),
        message_id=message_id,
        attachments=[
            mail.Attachment(
                filename=name,
                content=documents.read_bytes(doc),
                maintype="application",
                subtype="pdf",
            )
        ],
    )
    send_to_requester(session, req, message, outbox_id=row.id, what="sample_report_resend")
    intake.add_history(
        session,
        req,
        actor="system",
        action="sample_report_resent",
        details={"outbox_id": row.id, "document_id": str(doc.id)},
    )
    session.flush()
