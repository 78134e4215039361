from __future__ import annotations

from pydantic import Field

from app.accounts.schemas import Email, StrictModel


class TestEmailIn(StrictModel):
    to: Email | None = Field(
        None, description="where to send the test e-mail; default: your own address"
    )


class TestEmailOut(StrictModel):
    outbox_id: int = Field(description="the outbox row; a failure shows in the dead-letter list")
    status: str = Field(description="`pending`: the worker sends it within seconds")
