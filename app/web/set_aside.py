"""``/staff/inbound/set-aside``: the mail set aside (auto-replies, list mail, bounces, read
receipts, our own mail, loops, unreadable mail), newest first, with why; staff and admins, through
the staff pages' session (``app/web/auth.py``). Each entry that kept its encrypted copy has an
"Open as a request" form (CSRF-checked) calling the same service as
``POST /api/v1/inbound/set-aside/{id}/open``."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core.deps import SessionDep
from app.core.errors import AppError
from app.core.validation import SafeStr
from app.flows import request as flows
from app.inbound import set_aside
from app.inbound.errors import SetAsideNotFound
from app.models import SetAsideReason, User
from app.web.auth import CsrfForm, StaffPageUser, page, redirect
from app.web.staff import undo

router = APIRouter(include_in_schema=False)
PATH = "/staff/inbound/set-aside"
PAGE_SIZE = 50


def N_(text: str) -> str:
    return text


REASONS: dict[str, str] = {
    SetAsideReason.auto_reply.value: N_("Automatic reply"),
    SetAsideReason.mailing_list.value: N_("Mailing list or newsletter"),
    SetAsideReason.read_receipt.value: N_("Read receipt"),
    SetAsideReason.bounce.value: N_("Bounce"),
    SetAsideReason.delivery_report_unmatched.value: N_(
        "Delivery report about mail we did not send"
    ),
    SetAsideReason.own_mail.value: N_("Our own mail came back"),
    SetAsideReason.loop.value: N_("Mail loop"),
    SetAsideReason.unreadable.value: N_("Not readable as an e-mail"),
}


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def render(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    params = request.query_params
    reason_value = params.get("reason") or ""
    reason = SetAsideReason(reason_value) if reason_value in REASONS else None
    cursor = (params.get("cursor") or "")[:200] or None
    try:
        found = set_aside.listing(session, limit=PAGE_SIZE, reason=reason, cursor=cursor)
    except AppError as exc:  # a cursor that is not one of ours: the first page, and why
        found = set_aside.listing(session, limit=PAGE_SIZE, reason=reason)
        error = error or exc.message
    older = None
    if found.next_cursor:
        query = {"cursor": found.next_cursor, **({"reason": reason.value} if reason else {})}
        older = f"{PATH}?{urlencode(query)}"
    opened = params.get("opened") if params.get("done") == "opened" else None
    context = {
        "title": N_("Mail set aside"),
        "items": found.items,
        "retention_days": found.retention_days,
        "reasons": REASONS,
        "reason": reason.value if reason else "",
        "older": older,
        "error": error,
        "opened": opened if opened and opened.isalnum() and len(opened) <= 16 else None,
        "opened_as": params.get("as") if params.get("as") in ("created", "reply") else None,
        "size_text": size_text,
    }
    return page(request, "staff/set_aside.html", context, user=user, status=status)


@router.get(PATH)
def set_aside_page(request: Request, session: SessionDep, user: StaffPageUser) -> Response:
    return render(request, session, user)


@router.post(PATH + "/{set_aside_id}/open")
def open_page(
    set_aside_id: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    _form: CsrfForm,
) -> Response:
    try:
        outcome = flows.open_set_aside(session, _uuid(set_aside_id), user)
    except AppError as exc:
        undo(session)
        return render(request, session, user, error=exc.message, status=exc.status_code)
    query = urlencode({"done": "opened", "opened": outcome.reference or "", "as": outcome.action})
    return redirect(f"{PATH}?{query}")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise SetAsideNotFound() from None
