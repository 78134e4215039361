"""Reference data: regions of expertise and countries with their profile (editable by admins).

A country outside the table is still accepted on the form; such a request belongs to the
``general`` triage pool (a null region).
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, str_enum

GENERAL_POOL = "general"


class CivicSpaceRating(enum.StrEnum):
    """CIVICUS Monitor's scale."""

    closed = "closed"
    repressed = "repressed"
    obstructed = "obstructed"
    narrowed = "narrowed"
    open = "open"


class Region(Timestamps, Base):
    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Set by a later issue (routing); until then a region may have no lead.
    lead_expert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Country(Timestamps, Base):
    __tablename__ = "countries"

    # ISO 3166-1 alpha-2; Kosovo uses the user-assigned XK.
    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str | None] = mapped_column(
        ForeignKey("regions.code", ondelete="RESTRICT", onupdate="CASCADE")
    )
    civic_space_rating: Mapped[CivicSpaceRating | None] = mapped_column(
        str_enum(CivicSpaceRating, "civic_space_rating", length=16)
    )
    # As precise as the source gives it: "2023-12" or "2023-12-05".
    rating_date: Mapped[str | None] = mapped_column(String(10))
    rating_source: Mapped[str | None] = mapped_column(String(200))
    staff_notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_countries_region_code", "region_code"),)
