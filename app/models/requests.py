"""Requests from applicants and law firms, their history, and idempotency records.

Personal data (names, contact details, the case summary, the copy of the link token, a stored
idempotent reply) is encrypted with the request's own data key, itself wrapped by the master key
(``data_key_enc`` + ``data_key_id``). Everything staff queues and statistics need is in clear,
non-personal columns. Look-ups by e-mail use ``email_lookup``: HMAC-SHA256 under a lookup key
that is stored wrapped in ``secret_keys`` (stable across master-key rotation).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps, UUIDPk, str_enum


class RequestStatus(enum.StrEnum):
    new = "new"
    in_progress = "in_progress"
    consultation_scheduled = "consultation_scheduled"
    consultation_held = "consultation_held"
    report_ordered = "report_ordered"
    closed = "closed"
    declined = "declined"
    spam = "spam"
    withdrawn = "withdrawn"


class RequesterType(enum.StrEnum):
    applicant = "applicant"
    law_firm = "law_firm"


class ContactChannel(enum.StrEnum):
    email = "email"
    phone = "phone"
    whatsapp = "whatsapp"


class CaseStage(enum.StrEnum):
    not_filed = "not_filed"
    filed_pending = "filed_pending"
    refused_appeal = "refused_appeal"
    hearing_scheduled = "hearing_scheduled"
    other = "other"


class RequestSource(enum.StrEnum):
    form = "form"
    email = "email"
    whatsapp = "whatsapp"


class SecretKey(Base):
    """Service-wide secrets other than the master key, stored wrapped by it (re-wrapped by
    ``rotate-key``), e.g. the key of the e-mail look-up hash."""

    __tablename__ = "secret_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class IntakeRequest(UUIDPk, Timestamps, Base):
    __tablename__ = "requests"

    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, "request_status"))
    source: Mapped[RequestSource] = mapped_column(str_enum(RequestSource, "request_source"))
    requester_type: Mapped[RequesterType] = mapped_column(str_enum(RequesterType, "requester_type"))
    preferred_channel: Mapped[ContactChannel] = mapped_column(
        str_enum(ContactChannel, "contact_channel")
    )
    # No foreign key: any valid country is accepted, not only those in the table. Null: not
    # known yet (a request that arrived by e-mail, until staff complete it in triage).
    country_of_origin: Mapped[str | None] = mapped_column(String(2))
    country_of_residence: Mapped[str | None] = mapped_column(String(2))
    # The region at submission (null: the general pool). A plain copy, for queues and figures.
    region_code: Mapped[str | None] = mapped_column(String(64))
    case_stage: Mapped[CaseStage] = mapped_column(str_enum(CaseStage, "case_stage"))
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    wants: Mapped[list[str]] = mapped_column(JSON, default=list)
    consent_updates: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(35))
    timezone: Mapped[str] = mapped_column(String(64))
    discreet: Mapped[bool] = mapped_column(default=False)
    privacy_notice_version: Mapped[str] = mapped_column(String(32))
    consent_given_at: Mapped[dt.datetime]

    received_at: Mapped[dt.datetime]
    sla_minutes: Mapped[int]  # the first-response target in force at submission
    first_response_due_at: Mapped[dt.datetime]
    first_responded_at: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]
    # When the request left the open queue: it reached a final status (closed, declined, spam,
    # withdrawn) or was merged into another request; null while open. Undoing a merge puts it
    # back (or to the final status's instant). The SLA rule reads it (app/intake/sla.py).
    ended_at: Mapped[dt.datetime | None]
    # Set when the request's personal data was erased (its data key destroyed).
    erased_at: Mapped[dt.datetime | None]
    assigned_expert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # The earlier request of the same address and country within a day (for staff).
    linked_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL")
    )

    # A duplicate merged by staff into another request (unlinking clears it).
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL")
    )

    # Encrypted with the data key; the data key wrapped by the master key.
    data_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    data_key_id: Mapped[str | None] = mapped_column(String(64))
    pii_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_lookup: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_requests_email_lookup", "email_lookup"),
        Index("ix_requests_status_due", "status", "first_response_due_at"),
        Index("ix_requests_received_at", "received_at"),
    )


class RequestHistory(Base):
    """One row per change of a request. ``details`` holds non-personal facts only; anything
    personal goes into ``data_enc`` (encrypted with the request's data key)."""

    __tablename__ = "request_history"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="RESTRICT"))
    at: Mapped[dt.datetime]
    # "requester", "system", "user:<uuid>".
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_request_history_request_id", "request_id"),)


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` seen on submission: the body's hash and the first reply
    (encrypted with the request's data key, since it carries the link token)."""

    __tablename__ = "idempotency_records"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    status_code: Mapped[int]
    response_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]
