"""Outbox handler of the outbox itself: the alert to staff that a row was dead-lettered.

The alert names the kind, the row id and the error's class, and links to the dead-letter list;
never a name, an address or anything else about a requester. An alert that itself dead-letters
raises no alert (``service.deliver`` checks the kind), so a broken mail server cannot loop.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import OutboxMessage, User
from app.notifications import mail
from app.notifications.render import render_pair
from app.outbox.registry import handler
from app.outbox.service import DEAD_LETTER_ALERT


@handler(DEAD_LETTER_ALERT)
def send_dead_letter_alert(session: Session, row: OutboxMessage) -> None:
    user = session.get(User, uuid.UUID(row.params["user_id"]))
    if user is None or not user.is_active:
        return  # no longer staff: nothing to tell
    base = get_settings().public_url
    outbox_id = int(row.params["outbox_id"])
    context = {
        "kind": row.params["kind"],
        "outbox_id": outbox_id,
        "error": row.params["error"],
        "link": f"{base}/api/v1/outbox/dead-letters",
        "retry_link": f"{base}/api/v1/outbox/{outbox_id}/retry",
    }
    text, html = render_pair("outbox/dead_letter_alert", context)
    mail.send(
        mail.build_message(
            to=user.email,
            subject=f"Undelivered message set aside: {row.params['kind']} #{outbox_id}",
            text=text,
            html=html,
            message_id=mail.stable_message_id(f"outbox-{row.id}"),
        )
    )
