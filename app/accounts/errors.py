from __future__ import annotations

from app.core.errors import AppError, Conflict, NotAuthenticated, NotFound, TooManyRequests


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    # The failure is recorded (throttling) even though the request fails.
    persist_changes = True


class SecondFactorRequired(NotAuthenticated):
    code = "second_factor_required"
    # The right password is not a failure: its count is taken back, and that must stay.
    persist_changes = True


class AccountThrottled(TooManyRequests):
    """Too many failed sign-ins for the account from anywhere: the password alone is not
    checked any more, the password with a valid second factor still signs in. The same answer
    whichever factor was wrong, and for every address, known or not."""

    code = "account_throttled"
    # A refused attempt with both factors is recorded as denied.
    persist_changes = True


class TokenExpired(NotAuthenticated):
    code = "token_expired"


class SessionRevoked(NotAuthenticated):
    code = "session_revoked"


class InvalidLink(AppError):
    status_code = 400
    code = "invalid_link"


class UserNotFound(NotFound):
    code = "user_not_found"


class EmailTaken(Conflict):
    code = "email_taken"


class SessionNotFound(NotFound):
    code = "session_not_found"
