"""The audit trail: one row per recorded action, chained by hash.

Rows are only ever inserted (no update or delete path in the code; on PostgreSQL and SQLite a
trigger refuses UPDATE and DELETE). ``seq`` is assigned by the writer under a lock, so the chain
is linear: ``row_hash`` = SHA-256 over a canonical serialisation of the row and ``prev_hash``
(the previous row's ``row_hash``). ``details`` holds small, non-personal facts only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

AuditSeq = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(AuditSeq, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    # A user's id, "requester", "anonymous" or "system".
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    # e.g. "GET /api/v1/cases/{reference}", "auth.login", "privacy.erase".
    action: Mapped[str] = mapped_column(String(160))
    # A case reference, a user id, a setting ("region=EA"), or nothing.
    target: Mapped[str | None] = mapped_column(String(160))
    # ok, denied, not_found, error.
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        Index("ix_audit_events_target_seq", "target", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
    )
