"""Outbox handlers of the WhatsApp channel: take a stored webhook delivery, send one message.

Both call the Cloud API from the worker, never from a request. A rate limit (429, 130429,
131056) comes back as ``RetryLater`` with its wait; 5xx, timeouts and no answer raise, so the
outbox retries with backoff as it does Zoom's calls; a refused message is marked failed (no
retry can help); a refused access token dead-letters the row and alerts staff.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import OutboxMessage
from app.outbox.registry import PermanentFailure, handler
from app.whatsapp import service
from app.whatsapp.client import WhatsAppClient


@handler(service.INBOX_KIND)
def take_inbox(session: Session, row: OutboxMessage) -> None:
    if not service.configured():
        # Messages still come in (text is kept); media wait for a connected account.
        service.process_inbox(session, int(row.params["inbox_id"]), None)
        return
    with WhatsAppClient() as client:
        service.process_inbox(session, int(row.params["inbox_id"]), client)


@handler(service.SEND_KIND)
def send_message(session: Session, row: OutboxMessage) -> None:
    if not service.configured():
        raise PermanentFailure("WhatsApp is not connected (INTAKE_WHATSAPP_ACCESS_TOKEN)")
    with WhatsAppClient() as client:
        service.send(session, int(row.params["whatsapp_message_id"]), client)
