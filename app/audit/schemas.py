from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class AuditEventOut(BaseModel):
    seq: int = Field(description="position in the chain (1, 2, ...)")
    at: dt.datetime
    actor: str = Field(description="a user's id, `requester`, `anonymous` or `system`")
    actor_role: str | None = Field(None, description="admin, staff, expert, requester")
    address: str | None = Field(None, description="the caller's IP address")
    user_agent: str | None = None
    action: str = Field(
        description="route template with method (`GET /api/v1/cases/{reference}`) "
        "or a named action (`auth.login`, `privacy.erase`, `retention.run`)"
    )
    target: str | None = Field(None, description="case reference, user id or changed setting")
    outcome: str = Field(description="ok, denied, not_found or error")
    status_code: int | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="non-personal facts")
    prev_hash: str
    row_hash: str


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: int | None = Field(
        None, description="pass as `cursor` for the next (older) page; null on the last page"
    )
