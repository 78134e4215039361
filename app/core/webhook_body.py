"""The raw body of a signed webhook (Zoom, WhatsApp): the exact bytes the sender signed, read
up to a limit and refused with 413 beyond it, before anything parses them."""

from __future__ import annotations

from fastapi import Request

from app.core.errors import AppError


class WebhookTooLarge(AppError):
    status_code = 413
    code = "too_large"


class LimitedBody:
    """A dependency: ``Annotated[bytes, Depends(LimitedBody(64 * 1024))]``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def __call__(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise WebhookTooLarge("The webhook body is too large.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.limit:
                raise WebhookTooLarge("The webhook body is too large.")
        return bytes(body)
