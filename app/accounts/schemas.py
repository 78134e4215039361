from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from functools import cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.validation import normalise_email
from app.models import Role, UserLanguage

Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
Password = Annotated[
    str,
    Field(
        min_length=12,
        max_length=256,
        description="at least 12 characters; a passphrase of several words is best",
    ),
]


ZONE_PROBLEM = "must be a time zone name like 'Europe/Berlin' or 'Asia/Bishkek'"
LANGUAGE_PROBLEM = "must be one of " + ", ".join(code.value for code in UserLanguage)


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_zone(value: str) -> str:
    if value not in known_zones():
        raise ValueError(ZONE_PROBLEM)
    return value


TimeZoneName = Annotated[
    str,
    Field(max_length=64, description="IANA zone, e.g. Asia/Bishkek"),
    AfterValidator(check_zone),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(StrictModel):
    email: Email
    password: str = Field(min_length=1, max_length=256)
    totp_code: str | None = Field(
        None,
        min_length=6,
        max_length=20,
        pattern=r"^[0-9A-Za-z -]+$",
        description="6-digit code, required when the second factor is on; a recovery code "
        "(`xxxxx-xxxxx`) works in its place, once",
    )


class LoginOut(BaseModel):
    user_token: str = Field(
        description="Bearer token for staff, experts and admins (prefix `ut_`). Not the "
        "requester's link token (prefix `rl_`). Send as `Authorization: Bearer <user_token>`."
    )
    token_type: str = "bearer"
    expires_at: dt.datetime
    user: UserOut


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_active: bool
    totp_enabled: bool
    has_password: bool = Field(description="false until the invite link was used")
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    timezone: str = Field(description="IANA zone the person sees times in (pages and e-mails)")
    language: UserLanguage = Field(description="language of the person's pages and e-mails")


class AccountSettingsIn(StrictModel):
    """One's own time zone and language; an absent field stays as it is."""

    timezone: TimeZoneName | None = None
    language: UserLanguage | None = Field(None, description=LANGUAGE_PROBLEM)


class InviteIn(StrictModel):
    email: Email
    display_name: str = Field(min_length=1, max_length=200)
    role: Role


class UserUpdate(StrictModel):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    role: Role | None = None


class PasswordResetIn(StrictModel):
    email: Email


class SetPasswordIn(StrictModel):
    token: str = Field(min_length=10, max_length=200, description="from the e-mailed link")
    password: Password


class ChangePasswordIn(StrictModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: Password


class TotpSetupOut(BaseModel):
    secret: str = Field(description="base32 secret, for manual entry")
    provisioning_uri: str = Field(description="otpauth:// URI for a QR code")


class TotpConfirmIn(StrictModel):
    code: str = Field(pattern=r"^\d{6}$")


class Accepted(BaseModel):
    detail: str


class TotpConfirmOut(UserOut):
    recovery_codes: list[str] = Field(
        description="one-time codes that stand in for the authenticator app (a lost phone); "
        "shown only now, each works once at sign-in in place of the 6-digit code"
    )


SecondFactorCode = Annotated[
    str,
    Field(
        min_length=6,
        max_length=20,
        pattern=r"^[0-9A-Za-z -]+$",
        description="a 6-digit code from the authenticator app, or a recovery code",
    ),
]


class TotpDisableIn(StrictModel):
    password: str = Field(min_length=1, max_length=256)
    code: SecondFactorCode


class RecoveryCodesIn(StrictModel):
    password: str = Field(min_length=1, max_length=256, description="the current password")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(
        description="the new one-time codes, shown only now; the earlier ones stop working"
    )


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: dt.datetime
    last_seen_at: dt.datetime | None = Field(description="last use, to the minute")
    expires_at: dt.datetime
    user_agent: str | None
    ip_address: str | None
    current: bool = Field(description="the session this request was made with")
