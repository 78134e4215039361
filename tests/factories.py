"""Plain factory functions: ``create_user(session, role=Role.staff)``."""

from __future__ import annotations

import secrets

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
