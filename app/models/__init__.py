"""Every table, in one package, so domains share tables without importing each other."""

from app.models.accounts import (
    AccountToken,
    AccountTokenPurpose,
    LoginThrottle,
    Role,
    User,
    UserSession,
)
from app.models.base import Base
from app.models.outbox import OutboxMessage, OutboxStatus

__all__ = [
    "AccountToken",
    "AccountTokenPurpose",
    "Base",
    "LoginThrottle",
    "OutboxMessage",
    "OutboxStatus",
    "Role",
    "User",
    "UserSession",
]
