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
from app.models.reference import GENERAL_POOL, CivicSpaceRating, Country, Region
from app.models.requests import (
    CaseStage,
    ContactChannel,
    IdempotencyRecord,
    IntakeRequest,
    RequesterType,
    RequestHistory,
    RequestSource,
    RequestStatus,
    SecretKey,
)

__all__ = [
    "GENERAL_POOL",
    "AccountToken",
    "AccountTokenPurpose",
    "Base",
    "CaseStage",
    "CivicSpaceRating",
    "ContactChannel",
    "Country",
    "IdempotencyRecord",
    "IntakeRequest",
    "LoginThrottle",
    "OutboxMessage",
    "OutboxStatus",
    "Region",
    "RequestHistory",
    "RequestSource",
    "RequestStatus",
    "RequesterType",
    "Role",
    "SecretKey",
    "User",
    "UserSession",
]
