from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel

from app.models import Document, DocumentKind


class DocumentOut(BaseModel):
    id: uuid.UUID
    kind: DocumentKind
    filename: str
    content_type: str
    size: int
    sha256: str
    country_code: str | None
    region_code: str | None
    created_at: dt.datetime


def document_out(doc: Document) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        kind=doc.kind,
        filename=doc.filename,
        content_type=doc.content_type,
        size=doc.size,
        sha256=doc.sha256,
        country_code=doc.country_code,
        region_code=doc.region_code,
        created_at=doc.created_at,
    )
