"""``GET /api/v1/reports/sla`` and ``.../sla.csv`` (staff and admins)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.accounts.deps import RequireStaff
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import SafeDate
from app.reports import service
from app.reports.schemas import FiguresOut, SlaReportOut
from app.reports.service import Group

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

FromQ = Annotated[
    SafeDate | None,
    Query(alias="from", description="first day of arrival (UTC), default 30 days ago"),
]
ToQ = Annotated[
    SafeDate | None,
    Query(alias="to", description="last day of arrival (UTC), included; default today"),
]
GroupQ = Annotated[Group, Query(description="day, region, expert or channel (how it arrived)")]

CSV_COLUMNS = [
    "group",
    "key",
    "label",
    "count",
    "met",
    "breached",
    "open_breached",
    "open",
    "ended",
    "share_within_hour",
    "median_minutes",
    "p90_minutes",
]


@router.get(
    "/sla",
    response_model=SlaReportOut,
    responses=error_responses(401, 403, 422),
    summary="First-response figures for requests that arrived in a date range, grouped",
)
def sla_report(
    session: SessionDep,
    _staff: RequireStaff,
    start: FromQ = None,
    end: ToQ = None,
    group: GroupQ = Group.day,
) -> SlaReportOut:
    report = service.report_for_dates(session, start, end, group)
    return SlaReportOut(
        start=report.start,
        end=report.end,
        group=report.group,
        total=FiguresOut.of(report.total),
        groups=[FiguresOut.of(g) for g in report.groups],
    )


@router.get(
    "/sla.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 403, 422)},
    summary="The same figures as CSV (one row per group, then the total)",
)
def sla_report_csv(
    session: SessionDep,
    _staff: RequireStaff,
    start: FromQ = None,
    end: ToQ = None,
    group: GroupQ = Group.day,
) -> Response:
    report = service.report_for_dates(session, start, end, group)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for figures in [*report.groups, report.total]:
        out = FiguresOut.of(figures).model_dump()
        writer.writerow([report.group.value, *(_cell(out[c]) for c in CSV_COLUMNS[1:])])
    last = (report.end - dt.timedelta(days=1)).date()
    name = f"sla-{report.group.value}-{report.start.date()}-{last}.csv"
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # No formula injection when the file is opened in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
