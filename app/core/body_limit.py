"""Refuse over-large bodies on chosen routes with 413 in the one error shape.

Only the listed (method, path) pairs are limited, so upload routes added later keep their own
limits. The body is read (up to the limit + 1 byte) before the route runs and then replayed to
it; a declared Content-Length over the limit is refused without reading.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ErrorBody, ErrorResponse
from app.core.logging import request_id_var


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int, routes: set[tuple[str, str]]) -> None:
        self.app = app
        self.limit = limit
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"].rstrip("/")) not in (
            self.routes
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        payload = ErrorResponse(
            error=ErrorBody(
                code="too_large",
                message=f"The form is too large: at most {self.limit // 1024} KB. "
                "Shorten the case summary.",
            ),
            request_id=request_id_var.get(),
        ).model_dump(mode="json")
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
