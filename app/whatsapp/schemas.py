"""Pydantic models of the WhatsApp API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class WhatsAppReplyIn(BaseModel):
    text: str | None = Field(
        None, min_length=1, max_length=4096, description="free text: only inside the 24-hour window"
    )
    template: Literal["tried_to_reach", "acknowledgement"] | None = Field(
        None, description="an approved template, in the requester's language (neutral if discreet)"
    )


class WhatsAppReplyOut(BaseModel):
    id: int
    status: str
    template: str | None
    language: str | None
    queued_at: dt.datetime
    counts_as_first_response: bool


class WhatsAppWindowOut(BaseModel):
    mode: Literal["free_text", "templates_only", "unavailable"]
    free_text_until: dt.datetime | None = Field(
        None, description="end of the 24-hour customer-service window, while it is open"
    )
    last_inbound_at: dt.datetime | None
    templates: list[str]
    reason: Literal["window_open", "window_closed", "never_wrote", "no_number"] = Field(
        description="why, as a code to put in words in the reader's language: `window_open` "
        "(free text until `free_text_until`), `window_closed` (the requester's last message is "
        "more than 24 hours old), `never_wrote`, `no_number`"
    )
    explanation: str = Field(description="which applies and why, in English, in the caller's zone")
