"""Sample reports (admins): upload through the documents module, list, delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import Response

from app.accounts.deps import RequireAdmin
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.documents import service as documents
from app.documents.schemas import DocumentOut, document_out
from app.sendouts import service

admin_router = APIRouter(prefix="/api/v1/admin/sample-reports", tags=["admin: sample reports"])


@admin_router.post(
    "",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a sample report (PDF, checked by content)",
    description="Tag it with `country_code` or `region_code`, or neither for a general one. A "
    "requester who asks for a sample report gets the newest of the best match: their country of "
    "origin, else its region, else general.",
    responses=error_responses(401, 403, 413, 422),
)
def upload(
    session: SessionDep,
    admin: RequireAdmin,
    file: Annotated[UploadFile, File(description="a PDF")],
    country_code: Annotated[str | None, Form(max_length=2)] = None,
    region_code: Annotated[str | None, Form(max_length=64)] = None,
) -> DocumentOut:
    doc = service.upload_sample_report(
        session,
        data=documents.read_upload(file.file),
        filename=file.filename,
        uploaded_by=admin.id,
        country_code=country_code,
        region_code=region_code,
    )
    return document_out(doc)


@admin_router.get(
    "",
    response_model=list[DocumentOut],
    summary="Every sample report, by tag",
    responses=error_responses(401, 403),
)
def list_all(session: SessionDep, admin: RequireAdmin) -> list[DocumentOut]:
    return [document_out(d) for d in service.list_sample_reports(session)]


@admin_router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a sample report",
    responses=error_responses(401, 403, 404),
)
def delete(document_id: uuid.UUID, session: SessionDep, admin: RequireAdmin) -> Response:
    service.delete_sample_report(session, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
