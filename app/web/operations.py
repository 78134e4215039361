"""``/admin/operations``: how the service itself is doing (admins only).

One page with the outbox's state, the dead letters with a retry, Zoom's daily count per host
and what ``asylum-intake check`` reports (the settings with secrets masked, the reachability of
the database, the broker and the mail server); the audit search with its CSV on
``/admin/operations/audit``. Every figure comes from the service the API calls
(``app/outbox/service.py``, ``app/audit/service.py``, ``app/meetings/usage.py``,
``app/health/service.py``): the page adds no query of its own.

Dead letters and their retry are a staff action in the API too, so staff open them on
``/admin/operations/dead-letters`` and may retry; the rest is for admins (staff: 403). The
retry and every read of the audit trail are recorded by ``AuditMiddleware`` like the API's.
The reachability checks block (short timeouts): the handlers are plain ``def``, run in a
thread, never on the event loop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.audit import service as audit
from app.core.deps import SessionDep
from app.core.errors import AppError
from app.core.settings import get_settings
from app.core.time import now
from app.core.validation import DB_ID_MAX, DbId, parse_date
from app.health import service as health
from app.meetings import usage
from app.meetings.quota import usage_day
from app.models import Role, User
from app.outbox import service as outbox
from app.web.auth import AdminPageUser, CsrfForm, StaffPageUser, page, redirect
from app.web.i18n import N_, Text, filled
from app.web.staff import undo

router = APIRouter(include_in_schema=False)
PATH = "/admin/operations"
DEAD_LETTERS_PATH = PATH + "/dead-letters"
AUDIT_PATH = PATH + "/audit"
DEAD_LETTERS_SHOWN = 100
AUDIT_PAGE_SIZE = 50
# The filters' limits, as the API's query parameters have them.
FILTER_LIMITS = {"actor": 254, "action": 160, "reference": 16}


def _dead_letters_home(user: User) -> str:
    return PATH if user.role == Role.admin else DEAD_LETTERS_PATH


def _dead_letters(session: SessionDep) -> Any:
    return outbox.dead_letters(session, limit=DEAD_LETTERS_SHOWN)


def _done(request: Request) -> str | None:
    return {"retried": N_("The message is due again: the worker sends it shortly.")}.get(
        request.query_params.get("done", "")[:20]
    )


@router.get(PATH)
def operations(request: Request, session: SessionDep, user: AdminPageUser) -> Response:
    return _operations(request, session, user)


def _operations(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    stats = outbox.stats(session)
    today = usage_day(now())
    context = {
        "title": N_("Operations"),
        "stats": stats,
        "dead_letters": _dead_letters(session),
        "zoom_day": today,
        "zoom_usage": usage.daily_counts(session, today),
        # Blocking, with short timeouts: this handler runs in a thread, not on the loop.
        "check": health.check_report(get_settings()),
        "flash": _done(request),
        "error": error,
    }
    return page(request, "staff/operations.html", context, user=user, status=status)


@router.get(DEAD_LETTERS_PATH)
def dead_letters(request: Request, session: SessionDep, user: StaffPageUser) -> Response:
    return _dead_letters_page(request, session, user)


def _dead_letters_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    context = {
        "title": N_("Dead letters"),
        "dead_letters": _dead_letters(session),
        "flash": _done(request),
        "error": error,
    }
    return page(request, "staff/dead_letters.html", context, user=user, status=status)


@router.post(DEAD_LETTERS_PATH + "/{message_id}/retry")
def retry(
    message_id: DbId,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    _form: CsrfForm,
) -> Response:
    try:
        outbox.retry_dead_letter(session, message_id)
    except AppError as exc:  # gone, or no longer dead-lettered (someone retried it first)
        undo(session)
        render = _operations if user.role == Role.admin else _dead_letters_page
        return render(request, session, user, error=exc.message, status=exc.status_code)
    return redirect(f"{_dead_letters_home(user)}?done=retried#dead-letters")


# The audit trail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """The search's filters as typed on the page: dates are whole UTC days, ``to`` included."""

    actor: str = ""
    action: str = ""
    reference: str = ""
    start: dt.date | None = None
    end: dt.date | None = None

    def service_filters(self) -> dict[str, Any]:
        """The filters the API takes (``since`` inclusive, ``until`` exclusive)."""
        return {
            "actor": self.actor or None,
            "action": self.action or None,
            "reference": self.reference or None,
            "since": _midnight(self.start) if self.start else None,
            "until": _midnight(self.end + dt.timedelta(days=1)) if self.end else None,
        }

    def query(self, **extra: str) -> str:
        values = {
            "actor": self.actor,
            "action": self.action,
            "reference": self.reference,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v})


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def _text(request: Request, name: str, errors: dict[str, str | Text]) -> str:
    value = (request.query_params.get(name) or "").strip()
    if len(value) > FILTER_LIMITS[name]:
        errors[name] = filled(N_("At most %(num)d characters."), num=FILTER_LIMITS[name])
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        errors[name] = N_("Control characters are not allowed.")
        return ""
    return value


def _date(request: Request, name: str, errors: dict[str, str | Text]) -> dt.date | None:
    raw = (request.query_params.get(name) or "").strip()[:40]
    try:
        value = parse_date(raw, name)
    except AppError as exc:
        errors[name] = exc.message
        return None
    if raw and value is None:
        errors[name] = N_("Enter a date as YYYY-MM-DD.")
    return value


def _filters(request: Request) -> tuple[AuditFilters, dict[str, str | Text]]:
    errors: dict[str, str | Text] = {}
    filters = AuditFilters(
        actor=_text(request, "actor", errors),
        action=_text(request, "action", errors),
        reference=_text(request, "reference", errors),
        start=_date(request, "from", errors),
        end=_date(request, "to", errors),
    )
    if filters.start and filters.end and filters.end < filters.start:
        errors["to"] = N_("The last day comes before the first.")
    return filters, errors


def _cursor(request: Request) -> int | None:
    raw = (request.query_params.get("cursor") or "")[:20]
    if raw.isdigit() and 1 <= int(raw) <= DB_ID_MAX:
        return int(raw)
    return None


@router.get(AUDIT_PATH)
def audit_search(request: Request, session: SessionDep, user: AdminPageUser) -> Response:
    filters, errors = _filters(request)
    rows: list[Any] = []
    older = None
    if not errors:
        found = audit.search(
            session,
            limit=AUDIT_PAGE_SIZE + 1,
            before_seq=_cursor(request),
            **filters.service_filters(),
        )
        rows = list(found[:AUDIT_PAGE_SIZE])
        if len(found) > AUDIT_PAGE_SIZE:
            older = f"{AUDIT_PATH}?{filters.query(cursor=str(rows[-1].seq))}"
    context = {
        "title": N_("Audit trail"),
        "filters": filters,
        "rows": rows,
        "older": older,
        "csv_link": f"{AUDIT_PATH}.csv" + (f"?{q}" if (q := filters.query()) else ""),
        "errors": errors,
    }
    status = 422 if errors else 200
    return page(request, "staff/audit.html", context, user=user, status=status)


@router.get(AUDIT_PATH + ".csv")
def audit_csv(request: Request, session: SessionDep, user: AdminPageUser) -> Response:
    filters, errors = _filters(request)
    if errors:
        context = {"title": N_("Audit trail"), "filters": filters, "rows": [], "errors": errors}
        return page(request, "staff/audit.html", context, user=user, status=422)
    return Response(
        audit.csv_text(session, **filters.service_filters()),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
