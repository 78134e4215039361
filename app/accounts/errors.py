from __future__ import annotations

from app.core.errors import AppError, Conflict, NotAuthenticated, NotFound


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    # The failure is recorded (throttling) even though the request fails.
    persist_changes = True


class SecondFactorRequired(NotAuthenticated):
    code = "second_factor_required"


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
