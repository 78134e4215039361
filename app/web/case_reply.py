"""The reply box's two steps, shared by the staff case page and the expert's own case page.

``preview`` shows the exact e-mail (``app/cases/reply_mail.py`` builds it, the same function
the outbox handler sends with) and a Send button that carries the preview's digest;
``send_previewed`` sends only the e-mail whose digest the page showed: without a digest the
preview comes first, a body that opens with a greeting is refused (the e-mail greets already,
422), and an e-mail that changed since it was seen is shown again instead of sent (409).
Both raise the service's ``AppError`` for a refused reply (empty, too long, no address,
erased); each page shows that beside its own form.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.cases import service as cases
from app.models import IntakeRequest, User
from app.web.auth import page
from app.web.i18n import N_, Text, filled
from app.web.saved_replies import LANGUAGE_NAMES

PREVIEW_TEMPLATE = "staff/case_reply_preview.html"
CHANGED = N_("The e-mail changed since you saw it. Check it again, then send it.")


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def reply_values(form: FormData) -> dict[str, str]:
    """The reply box's fields: subject, body and the previewed e-mail's digest."""
    return {
        "subject": _text(form, "subject", 400),
        # Browsers send a form's line breaks as CRLF: kept as LF, as typed.
        "body": _text(form, "body", 40_000).replace("\r\n", "\n"),
        "digest": _text(form, "digest", 64),
    }


def render_preview(
    request: Request,
    user: User,
    req: IntakeRequest,
    composed: cases.ComposedReply,
    values: dict[str, str],
    *,
    case_url: str,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """The e-mail exactly as it will be sent, with a Send button for exactly that e-mail; a
    body that opens with a greeting gets no Send button (the e-mail greets already).
    ``case_url``: the case page the forms post to (``/staff/cases/R`` or ``/expert/cases/R``)."""
    greeting = cases.leading_greeting(values["body"])
    errors: dict[str, str | Text] = {}
    if greeting is not None:
        errors["reply_body"] = filled(
            N_(
                "Your text starts with a greeting (%(greeting)s), and the e-mail already greets "
                "the requester by name. Remove it, then preview again."
            ),
            greeting=greeting,
        )
    ctx = {
        "title": filled(N_("Preview of the reply on %(reference)s"), reference=req.reference),
        "req": req,
        "case_url": case_url,
        "composed": composed,
        "digest": cases.preview_digest(composed),
        "values": values,
        "errors": errors,
        "can_send": greeting is None,
        "notice": notice,
        "language_names": LANGUAGE_NAMES,
    }
    return page(request, PREVIEW_TEMPLATE, ctx, user=user, status=status)


def preview(
    request: Request,
    session: Session,
    user: User,
    req: IntakeRequest,
    values: dict[str, str],
    *,
    case_url: str,
) -> Response:
    """The reply box's first step: the exact e-mail (nothing is stored or sent). Raises the
    reply's ``AppError`` when the reply itself would be refused."""
    composed = cases.preview_reply(session, req, user, values["body"], values["subject"])
    return render_preview(request, user, req, composed, values, case_url=case_url)


def send_previewed(
    request: Request,
    session: Session,
    user: User,
    req: IntakeRequest,
    values: dict[str, str],
    *,
    case_url: str,
) -> Response | None:
    """Send the previewed e-mail and return None, or return the preview to show instead (no
    digest yet: 200; a body that greets: 422; the e-mail changed since it was seen: 409).
    Raises the reply's ``AppError`` when the reply itself is refused."""
    composed = cases.preview_reply(session, req, user, values["body"], values["subject"])
    if not values["digest"]:
        return render_preview(request, user, req, composed, values, case_url=case_url)
    if cases.leading_greeting(values["body"]) is not None:
        return render_preview(request, user, req, composed, values, case_url=case_url, status=422)
    if values["digest"] != cases.preview_digest(composed):
        return render_preview(
            request, user, req, composed, values, case_url=case_url, notice=CHANGED, status=409
        )
    cases.reply(session, req, user, values["body"], values["subject"] or None)
    return None
