from __future__ import annotations

from app.core.errors import Conflict, NotFound


class OutboxMessageNotFound(NotFound):
    code = "outbox_message_not_found"


class NotDeadLettered(Conflict):
    code = "not_dead_lettered"
