"""Plain factory functions: ``create_user(session, role=Role.staff)``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.models import Role, User

DEFAULT_PASSWORD = "correct horse battery staple"


def create_user(
    session: Session,
    *,
    role: Role = Role.staff,
    email: str | None = None,
    display_name: str = "Test User",
    password: str | None = DEFAULT_PASSWORD,
) -> User:
    return accounts.create_user(
        session,
        email=email or f"{role.value}-{secrets.token_hex(4)}@example.org",
        display_name=display_name,
        role=role,
        password=password,
    )


def login(client: object, user: User, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    """Sign in through the API; returns the Authorization header."""
    resp = client.post(  # type: ignore[attr-defined]
        "/api/v1/auth/login", json={"email": user.email, "password": password}
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['user_token']}"}


def backend_pid(session: Session) -> int:
    """The PostgreSQL backend serving this session's connection (for ``wait_until_blocked``)."""
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def wait_until_blocked(
    engine: Engine,
    waiter: int,
    holder: int,
    *,
    finished: Callable[[], bool] = lambda: False,
    timeout: float = 30.0,
) -> bool:
    """Poll ``pg_blocking_pids`` until backend ``waiter`` waits for a lock that backend
    ``holder`` holds (True), or ``finished()`` says the waiter is done without having waited
    (False). Fails after ``timeout`` seconds: a real signal, not a sleep."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            blockers = conn.execute(
                text("SELECT pg_blocking_pids(:pid)"), {"pid": waiter}
            ).scalar_one()
            conn.rollback()
            if holder in blockers:
                return True
            if finished():
                return False
            time.sleep(0.005)  # the polling interval of a bounded wait
    raise AssertionError(f"backend {waiter} never waited for backend {holder}")
