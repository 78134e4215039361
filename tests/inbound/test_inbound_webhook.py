"""The webhook way in: ``POST /webhooks/inbound-email`` with a raw RFC 822 body and
the shared secret; 401 without it, 422 naming the body for garbage, never a 500; the same
message posted twice is taken once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import IntakeRequest, RequestSource
from tests.factories import fixture

URL = "/webhooks/inbound-email"
SECRET = "inbound-shared-secret-for-tests"
RFC822 = {"Content-Type": "message/rfc822"}


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTAKE_INBOUND_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def requests_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(IntakeRequest)) or 0)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Inbound-Secret": "wrong"}, {"X-Inbound-Secret": ""}],
    ids=["missing", "wrong", "empty"],
)
def test_without_the_secret_the_webhook_answers_401(
    client: object, db: Session, secret: None, headers: dict[str, str]
) -> None:
    resp = client.post(  # type: ignore[attr-defined]
        URL, content=fixture("new_request_gmail.eml"), headers=RFC822 | headers
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "not_authenticated"
    assert requests_count(db) == 0


def test_when_no_secret_is_configured_nothing_gets_in(client: object, db: Session) -> None:
    resp = client.post(  # type: ignore[attr-defined]
        URL,
        content=fixture("new_request_gmail.eml"),
        headers=RFC822 | {"X-Inbound-Secret": "anything"},
    )
    assert resp.status_code == 401
    assert requests_count(db) == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\xff\xfe garbage \x00", b"just some words, no headers at all\n", b"{}"],
    ids=["empty", "binary", "no-headers", "json"],
)
def test_garbage_answers_422_naming_the_body(
    client: object, db: Session, secret: None, body: bytes
) -> None:
    resp = client.post(  # type: ignore[attr-defined]
        URL, content=body, headers=RFC822 | {"X-Inbound-Secret": SECRET}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["fields"][0]["field"] == "body"
    assert requests_count(db) == 0


def test_a_message_posted_twice_opens_one_request(
    client: object, db: Session, secret: None
) -> None:
    headers = RFC822 | {"X-Inbound-Secret": SECRET}
    raw = fixture("new_request_gmail.eml")
    first = client.post(URL, content=raw, headers=headers)  # type: ignore[attr-defined]
    assert first.status_code == 200, first.text
    assert first.json()["action"] == "created"
    again = client.post(URL, content=raw, headers=headers)  # type: ignore[attr-defined]
    assert again.status_code == 200
    assert again.json()["action"] == "duplicate"
    assert requests_count(db) == 1
    req = db.scalars(select(IntakeRequest)).one()
    assert req.source == RequestSource.email
    # Auto-replies are accepted (200) but ignored.
    ooo = client.post(  # type: ignore[attr-defined]
        URL, content=fixture("out_of_office_exchange.eml"), headers=headers
    )
    assert ooo.json() == {"action": "set_aside", "reason": "auto_reply"}
    assert requests_count(db) == 1
