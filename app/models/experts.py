"""Experts: a profile beside a ``users`` row of role expert, what they cover, and when they are
away.

``UnavailablePeriod`` is THE one absence model (leave and days off): routing reads it (no
assignment while away) and scheduling reads it (no slots while away).

``open_assignments`` is a counter of the expert's live assignments (offered or accepted),
changed only in the transaction that changes an assignment, with a conditional
``UPDATE ... WHERE open_assignments < max_open_assignments`` so concurrent routings can never
push an expert past capacity.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntId, Timestamps, str_enum


class AbsenceKind(enum.StrEnum):
    leave = "leave"
    day_off = "day_off"


class ExpertProfile(Timestamps, Base):
    __tablename__ = "expert_profiles"

    # The expert's id everywhere (assignments, requests.assigned_expert_id, regions' lead) is
    # the id of their user account.
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    public_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64))
    # BCP 47 tags, e.g. ["ru", "en"]; matched on the primary subtag.
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_open_assignments: Mapped[int] = mapped_column(default=10)
    open_assignments: Mapped[int] = mapped_column(default=0)
    zoom_user: Mapped[str | None] = mapped_column(String(320))
    personal_meeting_link: Mapped[str | None] = mapped_column(String(500))
    cv_document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL")
    )
    bio: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_assigned_at: Mapped[dt.datetime | None]

    __table_args__ = (
        CheckConstraint("open_assignments >= 0", name="open_assignments_non_negative"),
        CheckConstraint("max_open_assignments >= 0", name="max_open_assignments_non_negative"),
    )


class ExpertRegion(Base):
    __tablename__ = "expert_regions"

    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE"), primary_key=True
    )
    region_code: Mapped[str] = mapped_column(
        ForeignKey("regions.code", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_expert_regions_region_code", "region_code"),)


class ExpertCountry(Base):
    __tablename__ = "expert_countries"

    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: an expert may cover a country outside the regions' table.
    country_code: Mapped[str] = mapped_column(String(2), primary_key=True)

    __table_args__ = (Index("ix_expert_countries_country_code", "country_code"),)


class UnavailablePeriod(Base):
    """An expert is away during ``[starts_at, ends_at)`` (UTC instants)."""

    __tablename__ = "unavailable_periods"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    expert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expert_profiles.user_id", ondelete="CASCADE")
    )
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    kind: Mapped[AbsenceKind] = mapped_column(str_enum(AbsenceKind, "absence_kind", length=16))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_unavailable_periods_expert_id_ends_at", "expert_id", "ends_at"),
    )
