"""Saved replies in and out of the API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["en", "ru", "es", "ar"]


class SavedReplyIn(BaseModel):
    title: str = Field(
        min_length=1, max_length=120, description="what staff pick it by; unique per language"
    )
    language: Language = Field(description="the language of the text (the requester's)")
    body: str = Field(
        min_length=1,
        max_length=20_000,
        description="the text inserted into the reply box (the e-mail adds the greeting and the "
        "signature: start with what you have to say)",
    )


class SavedReplyPatch(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=120)
    language: Language | None = None
    body: str | None = Field(None, min_length=1, max_length=20_000)


class SavedReplyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    language: str
    body: str
    updated_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
