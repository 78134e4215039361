"""Personal data is encrypted at rest, absent from logs and outbox rows, and the master key
rotates (``asylum-intake rotate-key``) without losing anything."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.intake import records
from app.models import Base, IntakeRequest, OutboxMessage
from tests.factories import bearer, drain, submit
from tests.mail_reader import messages, text_of

MARKER = "Zqxvmarker"


def _full_form() -> dict[str, object]:
    return {
        "requester_type": "law_firm",
        "law_firm_name": f"{MARKER} Chambers",
        "full_name": f"{MARKER} Client",
        "contact_name": f"{MARKER} Lawyer",
        "email": f"{MARKER.lower()}@example.org",
        "phone": "+44 20 7946 0958",
        "whatsapp": "+996 555 123 456",
        "case_summary": f"The case of {MARKER}, in some detail.",
    }


def _every_value(db: Session) -> Iterator[tuple[str, str, object]]:
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)).mappings():
            for column, value in row.items():
                yield table.name, column, value


def _contains(value: object, needle: str) -> bool:
    if isinstance(value, bytes):
        return needle.lower().encode() in value.lower()
    return needle.lower() in str(value).lower()


def test_personal_data_is_not_in_any_column(client: TestClient, db: Session) -> None:
    body = submit(client, **_full_form())
    drain(db)
    client.post(
        "/api/v1/requests/recover",
        json={"reference": body["reference"], "email": f"{MARKER.lower()}@example.org"},
    )
    client.post(
        f"/api/v1/requests/{body['reference']}/withdraw", headers=bearer(body["access_token"])
    )
    db.expire_all()
    needles = [MARKER, "+442079460958", "2079460958", "+996555123456", body["access_token"]]
    found = [
        (table, column, needle)
        for table, column, value in _every_value(db)
        for needle in needles
        if value is not None and _contains(value, needle)
    ]
    assert found == []
    # ... and yet it is all there for whoever holds the keys.
    req = db.scalars(select(IntakeRequest)).one()
    pii = records.reveal_pii(req)
    assert pii is not None and pii["full_name"] == f"{MARKER} Client"
    assert pii["email"] == f"{MARKER.lower()}@example.org"
    assert records.reveal_token(req) == body["access_token"]


def test_outbox_rows_hold_ids_only(client: TestClient, db: Session) -> None:
    body = submit(client, **_full_form())
    rows = db.scalars(select(OutboxMessage)).all()
    assert rows and all(set(r.params) == {"request_id"} for r in rows)
    assert all(MARKER.lower() not in str(r.params).lower() for r in rows)
    assert all(body["reference"] not in str(r.params) for r in rows)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name} {record.msg!s} {record.args!s}"
        if record.exc_info:
            line += logging.Formatter().formatException(record.exc_info)
        self.lines.append(line)


def test_no_personal_data_in_logs(client: TestClient, db: Session, mail_dir: Path) -> None:
    root = logging.getLogger()
    collect = _Collect()
    old_level = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    try:
        body = submit(client, **_full_form())
        client.post("/api/v1/requests", json={**_full_form(), "phone": f"{MARKER} 123"})
        client.get(f"/api/v1/requests/{body['reference']}", headers=bearer(body["access_token"]))
        client.post(
            "/api/v1/requests/recover",
            json={"reference": body["reference"], "email": f"{MARKER.lower()}@example.org"},
        )
        drain(db)
        client.post(
            f"/api/v1/requests/{body['reference']}/withdraw", headers=bearer(body["access_token"])
        )
    finally:
        root.removeHandler(collect)
        root.setLevel(old_level)
    logged = "\n".join(collect.lines)
    # The capture works: the service's own lines are there (by reference, not by name).
    assert "intake_submitted" in logged and body["reference"] in logged
    assert "outbox_sent" in logged
    assert MARKER.lower() not in logged.lower()
    assert body["access_token"] not in logged
    assert "2079460958" not in logged
    # The e-mails did go out with the name in them.
    assert any(MARKER in text_of(m) for m in messages(mail_dir))


# Rotation is proven in tests/ops/test_key_rotation.py (batches, resuming, 10,000 requests)
# and tests/ops/test_cli_ops.py (the command).


def test_raw_columns_are_ciphertext(client: TestClient, db: Session) -> None:
    body = submit(client, **_full_form())
    raw = db.execute(
        text(
            "SELECT pii_enc, token_enc, data_key_enc, email_lookup FROM requests"
            " WHERE reference = :r"
        ),
        {"r": body["reference"]},
    ).one()
    assert all(isinstance(v, bytes) and len(v) > 28 for v in raw[:3])
    assert len(raw[3]) == 64 and "@" not in raw[3]
