"""Documents: upload (admins) and download (whoever may read it; others get 404)."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import Response

from app.accounts.deps import CurrentUser, RequireAdmin
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.documents import service
from app.documents.schemas import DocumentOut, document_out
from app.models import DocumentKind

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
admin_router = APIRouter(prefix="/api/v1/admin/documents", tags=["admin: documents"])


@admin_router.post(
    "",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a document (PDF only, checked by content)",
    responses=error_responses(401, 403, 413, 422),
)
def upload(
    session: SessionDep,
    admin: RequireAdmin,
    file: Annotated[UploadFile, File(description="a PDF")],
    kind: Annotated[DocumentKind, Form()] = DocumentKind.sample_report,
    country_code: Annotated[str | None, Form(max_length=2)] = None,
    region_code: Annotated[str | None, Form(max_length=64)] = None,
) -> DocumentOut:
    doc = service.store(
        session,
        data=service.read_upload(file.file),
        filename=file.filename,
        kind=kind,
        uploaded_by=admin.id,
        country_code=country_code.upper() if country_code else None,
        region_code=region_code,
    )
    return document_out(doc)


@router.get(
    "/{document_id}",
    response_class=Response,
    summary="Download a document",
    description="Admins and staff read every document; an expert reads their own CV. "
    "Anything else answers 404.",
    responses={200: {"content": {"application/pdf": {}}}, **error_responses(401, 404)},
)
def download(document_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    doc = service.get_for(session, document_id, user)
    data = service.read_bytes(doc)
    return Response(
        content=data,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get(
    "/{document_id}/info",
    response_model=DocumentOut,
    summary="A document's description",
    responses=error_responses(401, 404),
)
def info(document_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> DocumentOut:
    return document_out(service.get_for(session, document_id, user))
