"""Zoom's side of consultations: webhook events received (recognised when delivered twice) and
the per-host daily count of meeting creates and updates (Zoom caps them at 100)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId


class ZoomWebhookEvent(Base):
    __tablename__ = "zoom_webhook_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    # app.meetings.webhooks.parse_event's key: a second delivery of the same event is ignored.
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    # Zoom meeting ids do not fit 32 bits.
    meeting_id: Mapped[int | None] = mapped_column(BigInteger)
    meeting_uuid: Mapped[str | None] = mapped_column(String(200))
    event_ts: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[dt.datetime]
    processed_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_zoom_webhook_events_meeting_id", "meeting_id"),)


class ZoomDailyUsage(Base):
    """Creates and updates per Zoom host and UTC day (``INSERT ... ON CONFLICT`` increments)."""

    __tablename__ = "zoom_daily_usage"

    host: Mapped[str] = mapped_column(String(320), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
