"""The one place documents are stored and read (CVs now, sample reports later).

- Only PDFs: the bytes are parsed with pypdf (strict), whatever the file's name or declared
  content type; anything that does not parse as a PDF with at least one page is refused, and so
  are encrypted PDFs (nobody could open them from here).
- Size-limited by ``INTAKE_DOCUMENT_MAX_BYTES``.
- Stored in the database (``INTAKE_DOCUMENT_STORAGE=db``) or as a file under
  ``INTAKE_DOCUMENT_DIR`` named by its SHA-256 (``path``), so the same bytes are kept once.
  The hash is checked again when a document is read.
- Who may read: admins and staff; an expert only the documents they own (their CV). Anyone
  else gets 404, never 403.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from pathlib import Path
from typing import BinaryIO

import structlog
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.documents.errors import DocumentCorrupted, DocumentNotFound, DocumentTooLarge, NotAPdf
from app.models import Document, DocumentKind, DocumentStorage, Role, User

log = structlog.get_logger(__name__)

PDF_CONTENT_TYPE = "application/pdf"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
READ_CHUNK = 64 * 1024


def check_size(size: int) -> None:
    limit = get_settings().document_max_bytes
    if size > limit:
        raise DocumentTooLarge(
            f"The document is larger than the limit of {limit} bytes.",
            details={"max_bytes": limit},
        )


def read_upload(stream: BinaryIO) -> bytes:
    """Read an uploaded file's stream, at most the limit + 1 chunk, so an over-large upload is
    refused (413) without holding all of it."""
    limit = get_settings().document_max_bytes
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            check_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


def validate_pdf(data: bytes) -> int:
    """Refuse anything that is not a readable PDF; returns its number of pages."""
    # Imported here: only uploads parse PDFs, and the worker and commands start faster without.
    from pypdf import PdfReader

    check_size(len(data))
    try:
        reader = PdfReader(io.BytesIO(data), strict=True)
        if reader.is_encrypted:
            raise NotAPdf("Encrypted PDFs are not accepted: upload it without a password.")
        pages = len(reader.pages)
    except NotAPdf:
        raise
    except Exception as exc:  # pypdf raises many kinds on malformed input
        raise NotAPdf("The file is not a readable PDF (its content was checked).") from exc
    if pages < 1:
        raise NotAPdf("The PDF has no pages.")
    return pages


def safe_filename(name: str | None) -> str:
    base = Path(name or "document.pdf").name
    cleaned = _UNSAFE.sub("_", base).strip(" .") or "document"
    if not cleaned.lower().endswith(".pdf"):
        cleaned += ".pdf"
    return cleaned[-120:]


def _write_file(sha: str, data: bytes) -> str:
    """Content-addressed: ``ab/abcdef....pdf``; written once, atomically."""
    relative = f"{sha[:2]}/{sha}.pdf"
    target = get_settings().resolved_document_dir / relative
    if target.exists():
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return relative


def store(
    session: Session,
    *,
    data: bytes,
    filename: str | None,
    kind: DocumentKind,
    uploaded_by: uuid.UUID | None,
    owner_id: uuid.UUID | None = None,
    country_code: str | None = None,
    region_code: str | None = None,
) -> Document:
    validate_pdf(data)
    sha = hashlib.sha256(data).hexdigest()
    storage = DocumentStorage(get_settings().document_storage)
    doc = Document(
        kind=kind,
        filename=safe_filename(filename),
        content_type=PDF_CONTENT_TYPE,
        size=len(data),
        sha256=sha,
        storage=storage,
        path=_write_file(sha, data) if storage == DocumentStorage.path else None,
        data=data if storage == DocumentStorage.db else None,
        country_code=country_code,
        region_code=region_code,
        owner_id=owner_id,
        uploaded_by=uploaded_by,
        created_at=now(),
    )
    session.add(doc)
    session.flush()
    log.info("document_stored", document_id=str(doc.id), kind=kind.value, size=doc.size)
    return doc


def store_sealed(
    session: Session, *, sealed: bytes, content_type: str, kind: DocumentKind
) -> Document:
    """A request's attachment that the caller already encrypted with the request's data key
    (inbound e-mail): kept like every document and checked by hash when read; its real name
    stays in the caller's encrypted record, the row says only ``attachment``."""
    sha = hashlib.sha256(sealed).hexdigest()
    storage = DocumentStorage(get_settings().document_storage)
    doc = Document(
        kind=kind,
        filename="attachment",
        content_type=content_type[:100],
        size=len(sealed),
        sha256=sha,
        storage=storage,
        path=_write_file(sha, sealed) if storage == DocumentStorage.path else None,
        data=sealed if storage == DocumentStorage.db else None,
        created_at=now(),
    )
    session.add(doc)
    session.flush()
    log.info("document_stored", document_id=str(doc.id), kind=kind.value, size=doc.size)
    return doc


def may_read(user: User, doc: Document) -> bool:
    # A requester's e-mailed attachment is sealed with the request's own key: it is read
    # (decrypted, with the case's access rules) at /api/v1/cases/{reference}/attachments/{id}.
    if doc.kind == DocumentKind.attachment:
        return False
    if user.role in (Role.admin, Role.staff):
        return True
    return doc.owner_id is not None and doc.owner_id == user.id


def get_for(session: Session, document_id: uuid.UUID, user: User) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or not may_read(user, doc):
        raise DocumentNotFound("No document with this id.")
    return doc


def read_bytes(doc: Document) -> bytes:
    if doc.storage == DocumentStorage.db:
        data = doc.data or b""
    else:
        try:
            data = (get_settings().resolved_document_dir / (doc.path or "")).read_bytes()
        except OSError:
            log.error("document_file_missing", document_id=str(doc.id))
            raise DocumentCorrupted("The document's file is missing.") from None
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        log.error("document_hash_mismatch", document_id=str(doc.id))
        raise DocumentCorrupted("The document's stored bytes do not match its hash.")
    return data
