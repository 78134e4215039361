"""Outbox handler of notifications: the admin's test e-mail."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.models import OutboxMessage, User
from app.notifications import mail
from app.notifications.facts import local_time, zone_label
from app.notifications.render import render_pair
from app.notifications.service import TEST_EMAIL
from app.outbox.registry import PermanentFailure, handler

SERVICE_NAME = "the expert reports service"


@handler(TEST_EMAIL)
def send_test_email(session: Session, row: OutboxMessage) -> None:
    to = row.params.get("to")
    zone = "UTC"  # an address the admin typed belongs to nobody we know: UTC, named
    if to is None:
        user = session.get(User, uuid.UUID(row.params["user_id"]))
        if user is None:
            raise PermanentFailure("the admin who asked is gone")
        to, zone = user.email, user.timezone
    sent_at = now()
    settings = get_settings()
    backend = (
        f"SMTP {settings.smtp_host}:{settings.smtp_port}"
        if settings.mail_backend == "smtp"
        else "the mail folder"
    )
    text, html = render_pair(
        "notifications/test_email",
        {
            "service": SERVICE_NAME,
            "sent_at": f"{local_time(sent_at, zone, form='seconds')} ({zone_label(zone, sent_at)})",
            "backend": backend,
        },
    )
    mail.send(
        mail.build_message(
            to=to,
            subject="Test e-mail: outgoing mail works",
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )
