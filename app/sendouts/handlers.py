# ruff: noqa: RUF001 - Russian and Arabic subjects are written in their own scripts on purpose
"""Outbox handlers of sendouts: the documents e-mail (sample report and CV as PDF attachments),
the staff alert when something asked for is missing, and the consultation reminders.

Rendered at send time in the requester's language (en, ru, es, ar; others English), with the
reference in every subject, and a neutral subject and sender when the requester asked for
discretion. The expert's reminder carries the reference, the country, the time and the link,
never the requester's name or contact. Translations other than English were written here and
need review by a native speaker.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.documents import service as documents
from app.intake import records as intake
from app.intake.handlers import template_language
from app.intake.status import FINAL
from app.models import (
    Consultation,
    ConsultationStatus,
    Document,
    ExpertProfile,
    IntakeRequest,
    OutboxMessage,
    RequestStatus,
    User,
)
from app.notifications import dates, mail
from app.notifications.facts import country_name, recipient, span_for
from app.notifications.render import render_pair
from app.notifications.requester import send_to_requester
from app.outbox.registry import PermanentFailure, handler
from app.sendouts import service
from app.sendouts.service import (
    DOCUMENTS_KIND,
    MISSING_ACTION,
    MISSING_ALERT_KIND,
    SENT_ACTION,
    WANT_CV,
    WANT_SAMPLE,
)

log = structlog.get_logger(__name__)

LANGUAGES = ("en", "ru", "es", "ar")

# (kind, discreet) -> subject. Discreet subjects say nothing of asylum or reports.
# ru, es, ar: translation needs review by a native speaker.
SUBJECTS: dict[str, dict[tuple[str, bool], str]] = {
    "en": {
        (
            "documents",
            False,
        ): "Your asylum expert report request: the documents you asked for [{ref}]",
        ("documents", True): "The documents you asked for [{ref}]",
        ("reminder", False): "Reminder: your free consultation {when} [{ref}]",
        ("reminder", True): "Reminder: your appointment {when} [{ref}]",
    },
    "ru": {
        (
            "documents",
            False,
        ): "Запрос об экспертном заключении по делу об убежище: документы, которые вы просили"
        " [{ref}]",
        ("documents", True): "Документы, которые вы просили [{ref}]",
        ("reminder", False): "Напоминание: ваша бесплатная консультация {when} [{ref}]",
        ("reminder", True): "Напоминание: ваша встреча {when} [{ref}]",
    },
    "es": {
        (
            "documents",
            False,
        ): "Su solicitud de informe pericial de asilo: los documentos que pidió [{ref}]",
        ("documents", True): "Los documentos que pidió [{ref}]",
        ("reminder", False): "Recordatorio: su consulta gratuita {when} [{ref}]",
        ("reminder", True): "Recordatorio: su cita {when} [{ref}]",
    },
    "ar": {
        ("documents", False): "طلبكم لتقرير خبير بشأن اللجوء: المستندات التي طلبتموها [{ref}]",
        ("documents", True): "المستندات التي طلبتموها [{ref}]",
        ("reminder", False): "تذكير: استشارتكم المجانية {when} [{ref}]",
        ("reminder", True): "تذكير: موعدكم {when} [{ref}]",
    },
}

# How far ahead a reminder is, by offset in minutes.
WHEN: dict[str, dict[int, str]] = {
    "en": {1440: "in 24 hours", 60: "in one hour"},
    "ru": {1440: "через 24 часа", 60: "через час"},
    "es": {1440: "en 24 horas", 60: "en una hora"},
    "ar": {1440: "بعد 24 ساعة", 60: "بعد ساعة"},
}

# What staff are told was missing (non-personal words).
MISSING_TEXT = {
    WANT_SAMPLE: "a sample report (none for the country, its region, or general)",
    WANT_CV: "an expert's CV (the accepted expert and the region's lead have none)",
}


def _language(req: IntakeRequest) -> str:
    return template_language(req.language, LANGUAGES)


def _sender(req: IntakeRequest) -> str:
    settings = get_settings()
    return settings.mail_from_discreet if req.discreet else settings.mail_from


def _requester(req: IntakeRequest) -> tuple[dict[str, Any], str]:
    pii = intake.reveal_pii(req)
    token = intake.reveal_token(req)
    if pii is None or token is None:
        raise PermanentFailure("request data erased")
    return pii, token


# Documents -----------------------------------------------------------------------------------


def _attachment(doc: Document, name: str) -> mail.Attachment:
    return mail.Attachment(
        filename=name, content=documents.read_bytes(doc), maintype="application", subtype="pdf"
    )


def _trigger(row: OutboxMessage) -> str:
    """Which trigger queued the row (wait or assigned), from its key ``docs:<id>:<trigger>``."""
    parts = (row.dedup_key or "").split(":")
    return parts[2] if len(parts) > 2 else "unknown"


@handler(DOCUMENTS_KIND)
def send_documents(session: Session, row: OutboxMessage) -> None:
    req = session.get(
        IntakeRequest,
        uuid.UUID(row.params["request_id"]),
        with_for_update=True,
        populate_existing=True,
    )
    if req is None:
        raise PermanentFailure("request is gone")
    if service.documents_sent(session, req.id):
        return  # the other trigger sent them already
    if req.status in FINAL:
        log.info("documents_skipped_request_ended", reference=req.reference)
        return
    pii, token = _requester(req)
    sample = service.best_sample_report(session, req) if WANT_SAMPLE in req.wants else None
    cv = service.cv_for(session, req) if WANT_CV in req.wants else service.CvChoice(None, "none")
    missing = [
        want
        for want, found in ((WANT_SAMPLE, sample), (WANT_CV, cv.document))
        if want in req.wants and found is None
    ]
    sending = sample is not None or cv.document is not None
    if missing and not service.has_history(session, req.id, MISSING_ACTION):
        # Never a silent skip: staff are told (once per request), and the history says so.
        alerted = service.alert_staff_missing(session, req, missing, row.id, sent=sending)
        intake.add_history(
            session,
            req,
            actor="system",
            action=MISSING_ACTION,
            details={
                "missing": missing,
                "staff_alerted": alerted,
                "sent_the_rest": sending,
                "outbox_id": row.id,
            },
        )
        session.flush()
    if not sending:
        # Nothing to send: a later trigger (an expert accepting) tries again.
        log.warning("documents_none_to_send", reference=req.reference, missing=missing)
        return
    attachments = []
    # Discreet: the attachments' names say nothing either.
    if sample is not None:
        name = "document-1.pdf" if req.discreet else f"sample-report-{req.reference}.pdf"
        attachments.append(_attachment(sample, name))
    if cv.document is not None:
        name = "document-2.pdf" if req.discreet else f"expert-cv-{req.reference}.pdf"
        attachments.append(_attachment(cv.document, name))
    lang = _language(req)
    context = {
        "name": pii.get("contact_name") or pii["full_name"],
        "reference": req.reference,
        "discreet": req.discreet,
        "sample_report": sample is not None,
        "cv": cv.document is not None,
        "cv_source": cv.source,
        "missing": missing,
        "link": f"{get_settings().public_url}/r/{req.reference}#token={token}",
    }
    text, html = render_pair(f"sendouts/documents_{lang}", context)
    message = mail.build_message(
        to=pii["email"],
        subject=SUBJECTS[lang][("documents", req.discreet)].format(ref=req.reference),
        text=text,
        html=html,
        sender=_sender(req),
        message_id=mail.stable_message_id(f"outbox-{row.id}"),
        attachments=attachments,
    )
    send_to_requester(session, req, message, outbox_id=row.id, what="documents")
    intake.add_history(
        session,
        req,
        actor="system",
        action=SENT_ACTION,
        details={
            "document_ids": [str(d.id) for d in (sample, cv.document) if d is not None],
            "sample_report_id": str(sample.id) if sample is not None else None,
            "cv_document_id": str(cv.document.id) if cv.document is not None else None,
            "cv_source": cv.source,
            "missing": missing,
            "trigger": _trigger(row),
            "outbox_id": row.id,
        },
    )
    service.cancel_pending_documents(session, req.id)
    session.flush()
    log.info("documents_sent", reference=req.reference, attachments=len(attachments))


@handler(MISSING_ALERT_KIND)
def send_missing_alert(session: Session, row: OutboxMessage) -> None:
    req = session.get(IntakeRequest, uuid.UUID(row.params["request_id"]))
    user = session.get(User, uuid.UUID(row.params["user_id"]))
    if req is None:
        raise PermanentFailure("request is gone")
    if user is None or not user.is_active:
        return
    context = {
        "reference": req.reference,
        "country": f"{country_name(session, req.country_of_origin)} ({req.country_of_origin})",
        "region": service.region_of(session, req) or "none",
        "missing": [MISSING_TEXT.get(m, m) for m in row.params.get("missing", [])],
        "sent": bool(row.params.get("sent")),
        "link": f"{get_settings().public_url}/api/v1/admin/sample-reports",
    }
    text, html = render_pair("sendouts/documents_missing", context)
    mail.send(
        mail.build_message(
            to=user.email,
            subject=f"Documents missing for request {req.reference}",
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )


# Consultation reminders ---------------------------------------------------------------------


def _still_due(c: Consultation, row: OutboxMessage) -> bool:
    """Still booked at that start with that expert, not started, and no later reminder due
    already (a 24-hour reminder delivered late, within the last hour, would only repeat it)."""
    if c.status != ConsultationStatus.booked:
        return False
    start = dt.datetime.fromisoformat(row.params["start_at"])
    if c.start_at != start or str(c.expert_id) != row.params.get("expert_id"):
        return False
    left = c.start_at - now()
    offset = int(row.params["offset_minutes"])
    closer = [o for o in service.REMINDER_OFFSETS_MINUTES if o < offset]
    return left > dt.timedelta(0) and not any(left <= dt.timedelta(minutes=o) for o in closer)


def due_reminder(session: Session, row: OutboxMessage) -> tuple[Consultation, IntakeRequest] | None:
    """The consultation and request a reminder row is about, or None when it was moved or
    cancelled since (the current rows remind of the current time)."""
    c = session.get(Consultation, uuid.UUID(row.params["consultation_id"]), populate_existing=True)
    if c is None:
        raise PermanentFailure("consultation is gone")
    if not _still_due(c, row):
        log.info("reminder_skipped_changed", consultation_id=str(c.id))
        return None
    req = session.get(IntakeRequest, c.request_id, populate_existing=True)
    if req is None:
        raise PermanentFailure("request is gone")
    return c, req


def send_reminder(session: Session, row: OutboxMessage) -> None:
    """The reminder by e-mail. The outbox handler of ``REMINDER_KIND`` is
    ``app/flows/handlers.py``: the requester's may go on WhatsApp instead."""
    found = due_reminder(session, row)
    if found is None:
        return
    c, req = found
    offset = int(row.params["offset_minutes"])
    if row.params["to"] == "expert":
        _remind_expert(session, row, c, req, offset)
    else:
        _remind_requester(session, row, c, req, offset)


def _remind_requester(
    session: Session, row: OutboxMessage, c: Consultation, req: IntakeRequest, offset: int
) -> None:
    if req.status == RequestStatus.spam:
        return
    pii, token = _requester(req)
    lang = _language(req)
    when = WHEN[lang].get(offset, WHEN[lang][60])
    profile = session.get(ExpertProfile, c.expert_id)
    context = {
        "name": pii.get("contact_name") or pii["full_name"],
        "reference": req.reference,
        "discreet": req.discreet,
        "when": when,
        "when_words": dates.span_in_words(c.start_at, c.end_at, req.timezone, lang),
        "expert_name": profile.public_name if profile is not None else "",
        "join_url": c.meeting_join_url,
        "link": f"{get_settings().public_url}/r/{req.reference}#token={token}",
    }
    text, html = render_pair(f"sendouts/reminder_{lang}", context)
    message = mail.build_message(
        to=pii["email"],
        subject=SUBJECTS[lang][("reminder", req.discreet)].format(ref=req.reference, when=when),
        text=text,
        html=html,
        sender=_sender(req),
        message_id=mail.stable_message_id(f"outbox-{row.id}"),
    )
    send_to_requester(session, req, message, outbox_id=row.id, what="reminder")


def _remind_expert(
    session: Session, row: OutboxMessage, c: Consultation, req: IntakeRequest, offset: int
) -> None:
    profile = session.get(ExpertProfile, c.expert_id)
    if profile is None:
        raise PermanentFailure("expert is gone")
    when = WHEN["en"].get(offset, WHEN["en"][60])
    context = {
        "reference": req.reference,
        "country": f"{country_name(session, req.country_of_origin)} ({req.country_of_origin})",
        "when": when,
        # In words, in the expert's own language and zone (their settings).
        "when_words": span_for(c.start_at, c.end_at, recipient(session, c.expert_id)),
        "join_url": c.meeting_join_url,
    }
    text, html = render_pair("sendouts/reminder_expert", context)
    mail.send(
        mail.build_message(
            to=profile.email,
            subject=f"Consultation reminder: {when} [{req.reference}]",
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )
