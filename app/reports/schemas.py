"""SLA report shapes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.reports.service import Group, GroupFigures


class FiguresOut(BaseModel):
    key: str = Field(description="the group's key: a UTC date, region code, expert id, channel")
    label: str = Field(
        description="for people: the expert's public name, the region's name, else the key"
    )
    count: int = Field(
        description="requests that arrived in the range (met + breached + ended + open)"
    )
    met: int = Field(description="first response at or before the stored deadline")
    breached: int = Field(
        description="first response after it, or none and it has passed (also a request that "
        "ended at or after its deadline without a response)"
    )
    open_breached: int = Field(
        description="breached, still without a first response, and still open (not ended)"
    )
    open: int = Field(description="no response yet, deadline not reached, not ended")
    ended: int = Field(
        description="ended (withdrawn, spam, declined, closed, merged) before the deadline "
        "without a response: no SLA outcome, in neither the share nor the times"
    )
    share_within_hour: float | None = Field(
        description="met / (met + breached), each against its own stored target (ended ones "
        "are left out); null if none"
    )
    median_minutes: float | None = Field(
        description="median minutes to first response (met and breached ones answered)"
    )
    p90_minutes: float | None = Field(description="90th percentile minutes to first response")

    @classmethod
    def of(cls, f: GroupFigures) -> FiguresOut:
        return cls(
            key=f.key,
            label=f.label,
            count=f.count,
            met=f.met,
            breached=f.breached,
            open_breached=f.open_breached,
            open=f.open,
            ended=f.ended,
            share_within_hour=f.share_within_hour,
            median_minutes=f.median_minutes,
            p90_minutes=f.p90_minutes,
        )


class SlaReportOut(BaseModel):
    start: dt.datetime = Field(description="first instant counted (00:00 UTC of `from`)")
    end: dt.datetime = Field(description="first instant not counted (00:00 UTC after `to`)")
    group: Group
    total: FiguresOut
    groups: list[FiguresOut]
