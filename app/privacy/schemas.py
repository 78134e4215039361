from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.privacy.service import ErasureReason


class EraseIn(BaseModel):
    reason: ErasureReason = Field(
        ErasureReason.admin_decision,
        description="why (a fixed code, never free text: the audit trail keeps it)",
    )


class ErasedOut(BaseModel):
    reference: str
    erased_at: dt.datetime
    cleared: dict[str, int] = Field(description="how many rows of each kind were cleared")
