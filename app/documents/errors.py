from __future__ import annotations

from app.core.errors import AppError, NotFound, Unprocessable


class NotAPdf(Unprocessable):
    code = "not_a_pdf"


class DocumentTooLarge(AppError):
    status_code = 413
    code = "document_too_large"


class DocumentNotFound(NotFound):
    code = "document_not_found"


class DocumentCorrupted(AppError):
    """The stored bytes no longer match their hash (a file changed or went missing)."""

    status_code = 503
    code = "document_unavailable"
