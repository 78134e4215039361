"""The WhatsApp fake (tests/fakes/whatsapp_fake.py) started for a test, the service pointed at
it, and helpers to deliver its webhooks to the app and to work the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import IntakeRequest, WhatsAppMessage
from tests.factories import drain_all
from tests.fakes.whatsapp_fake import FakeWhatsApp

MAX_ATTEMPTS = 4


def env_for(fake: FakeWhatsApp) -> dict[str, str]:
    return {
        "INTAKE_WHATSAPP_ACCESS_TOKEN": fake.access_token,
        "INTAKE_WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
        "INTAKE_WHATSAPP_APP_SECRET": fake.app_secret,
        "INTAKE_WHATSAPP_VERIFY_TOKEN": fake.verify_token,
        "INTAKE_WHATSAPP_API_BASE_URL": fake.base_url,
        "INTAKE_WHATSAPP_API_VERSION": fake.version,
        "INTAKE_WHATSAPP_TIMEOUT_SECONDS": "2",
    }


@pytest.fixture
def wa(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWhatsApp]:
    fake = FakeWhatsApp().start()
    for key, value in {
        **env_for(fake),
        "INTAKE_OUTBOX_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield fake
    monkeypatch.undo()
    get_settings.cache_clear()
    fake.stop()


def poster(client: TestClient) -> Callable[[bytes, dict[str, str]], int]:
    def post(body: bytes, headers: dict[str, str]) -> int:
        return int(client.post("/webhooks/whatsapp", content=body, headers=headers).status_code)

    return post


def deliver(client: TestClient, fake: FakeWhatsApp, db: Session) -> list[int]:
    """Meta posts what is pending; the worker takes it (and what that queues)."""
    codes = fake.deliver(poster(client))
    drain_all(db)
    return codes


def only_request(db: Session) -> IntakeRequest:
    [req] = db.scalars(select(IntakeRequest).execution_options(populate_existing=True)).all()
    return req


def wa_messages(db: Session, **where: Any) -> list[WhatsAppMessage]:
    stmt = select(WhatsAppMessage).order_by(WhatsAppMessage.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(WhatsAppMessage, name) == value)
    return list(db.scalars(stmt.execution_options(populate_existing=True)).all())
