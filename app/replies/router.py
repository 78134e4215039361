"""Saved replies: staff and admins list them (``/api/v1/saved-replies``), admins add, edit
and delete them (``/api/v1/admin/saved-replies``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.accounts.deps import RequireAdmin, RequireStaff
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import DbId
from app.replies import service
from app.replies.schemas import Language, SavedReplyIn, SavedReplyOut, SavedReplyPatch

router = APIRouter(prefix="/api/v1/saved-replies", tags=["saved replies"])
admin_router = APIRouter(prefix="/api/v1/admin/saved-replies", tags=["admin: saved replies"])


@router.get(
    "",
    response_model=list[SavedReplyOut],
    responses=error_responses(401, 403),
    summary="Saved replies to insert into a reply (staff and admins)",
    description="By language, then title. `language` narrows the list to one language (the "
    "requester's, to insert and adapt).",
)
def list_saved(
    session: SessionDep,
    _user: RequireStaff,
    language: Annotated[Language | None, Query(description="only this language")] = None,
) -> list[SavedReplyOut]:
    return [SavedReplyOut.model_validate(r) for r in service.list_saved(session, language)]


@admin_router.post(
    "",
    response_model=SavedReplyOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 422),
    summary="Add a saved reply (title unique per language)",
)
def create(body: SavedReplyIn, session: SessionDep, admin: RequireAdmin) -> SavedReplyOut:
    row = service.create(session, admin, title=body.title, language=body.language, body=body.body)
    return SavedReplyOut.model_validate(row)


@admin_router.patch(
    "/{saved_id}",
    response_model=SavedReplyOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Edit a saved reply (only the fields given change)",
)
def update(
    saved_id: DbId, body: SavedReplyPatch, session: SessionDep, admin: RequireAdmin
) -> SavedReplyOut:
    row = service.update(
        session, admin, saved_id, title=body.title, language=body.language, body=body.body
    )
    return SavedReplyOut.model_validate(row)


@admin_router.delete(
    "/{saved_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
    summary="Delete a saved reply",
)
def delete(saved_id: DbId, session: SessionDep, _admin: RequireAdmin) -> None:
    service.delete(session, saved_id)
