"""Helpers for the intake tests: a valid form, submitting it, reading the e-mailed messages."""

from __future__ import annotations

import secrets
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.core.database import session_scope
from tests.outbox_helpers import process_submissions


def form(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requester_type": "applicant",
        "full_name": "Aigerim Test",
        "email": f"applicant-{secrets.token_hex(4)}@example.org",
        "preferred_channel": "email",
        "language": "en",
        "timezone": "Europe/London",
        "country_of_origin": "KG",
        "country_of_residence": "GB",
        "case_stage": "filed_pending",
        "wants": ["consultation", "sample_report"],
        "consent_data_processing": True,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def submit(client: TestClient, *, process: bool = True, **overrides: Any) -> dict[str, Any]:
    """POST the form; then (``process``) do what the worker does within seconds of it: the
    ``intake.submitted`` row (routing, reminders, documents' timer), nothing else."""
    resp = client.post("/api/v1/requests", json=form(**overrides))
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    if process:
        with session_scope() as session:
            process_submissions(session)
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def messages(mail_dir: Path) -> list[EmailMessage]:
    out = []
    for path in sorted(mail_dir.glob("*.eml")):
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def field_problems(resp: Any) -> dict[str, str]:
    body = resp.json()
    return {f["field"]: f["message"] for f in body["error"]["fields"]}
