"""Experts' own calendars and the calendar feed of their consultations.

- ``CalendarConnection``: one calendar an expert reads busy times from: a private ICS address
  (``kind = ics``) or a CalDAV account (``kind = caldav``: address, user, app password). The
  address and the password are secrets: stored encrypted with the master key
  (``secret_enc`` holds both as JSON, ``secret_key_id`` names the key); ``address_hint`` is the
  host and the address's last characters, for people to recognise it. The refresh state:
  validators of the last answer (``etag``, ``last_modified``) for a conditional GET, the last
  success and error, ``failing_since`` (the first failure after the last success),
  ``failures`` in a row (the backoff's exponent), ``next_refresh_at`` (due for the worker),
  ``alerted_at`` (the "cannot be read" alert went out for the current run of failures).
- ``CalendarBusy``: the busy times of a connection's last good read (UTC instants); a failed
  read keeps them. ``event_key`` is a hash of the event's UID and occurrence (no titles, no
  descriptions are stored).
- ``CalendarConflictAlert``: one row per (consultation, calendar event) found overlapping: the
  unique constraint makes the alert go out once.
- ``ConsultationFeed``: an expert's private feed address of their consultations; the token is
  stored as a SHA-256 hash for look-up and a copy encrypted with the master key so that the
  expert can see the address again. No row: no feed (revoked).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps, UUIDPk, str_enum


class CalendarKind(enum.StrEnum):
    ics = "ics"
    caldav = "caldav"


class CalendarConnection(UUIDPk, Timestamps, Base):
    __tablename__ = "calendar_connections"

    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CalendarKind] = mapped_column(str_enum(CalendarKind, "calendar_kind", length=8))
    label: Mapped[str] = mapped_column(String(100))
    address_hint: Mapped[str] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(320))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_attempt_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[dt.datetime | None]
    failures: Mapped[int] = mapped_column(default=0)
    next_refresh_at: Mapped[dt.datetime] = mapped_column(index=True)
    alerted_at: Mapped[dt.datetime | None]
    busy_count: Mapped[int] = mapped_column(default=0)


class CalendarBusy(Base):
    __tablename__ = "calendar_busy"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calendar_connections.id", ondelete="CASCADE"), index=True
    )
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE")
    )
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    event_key: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_calendar_busy_expert_id_starts_at", "expert_id", "starts_at"),)


class CalendarConflictAlert(Base):
    __tablename__ = "calendar_conflict_alerts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    consultation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE")
    )
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calendar_connections.id", ondelete="CASCADE"), index=True
    )
    event_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint(
            "consultation_id",
            "event_key",
            name="uq_calendar_conflict_alerts_consultation_event",
        ),
    )


class ConsultationFeed(Base):
    __tablename__ = "consultation_feeds"

    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    token_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    last_read_at: Mapped[dt.datetime | None]
