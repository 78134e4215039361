from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from app.models import OutboxStatus


class DeadLetterOut(BaseModel):
    """A dead-lettered outbox row as staff see it. Rows hold ids only, so nothing personal."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    attempts: int
    last_error: str | None = Field(description="the last failure: error class and message")
    due_at: dt.datetime = Field(description="when it was last due")
    updated_at: dt.datetime = Field(description="when it was dead-lettered")


class DeadLettersOut(BaseModel):
    items: list[DeadLetterOut]


class RetryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: OutboxStatus
    attempts: int = Field(description="starts over at 0")
    due_at: dt.datetime
