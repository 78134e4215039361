"""Documents (experts' CVs now, sample reports later): stored once by ``app.documents``.

The bytes live either in ``data`` (storage ``db``) or in a file named by ``path`` under
``INTAKE_DOCUMENT_DIR`` (storage ``path``); ``sha256`` is checked when the file is served.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UUIDPk, str_enum


class DocumentKind(enum.StrEnum):
    cv = "cv"
    sample_report = "sample_report"
    attachment = "attachment"


class DocumentStorage(enum.StrEnum):
    db = "db"
    path = "path"


class Document(UUIDPk, Base):
    __tablename__ = "documents"

    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, "document_kind", length=16))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage: Mapped[DocumentStorage] = mapped_column(
        str_enum(DocumentStorage, "document_storage", length=16)
    )
    # Relative to INTAKE_DOCUMENT_DIR (storage "path").
    path: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Tags for finding documents later (sample reports by country or region).
    country_code: Mapped[str | None] = mapped_column(String(2))
    region_code: Mapped[str | None] = mapped_column(String(64))
    # The expert a CV belongs to: they may read it besides staff and admins.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        Index("ix_documents_kind_country_code", "kind", "country_code"),
        Index("ix_documents_owner_id", "owner_id"),
    )
