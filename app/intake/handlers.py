# ruff: noqa: RUF001 - Russian and Arabic subjects are written in their own scripts on purpose
"""Outbox handlers of intake: the acknowledgement and the recovered link, rendered at send time
in the requester's language (English, Russian, Spanish, Arabic; others fall back to English).
The Spanish and Arabic texts need review by a native speaker."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.intake import records
from app.models import IntakeRequest, OutboxMessage, RequestStatus
from app.notifications import dates, mail
from app.notifications.render import render_pair
from app.notifications.requester import send_to_requester
from app.outbox.registry import PermanentFailure, handler

LANGUAGES = ("en", "ru")
# The acknowledgement and the link exist in more languages than other e-mails.
INTAKE_LANGUAGES = ("en", "ru", "es", "ar")

SUBJECTS: dict[str, dict[tuple[str, bool], str]] = {
    # (kind, discreet) -> subject; discreet subjects say nothing about asylum or reports.
    "en": {
        ("ack", False): "We received your request for an asylum expert report [{ref}]",
        ("ack", True): "We received your message [{ref}]",
        ("link", False): "Your link to your asylum expert report request [{ref}]",
        ("link", True): "Your link [{ref}]",
    },
    "ru": {
        (
            "ack",
            False,
        ): "Мы получили ваш запрос об экспертном заключении по делу об убежище [{ref}]",
        ("ack", True): "Мы получили ваше сообщение [{ref}]",
        ("link", False): "Ссылка на ваш запрос об экспертном заключении по делу об убежище [{ref}]",
        ("link", True): "Ваша ссылка [{ref}]",
    },
    # es, ar: translation needs review by a native speaker.
    "es": {
        ("ack", False): "Hemos recibido su solicitud de informe pericial de asilo [{ref}]",
        ("ack", True): "Hemos recibido su mensaje [{ref}]",
        ("link", False): "Su enlace a su solicitud de informe pericial de asilo [{ref}]",
        ("link", True): "Su enlace [{ref}]",
    },
    "ar": {
        ("ack", False): "تلقينا طلبكم للحصول على تقرير خبير بشأن اللجوء [{ref}]",
        ("ack", True): "تلقينا رسالتكم [{ref}]",
        ("link", False): "رابط طلبكم للحصول على تقرير خبير بشأن اللجوء [{ref}]",
        ("link", True): "رابطكم [{ref}]",
    },
}


def template_language(tag: str, available: tuple[str, ...] = LANGUAGES) -> str:
    primary = tag.split("-", 1)[0].lower()
    return primary if primary in available else "en"


def _load(session: Session, row: OutboxMessage) -> tuple[IntakeRequest, dict[str, Any], str]:
    req = session.get(IntakeRequest, uuid.UUID(row.params["request_id"]))
    if req is None:
        raise PermanentFailure("request is gone")
    pii = records.reveal_pii(req)
    token = records.reveal_token(req)
    if pii is None or token is None:
        raise PermanentFailure("request data erased")
    return req, pii, token


def _send(session: Session, row: OutboxMessage, kind: str) -> None:
    req, pii, token = _load(session, row)
    if req.status == RequestStatus.spam:
        raise PermanentFailure("request was marked as spam; nothing is sent")
    settings = get_settings()
    lang = template_language(req.language, INTAKE_LANGUAGES)
    base = settings.public_url
    context = {
        "reference": req.reference,
        "name": pii.get("contact_name") or pii["full_name"],
        "link": f"{base}/r/{req.reference}#token={token}",
        "booking_link": (
            f"{base}/r/{req.reference}/book#token={token}" if "consultation" in req.wants else None
        ),
        "due_local": dates.when_in_words(req.first_response_due_at, req.timezone, lang),
        "sla_minutes": req.sla_minutes,
        "wants": req.wants,
        "discreet": req.discreet,
    }
    text, html = render_pair(f"intake/{kind}_{lang}", context)
    message = mail.build_message(
        to=pii["email"],
        subject=SUBJECTS[lang][(kind, req.discreet)].format(ref=req.reference),
        text=text,
        html=html,
        sender=settings.mail_from_discreet if req.discreet else settings.mail_from,
        message_id=mail.stable_message_id(f"outbox-{row.id}"),
    )
    send_to_requester(session, req, message, outbox_id=row.id, what=kind)  # replies thread


@handler("intake.ack")
def send_acknowledgement(session: Session, row: OutboxMessage) -> None:
    _send(session, row, "ack")


@handler("intake.link")
def send_link(session: Session, row: OutboxMessage) -> None:
    _send(session, row, "link")
