"""Outbox handlers of the WhatsApp channel: take a stored webhook delivery, send one message.

Both call the Cloud API from the worker, never from a request. A rate limit (429, 130429,
131056) comes back as ``RetryLater`` with its wait; 5xx, timeouts and no answer raise, so the
outbox retries with backoff as it does Zoom's calls; a refused message is marked failed (no
retry can help); a refused access token dead-letters the row and alerts staff. An automatic
message given a fallback (the e-mail a WhatsApp-preferring requester would otherwise have had)
falls back instead of dead-lettering: when WhatsApp is disconnected, its token refused, or it is
still down on the last attempt (``service.fall_back``).
"""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import OutboxMessage
from app.outbox.registry import PermanentFailure, handler
from app.whatsapp import service
from app.whatsapp.client import WhatsAppAuthError, WhatsAppClient
from app.whatsapp.errors import WhatsAppRateLimited, WhatsAppUnavailable

log = structlog.get_logger(__name__)


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
    """An automatic message with a fallback (the e-mail) falls back instead of dead-lettering
    when WhatsApp is disconnected or still down on the last attempt."""
    wm_id = int(row.params["whatsapp_message_id"])
    if not service.configured():
        if service.fall_back(session, wm_id):
            return
        raise PermanentFailure("WhatsApp is not connected (INTAKE_WHATSAPP_ACCESS_TOKEN)")
    try:
        with WhatsAppClient() as client:
            service.send(session, wm_id, client)
    except (WhatsAppUnavailable, WhatsAppRateLimited, WhatsAppAuthError) as exc:
        last = row.attempts >= get_settings().outbox_max_attempts
        code = None if isinstance(exc, WhatsAppAuthError) else exc.code
        if (last or isinstance(exc, WhatsAppAuthError)) and service.fall_back(session, wm_id, code):
            log.warning("whatsapp_fell_back", error=type(exc).__name__)
            return
        raise
