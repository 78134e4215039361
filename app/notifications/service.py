"""The admin's test e-mail: one outbox row, sent by the worker like every other e-mail, so it
proves the whole path (database, broker, worker, SMTP), not only the SMTP settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import OutboxMessage, User
from app.outbox import service as outbox

TEST_EMAIL = "notifications.test_email"


def request_test_email(session: Session, *, admin: User, to: str | None) -> OutboxMessage:
    """Queue a test e-mail. Without ``to`` it goes to the admin's own address and the row holds
    only the admin's id; with ``to`` the row holds that address: an address an admin typed to
    check the mail set-up, never a requester's (this kind is admin-only)."""
    params: dict[str, str] = {"user_id": str(admin.id)} if to is None else {"to": to}
    row = outbox.enqueue(session, TEST_EMAIL, params)
    assert row is not None  # no dedup key: always written
    return row
