"""All outbound work (e-mail now, meetings later) is a row first, written in the same transaction
as the change that causes it, and claimed by the worker. Rows hold ids, never personal data:
the message is rendered at send time."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps, str_enum


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    claimed = "claimed"
    sent = "sent"
    dead = "dead"
    cancelled = "cancelled"


class OutboxMessage(Timestamps, Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Ids of what the message is about, e.g. {"user_id": "...", "token_id": "..."}.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Unique when set: writing the same logical message twice is a no-op.
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status", length=16),
        default=OutboxStatus.pending,
    )
    due_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[dt.datetime | None]
    # Correlates the worker's log lines with the API request that caused the message.
    correlation_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_outbox_status_due_at", "status", "due_at"),)
