"""Documents: PDFs checked by their content, the size limit, both storages, and access."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.documents import service
from app.documents.errors import DocumentCorrupted, DocumentTooLarge, NotAPdf
from app.models import DocumentKind, DocumentStorage, Role
from tests.factories import create_user, login, tiny_pdf


@pytest.fixture
def settings_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("INTAKE_DOCUMENT_MAX_BYTES", "4096")
    monkeypatch.setenv("INTAKE_DOCUMENT_STORAGE", "path")
    monkeypatch.setenv("INTAKE_DOCUMENT_DIR", str(tmp_path / "docs"))
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _upload(client: object, headers: dict[str, str], name: str, data: bytes, ctype: str) -> object:
    return client.post(  # type: ignore[attr-defined]
        "/api/v1/admin/documents",
        files={"file": (name, data, ctype)},
        data={"kind": "sample_report", "country_code": "kg"},
        headers=headers,
    )


def test_a_text_file_named_pdf_is_refused(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    h = login(client, admin)
    resp = _upload(client, h, "report.pdf", b"just some text, not a PDF", "application/pdf")
    assert resp.status_code == 422  # type: ignore[attr-defined]
    assert resp.json()["error"]["code"] == "not_a_pdf"  # type: ignore[attr-defined]
    # A PDF header on garbage is not a PDF either.
    resp = _upload(client, h, "x.pdf", b"%PDF-1.7\n" + b"garbage" * 50, "application/pdf")
    assert resp.status_code == 422  # type: ignore[attr-defined]
    # A truncated real PDF neither.
    resp = _upload(client, h, "cut.pdf", tiny_pdf()[:-60], "application/pdf")
    assert resp.status_code == 422  # type: ignore[attr-defined]


def test_a_real_pdf_is_accepted_whatever_its_name_and_declared_type(
    db: Session, client: object
) -> None:
    admin = create_user(db, role=Role.admin)
    pdf = tiny_pdf(pages=2)
    resp = _upload(client, login(client, admin), "../../etc/cv.txt", pdf, "text/plain")
    assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["content_type"] == "application/pdf"
    assert body["filename"] == "cv.txt.pdf"
    assert body["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert body["country_code"] == "KG" and body["kind"] == "sample_report"


def test_too_large_is_refused(db: Session, client: object, settings_override: None) -> None:
    admin = create_user(db, role=Role.admin)
    big = tiny_pdf(pages=40)
    assert len(big) > 4096
    resp = _upload(client, login(client, admin), "big.pdf", big, "application/pdf")
    assert resp.status_code == 413  # type: ignore[attr-defined]
    with pytest.raises(DocumentTooLarge):
        service.validate_pdf(big)


def test_path_storage_keeps_the_bytes_once_and_checks_them(
    db: Session, settings_override: None
) -> None:
    admin = create_user(db, role=Role.admin)
    pdf = tiny_pdf()
    a = service.store(db, data=pdf, filename="a.pdf", kind=DocumentKind.cv, uploaded_by=admin.id)
    b = service.store(db, data=pdf, filename="b.pdf", kind=DocumentKind.cv, uploaded_by=admin.id)
    assert a.storage == DocumentStorage.path and a.data is None
    assert a.path == b.path
    folder = get_settings().resolved_document_dir
    assert len(list(folder.rglob("*.pdf"))) == 1
    assert service.read_bytes(a) == pdf
    (folder / (a.path or "")).write_bytes(pdf + b"tampered")
    with pytest.raises(DocumentCorrupted):
        service.read_bytes(a)


def test_db_storage(db: Session) -> None:
    pdf = tiny_pdf()
    doc = service.store(db, data=pdf, filename=None, kind=DocumentKind.cv, uploaded_by=None)
    assert doc.storage == DocumentStorage.db and doc.path is None and doc.data == pdf
    assert doc.filename == "document.pdf"
    assert service.read_bytes(doc) == pdf


def test_encrypted_pdf_is_refused() -> None:
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=72, height=72)
    w.encrypt("secret")
    buf = io.BytesIO()
    w.write(buf)
    with pytest.raises(NotAPdf):
        service.validate_pdf(buf.getvalue())


def test_only_admins_upload_and_experts_read_only_their_own(db: Session, client: object) -> None:
    staff = create_user(db, role=Role.staff)
    expert = create_user(db, role=Role.expert)
    for user in (staff, expert):
        resp = _upload(client, login(client, user), "a.pdf", tiny_pdf(), "application/pdf")
        assert resp.status_code == 403  # type: ignore[attr-defined]
    doc = service.store(
        db, data=tiny_pdf(), filename="s.pdf", kind=DocumentKind.sample_report, uploaded_by=None
    )
    resp = client.get(f"/api/v1/documents/{doc.id}", headers=login(client, expert))  # type: ignore[attr-defined]
    assert resp.status_code == 404
    resp = client.get(f"/api/v1/documents/{doc.id}/info", headers=login(client, staff))  # type: ignore[attr-defined]
    assert resp.status_code == 200 and resp.json()["size"] == doc.size
