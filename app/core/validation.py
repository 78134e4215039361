"""Input normalisers shared by schemas (messages are shown to people: keep them plain)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalise_email(value: str) -> str:
    try:
        # No DNS look-up: it is slow, and fails on closed networks.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    return result.normalized.lower()
