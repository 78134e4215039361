"""``/admin/sample-reports``: the admin console's Sample reports (admins only).

- Every sample report by its tag (a country, a region, or general), with its file name, size,
  upload date and a delete button (``app/sendouts/service.py``, as
  ``/api/v1/admin/sample-reports``).
- Upload one (a multipart form, no JavaScript) for a country, a region or general: the same
  ``upload_sample_report`` the API calls, so the file is checked as a PDF by its content and
  against the size limit by the documents module, and a refusal is shown beside the field.
- Which countries of the table are covered, and by which report (their own, their region's or
  the general one), and which are not: ``sendouts.sample_report_coverage``, the rule that
  chooses what is sent, not a copy of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from app.core.deps import SessionDep
from app.core.validation import SafeStr
from app.documents import service as documents
from app.documents.errors import DocumentTooLarge, NotAPdf
from app.models import Country, Document, User
from app.reference import service as reference
from app.sendouts import service as sendouts
from app.sendouts.errors import BadSampleReportTag, SampleReportNotFound
from app.web.auth import AdminPageUser, CsrfForm, not_found, page, redirect

router = APIRouter(include_in_schema=False)
PATH = "/admin/sample-reports"
GENERAL = "general"


def N_(text: str) -> str:
    return text


DONE: dict[str, str] = {
    "uploaded": N_("The sample report is uploaded."),
    "deleted": N_("The sample report is deleted."),
}
TIERS: dict[str, str] = {
    "country": N_("Its own report"),
    "region": N_("Its region's report"),
    "general": N_("The general report"),
}


@dataclass(frozen=True)
class Covered:
    country: Country
    document: Document | None
    tier: str | None  # "country", "region", "general"; None: not covered


def tier_of(document: Document) -> str:
    """Which tag made the report match (for the label; the rule chose the report)."""
    if document.country_code:
        return "country"
    return "region" if document.region_code else GENERAL


def coverage(
    session: Session, countries: Sequence[Country], reports: Sequence[Document]
) -> list[Covered]:
    chosen = sendouts.sample_report_coverage(session, [(c.code, c.region_code) for c in countries])
    by_id = {d.id: d for d in reports}
    out: list[Covered] = []
    for c in countries:
        found = chosen[c.code]
        doc = by_id.get(found) if found is not None else None
        out.append(Covered(c, doc, tier_of(doc) if doc is not None else None))
    return out


def size_of(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _samples_page(
    request: Request,
    db: Session,
    user: User,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    tag: str = GENERAL,
    done_message: str | None = None,
) -> Response:
    reports = sendouts.list_sample_reports(db)
    countries = reference.list_countries(db)
    regions = reference.list_regions(db)
    covered = coverage(db, countries, reports)
    ctx: dict[str, Any] = {
        "title": N_("Sample reports"),
        "reports": reports,
        "region_names": {r.code: r.name for r in regions},
        "country_names": dict(reference.iso_countries()) | {c.code: c.name for c in countries},
        "regions": regions,
        "all_countries": reference.public_countries(db),
        "covered": [c for c in covered if c.document is not None],
        "uncovered": [c for c in covered if c.document is None],
        "tiers": TIERS,
        "tier_of": tier_of,
        "size_of": size_of,
        "tag": tag,
        "errors": errors or {},
        "done_message": done_message,
    }
    return page(request, "staff/admin_samples.html", ctx, user=user, status=status)


@router.get(PATH)
def samples(
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    return _samples_page(request, db, user, done_message=DONE.get(done))


def _tag(value: str) -> tuple[str | None, str | None] | None:
    """The form's one ``tag`` choice as (country, region): ``general``, ``region:<code>`` or
    ``country:<code>``; None for anything else."""
    if value == GENERAL:
        return None, None
    kind, _sep, code = value.partition(":")
    if not code or not code.isascii() or not code.replace("_", "").isalnum():
        return None
    if kind == "country":
        code = code.upper()
        return (code, None) if reference.valid_country_code(code) else None
    if kind == "region":
        return None, code
    return None


@router.post(f"{PATH}/upload")
def upload(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    raw_tag = form.get("tag")
    tag = raw_tag[:80] if isinstance(raw_tag, str) else ""
    file = form.get("file")
    errors: dict[str, str] = {}
    chosen = _tag(tag)
    if chosen is None:
        errors["tag"] = N_("Choose a country, a region or general.")
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = N_("Choose a PDF file to upload.")
    status = 422
    if not errors and isinstance(file, UploadFile) and chosen is not None:
        try:
            sendouts.upload_sample_report(
                db,
                data=documents.read_upload(file.file),
                filename=file.filename,
                uploaded_by=user.id,
                country_code=chosen[0],
                region_code=chosen[1],
            )
        except BadSampleReportTag:
            errors["tag"] = N_("Choose a country, a region or general.")
        except NotAPdf as exc:
            errors["file"] = exc.message
        except DocumentTooLarge as exc:
            errors["file"] = exc.message
            status = 413
    if errors:
        return _samples_page(request, db, user, status=status, errors=errors, tag=tag)
    return redirect(f"{PATH}?done=uploaded")


@router.post(PATH + "/{document_id}/delete")
def delete(
    request: Request, db: SessionDep, document_id: uuid.UUID, user: AdminPageUser, _f: CsrfForm
) -> Response:
    try:
        sendouts.delete_sample_report(db, document_id)
    except SampleReportNotFound:
        return not_found(request, user)
    return redirect(f"{PATH}?done=deleted")
