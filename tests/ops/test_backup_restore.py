"""Backup and restore: a populated service (requests with personal data, an e-mailed request
with its attachment, a booking, a document file, mail copies, the audit chain) goes into one
encrypted archive and comes back into an empty database of the other kind, where every request
opens, the audit chain verifies and every table has the rows it had."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.service import verify
from app.core.settings import get_settings
from app.documents import service as documents
from app.flows.request import inbound_message
from app.inbound import service as inbound
from app.intake import keys
from app.intake.records import reveal_pii
from app.models import Base, Document, IntakeRequest, RequestMessage, Role
from app.ops import archive
from app.ops import backup as ops_backup
from tests.factories import (
    app_client,
    booked_consultation,
    create_expert,
    create_user,
    drain_all,
    fixture,
    login,
    real_database,
    request_of,
    sample_report,
    submit,
)


@pytest.fixture
def file_storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Documents kept as files (so the archive must carry them: the sample report and the
    sealed attachment), in a folder of this test."""
    folder = tmp_path / "documents"
    monkeypatch.setenv("INTAKE_DOCUMENT_STORAGE", "path")
    monkeypatch.setenv("INTAKE_DOCUMENT_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    monkeypatch.undo()
    get_settings.cache_clear()


def _counts(session: Session) -> dict[str, int]:
    return {
        t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
        for t in Base.metadata.sorted_tables
    }


def _attachment_url(session: Session, req: IntakeRequest) -> str:
    rows = session.scalars(select(RequestMessage).where(RequestMessage.request_id == req.id))
    revealed = [inbound.reveal_message(req, row) or {} for row in rows]
    doc_id = next(
        a["document_id"] for d in revealed for a in d.get("attachments", []) if a["document_id"]
    )
    return f"/api/v1/cases/{req.reference}/attachments/{doc_id}"


def _populate(session: Session, c: Any, marker: str) -> dict[str, Any]:
    admin = create_user(session, role=Role.admin)
    staff = create_user(session, role=Role.staff)
    expert = create_expert(session, countries=["KG"])
    session.commit()  # SQLite: the API's requests below need the write lock
    replies = [
        submit(c, full_name=f"{marker} {i}", case_summary=f"Case {marker} {i}.") for i in range(3)
    ]
    emailed = request_of(
        session, inbound_message(session, fixture("new_request_gmail.eml")).reference
    )
    booked_consultation(session, request_of(session, replies[0]["reference"]), expert)
    report = sample_report(session, admin, country="KG")
    session.commit()
    drain_all(session)  # acknowledgements and the rest: .eml copies under var/mail
    session.commit()
    headers = login(c, staff)
    for reply in replies:  # case views: audit rows
        assert c.get(f"/api/v1/cases/{reply['reference']}", headers=headers).status_code == 200
    url = _attachment_url(session, emailed)
    session.commit()
    attachment = c.get(url, headers=headers)
    assert attachment.status_code == 200 and attachment.content.startswith(b"%PDF")
    session.commit()
    requests = session.scalars(select(IntakeRequest)).all()
    audit = verify(session)
    assert audit.ok and audit.rows >= 5
    mail = {p.name: p.read_bytes() for p in get_settings().mail_dir.glob("*.eml")}
    assert mail, "the acknowledgements should be kept as .eml copies"
    return {
        "staff": staff,
        "counts": _counts(session),
        "pii": {r.reference: reveal_pii(r) for r in requests},
        "audit": (audit.rows, audit.head_hash),
        "attachment": (url, attachment.content),
        "report": (report.id, documents.read_bytes(report)),
        "mail": mail,
    }


@pytest.mark.slow
@pytest.mark.parametrize(("source", "target"), [("postgresql", "sqlite"), ("sqlite", "postgresql")])
def test_a_backup_restores_into_an_empty_database_of_the_other_kind_with_nothing_lost(
    source: str, target: str, tmp_path: Path, file_storage: Path, mail_dir: Path
) -> None:
    marker = f"Qzm{secrets.token_hex(4)}"
    archive_path = tmp_path / "service.backup"
    with real_database(source, tmp_path / "source") as src, app_client() as c:
        session = src.session()
        before = _populate(session, c, marker)
        session.close()
        with archive_path.open("wb") as fh:
            made = ops_backup.backup(get_settings(), fh, url=src.url)
    assert made.rows == before["counts"]
    assert made.files["documents"] == 2 and made.files["mail"] == len(before["mail"])
    data_key_ids = made.key_ids["requests.data_key_enc"]
    assert sum(data_key_ids.values()) == len(before["pii"])
    # Nothing personal or readable in the archive.
    raw = archive_path.read_bytes()
    assert marker.encode() not in raw and b"%PDF" not in raw and b"manifest" not in raw
    # A new machine: the files are gone with the old one.
    shutil.rmtree(file_storage)
    for p in mail_dir.glob("*.eml"):
        p.unlink()
    keys.forget_cached_keys()

    with real_database(target, tmp_path / "target") as dst, app_client() as c:
        with archive_path.open("rb") as fh:
            restored = ops_backup.restore(get_settings(), fh, url=dst.url)
        assert restored.rows == before["counts"]
        session = dst.session()
        assert _counts(session) == before["counts"]
        requests = session.scalars(select(IntakeRequest)).all()
        assert {r.reference: reveal_pii(r) for r in requests} == before["pii"]
        assert all(before["pii"].values()), "every request opens"
        audit = verify(session)
        assert audit.ok, audit.problem
        assert (audit.rows, audit.head_hash) == before["audit"]
        report = session.get(Document, before["report"][0])
        assert report is not None and documents.read_bytes(report) == before["report"][1]
        assert {p.name: p.read_bytes() for p in mail_dir.glob("*.eml")} == before["mail"]
        session.commit()  # SQLite: the API's requests need the write lock this read holds
        url, content = before["attachment"]
        headers = login(c, before["staff"])
        assert c.get(url, headers=headers).content == content
        # The restored service takes new work: ids continue after the restored rows.
        submit(c, full_name="After the restore")
        session.commit()
        assert verify(session).ok
        session.commit()
        # A second restore into it is refused: it is not empty any more.
        with archive_path.open("rb") as fh, pytest.raises(ops_backup.NotEmpty, match="holds data"):
            ops_backup.restore(get_settings(), fh, url=dst.url)
        session.close()


def test_a_changed_or_cut_archive_is_refused(tmp_path: Path) -> None:
    master = secrets.token_bytes(32)
    path = tmp_path / "a.backup"
    with path.open("wb") as out:
        writer = archive.EncryptingWriter(out, key_id="k1", master=master, created_at="now")
        writer.write(secrets.token_bytes(archive.CHUNK * 2 + 10))
        writer.close()
    good = path.read_bytes()

    def read_all(data: bytes, key: bytes = master) -> bytes:
        import io

        src = io.BytesIO(data)
        reader = archive.DecryptingReader(src, archive.read_header(src), key)
        out = reader.read()
        reader.drain()
        return out

    assert len(read_all(good)) == archive.CHUNK * 2 + 10
    flipped = bytearray(good)
    flipped[-100] ^= 1
    with pytest.raises(archive.ArchiveError, match="changed or damaged"):
        read_all(bytes(flipped))
    last_chunk = 4 + 12 + 10 + 16
    with pytest.raises(archive.ArchiveError, match="cut short"):
        read_all(good[:-last_chunk])
    with pytest.raises(archive.ArchiveKeyError):
        read_all(good, secrets.token_bytes(32))
    header_changed = good.replace(b'"k1"', b'"k2"', 1)
    with pytest.raises(archive.ArchiveKeyError):
        read_all(header_changed)
    with pytest.raises(archive.ArchiveError, match="not an asylum-intake backup"):
        read_all(b"PK" + good[2:])
