"""People who sign in (admin, staff, expert), their sessions, one-time links and throttles."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, LargeBinary, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamps, UUIDPk, str_enum


class Role(enum.StrEnum):
    admin = "admin"
    staff = "staff"
    expert = "expert"


class UserLanguage(enum.StrEnum):
    """Languages of the desk pages (the catalogs of app/web/locale); ``ar`` is right to left."""

    en = "en"
    ru = "ru"
    es = "es"
    ar = "ar"


class User(UUIDPk, Timestamps, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    # TOTP secret, encrypted with the master key (its id kept for rotation).
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_key_id: Mapped[str | None] = mapped_column(String(64))
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    # Last accepted TOTP time-step, so a code cannot be replayed within its window.
    totp_last_step: Mapped[int | None]
    password_changed_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    # The person's own zone (IANA name) and language for pages and e-mails. An expert's zone
    # IS their profile's (expert_profiles.timezone): both services that change one change both.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    language: Mapped[UserLanguage] = mapped_column(
        str_enum(UserLanguage, "user_language", length=8),
        default=UserLanguage.en,
        server_default=UserLanguage.en.value,
    )

    sessions: Mapped[list[UserSession]] = relationship(back_populates="user", lazy="raise")


class UserSession(UUIDPk, Base):
    """A revocable sign-in. The bearer token is only stored as its SHA-256 hash."""

    __tablename__ = "user_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_seen_at: Mapped[dt.datetime | None]
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship(back_populates="sessions", lazy="raise")

    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)


class RecoveryCode(UUIDPk, Base):
    """A one-time code that stands in for the authenticator app (a lost phone), stored only as
    its SHA-256 hash; used once (``used_at``), all replaced when new ones are generated."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_recovery_codes_user_id_code_hash", "user_id", "code_hash"),)


class AccountTokenPurpose(enum.StrEnum):
    invite = "invite"
    password_reset = "password_reset"


class AccountToken(UUIDPk, Base):
    """A one-time link (invite or password reset), stored hashed, single use, expiring."""

    __tablename__ = "account_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[AccountTokenPurpose] = mapped_column(
        str_enum(AccountTokenPurpose, "account_token_purpose")
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The link itself, encrypted with the master key, so the worker can render it at send time
    # while the outbox row holds only ids.
    token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    token_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_account_tokens_user_id", "user_id"),)


class LoginThrottle(Base):
    """Counted sign-in attempts per key, shared by every API process (app/accounts/throttle.py);
    the submission limit keeps its database counts here too."""

    __tablename__ = "login_throttles"

    # A prefix ("account:", "pair:", "ip:", "totp:", "submit:ip:") and a keyed hash (HMAC) of
    # the e-mail and/or address: no personal data in clear.
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[dt.datetime]
    last_failure_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None]
    # Whether the latest attempt counted here was let through to be checked: the one upsert
    # that counts an attempt also decides it, and RETURNING reads the decision back.
    last_allowed: Mapped[bool] = mapped_column(default=True, server_default=true())
