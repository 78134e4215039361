"""``/admin/saved-replies``: the admin console's Saved replies (admins only).

Every saved reply by language and title, a form to add one, and one page per saved reply to
edit or delete it; the same service as ``/api/v1/admin/saved-replies`` (app/replies/service.py),
so a refusal (empty, too long, a title taken in that language) is shown beside its field.
Staff insert them on the case page (app/web/staff.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app.core.deps import SessionDep
from app.core.errors import AppError
from app.core.validation import DbId
from app.models import SavedReply, User
from app.replies import service as replies
from app.replies.errors import SavedReplyNotFound
from app.web.auth import AdminPageUser, CsrfForm, not_found, page, redirect
from app.web.i18n import N_

router = APIRouter(include_in_schema=False)
PATH = "/admin/saved-replies"

#: The languages of requesters' e-mails, by their names in English (the page translates them).
LANGUAGE_NAMES: dict[str, str] = {
    "en": N_("English"),
    "ru": N_("Russian"),
    "es": N_("Spanish"),
    "ar": N_("Arabic"),
}
DONE: dict[str, str] = {
    "added": N_("The saved reply is added."),
    "saved": N_("The saved reply is changed."),
    "deleted": N_("The saved reply is deleted."),
}
#: The service's refusals as whole sentences in the viewer's language.
INPUT_TEXTS: dict[tuple[str, str], str] = {
    ("title", "is empty; name the saved reply"): N_("Give the saved reply a title."),
    ("title", "must be one line"): N_("The title must be one line."),
    ("title", "is longer than 120 characters"): N_(
        "The title is longer than 120 characters. Shorten it."
    ),
    ("title", "is taken in this language; choose another"): N_(
        "Another saved reply in this language has this title. Choose another title."
    ),
    ("language", "must be one of en, ru, es, ar"): N_("Choose a language from the list."),
    ("body", "is empty; write the text"): N_("The text is empty. Write the text to insert."),
    ("body", "is longer than 20000 characters"): N_(
        "The text is longer than 20,000 characters. Shorten it."
    ),
}


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _values(form: FormData) -> dict[str, str]:
    return {
        "title": _text(form, "title", 400),
        "language": _text(form, "language", 8),
        "body": _text(form, "body", 40_000),
    }


def _errors(exc: AppError) -> dict[str, str]:
    if not exc.fields:
        return {"form": exc.message}
    problem = exc.fields[0]
    return {f"sr_{problem.field}": INPUT_TEXTS.get((problem.field, problem.message), exc.message)}


def _list_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ctx: dict[str, Any] = {
        "title": N_("Saved replies"),
        "saved": replies.list_saved(session),
        "language_names": LANGUAGE_NAMES,
        "errors": errors or {},
        "values": values or {"language": "en"},
        "flash": DONE.get(request.query_params.get("done", "")),
    }
    return page(request, "staff/admin_saved_replies.html", ctx, user=user, status=status)


def _edit_page(
    request: Request,
    user: User,
    row: SavedReply,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ctx: dict[str, Any] = {
        "title": N_("Edit a saved reply"),
        "row": row,
        "language_names": LANGUAGE_NAMES,
        "errors": errors or {},
        "values": values or {"title": row.title, "language": row.language, "body": row.body},
    }
    return page(request, "staff/admin_saved_reply.html", ctx, user=user, status=status)


@router.get(PATH)
def saved_replies_page(request: Request, session: SessionDep, user: AdminPageUser) -> Response:
    return _list_page(request, session, user)


@router.post(f"{PATH}/add")
def add(request: Request, session: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    values = _values(form)
    try:
        replies.create(session, user, **values)
    except AppError as exc:
        session.rollback()
        return _list_page(
            request, session, user, errors=_errors(exc), values=values, status=exc.status_code
        )
    return redirect(f"{PATH}?done=added")


@router.get(PATH + "/{saved_id}")
def edit_page(
    saved_id: DbId, request: Request, session: SessionDep, user: AdminPageUser
) -> Response:
    try:
        row = replies.get(session, saved_id)
    except SavedReplyNotFound:
        return not_found(request, user)
    return _edit_page(request, user, row)


@router.post(PATH + "/{saved_id}")
def edit(
    saved_id: DbId, request: Request, session: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    values = _values(form)
    try:
        replies.update(session, user, saved_id, **values)
    except SavedReplyNotFound:
        return not_found(request, user)
    except AppError as exc:
        session.rollback()
        row = replies.get(session, saved_id)
        return _edit_page(
            request, user, row, errors=_errors(exc), values=values, status=exc.status_code
        )
    return redirect(f"{PATH}?done=saved")


@router.post(PATH + "/{saved_id}/delete")
def delete(
    saved_id: DbId, request: Request, session: SessionDep, user: AdminPageUser, form: CsrfForm
) -> Response:
    try:
        replies.delete(session, saved_id)
    except SavedReplyNotFound:
        return not_found(request, user)
    return redirect(f"{PATH}?done=deleted")
