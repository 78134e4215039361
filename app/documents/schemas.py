from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel

from app.models import DocumentKind


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
