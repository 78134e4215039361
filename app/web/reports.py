"""``GET /staff/reports``: the SLA report as a page with charts drawn on the server
(``app/reports/svg.py``: inline SVG, no scripts). Staff and admins, through the staff pages'
session cookie (``app/web/auth.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from babel import Locale
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.core.deps import SessionDep
from app.core.errors import AppError
from app.core.time import now
from app.core.validation import parse_date
from app.models import GENERAL_POOL
from app.reports import service as reports
from app.reports import svg
from app.reports.service import Group
from app.web import i18n
from app.web.auth import StaffPageUser, page, page_language
from app.web.i18n import N_
from app.web.staff import SOURCE_LABELS

# Group keys that are codes, said in words (regions come named from the report itself).
KEY_WORDS: dict[str, str] = {**SOURCE_LABELS, GENERAL_POOL: N_("General pool (no region)")}


def _in_words(report: reports.Report, tr: Callable[[str], str]) -> reports.Report:
    groups = [
        replace(g, label=tr(KEY_WORDS[g.key])) if g.label == g.key and g.key in KEY_WORDS else g
        for g in report.groups
    ]
    return replace(report, groups=groups)


router = APIRouter(include_in_schema=False)
# The charts' own text (app/reports/svg.py::NO_DATA), marked here for the catalogs.
NO_DATA = N_("No data in this range")


@router.get("/staff/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
) -> HTMLResponse:
    try:
        frm = parse_date(request.query_params.get("from"), "from")
        to = parse_date(request.query_params.get("to"), "to")
        lo, hi = reports.date_range(frm, to)
    except AppError as exc:
        lo, hi = reports.date_range(None, None)
        error: str | None = exc.message
    else:
        error = None
    # The charts in the viewer's language: their texts translated here, the weekdays Babel's.
    lang = page_language(request, user)
    tr = i18n.translations(lang).gettext
    by_day = reports.sla_report(session, lo, hi, Group.day)
    by_region = _in_words(reports.sla_report(session, lo, hi, Group.region), tr)
    by_channel = _in_words(reports.sla_report(session, lo, hi, Group.channel), tr)
    days = [g.key for g in by_day.groups]
    times_chart = svg.line_chart(
        tr(N_("Minutes to first response by day of arrival (UTC)")),
        days,
        [
            svg.Series(tr(N_("median")), [g.median_minutes for g in by_day.groups]),
            svg.Series(tr(N_("90th percentile")), [g.p90_minutes for g in by_day.groups]),
        ],
        gettext=tr,
    )
    breach_chart = svg.bar_chart(
        tr(N_("Breached requests by region")),
        [g.label for g in by_region.groups],
        [float(g.breached) for g in by_region.groups],
        gettext=tr,
    )
    arrivals = reports.arrivals_by_hour_of_week(session, lo, hi)
    week = reports.monday_of(now())
    coverage = reports.coverage_by_hour_of_week(session, week)
    weekdays = Locale.parse(lang).days["format"]["abbreviated"]
    hours = [f"{weekdays[h // 24]} {h % 24:02d}:00" for h in range(168)]
    coverage_chart = svg.bars_with_line(
        tr(N_("Arrivals by hour of the week (UTC) against staff on duty this week")),
        hours,
        svg.Series(tr(N_("requests arrived (range)")), [float(a) for a in arrivals]),
        svg.Series(tr(N_("staff on duty (roster)")), [float(c) for c in coverage]),
        gettext=tr,
    )
    context = {
        "title": N_("SLA reports"),
        "start": lo.date().isoformat(),
        "end": (hi - dt.timedelta(days=1)).date().isoformat(),
        "error": error,
        "total": by_day.total,
        "by_day": by_day.groups,
        "by_region": by_region.groups,
        "by_channel": by_channel.groups,
        "times_chart": times_chart,
        "breach_chart": breach_chart,
        "coverage_chart": coverage_chart,
        "uncovered_hours": sum(1 for c in coverage if c == 0),
        "week": week.date().isoformat(),
    }
    # A refused range still shows the default one, with the error and a 4xx naming the field.
    return page(request, "reports/sla.html", context, user=user, status=422 if error else 200)
