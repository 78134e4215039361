"""Operations: the heartbeats that workers and beat write, and the watchdog's memory of which
silence it has already e-mailed the admins about (app/ops)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ProcessHeartbeat(Base):
    """One row per worker or beat process, refreshed every ``INTAKE_HEARTBEAT_SECONDS``."""

    __tablename__ = "process_heartbeats"

    # Celery's node name for a worker ("worker-123@host"), "beat@host:pid" for beat.
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    # "worker" or "beat".
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime]
    seen_at: Mapped[dt.datetime]

    __table_args__ = (Index("ix_process_heartbeats_kind_seen_at", "kind", "seen_at"),)


class WatchdogAlert(Base):
    """Per kind of process, the heartbeat the last alert e-mail was about: one e-mail per silence,
    however many API processes watch."""

    __tablename__ = "watchdog_alerts"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The newest heartbeat seen when the alert went out (null: none had ever been seen).
    silent_since: Mapped[dt.datetime | None]
    alerted_at: Mapped[dt.datetime]
