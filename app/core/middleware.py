"""ASGI middleware: a request id on every log line and response, and one log line per request
(route template, not the raw path, so no identifiers from the URL reach the log)."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import new_request_id, request_id_var

log = structlog.get_logger("app.access")


Observer = Callable[[str, str, int, float], None]


class RequestContextMiddleware:
    """``observer(method, route, status, seconds)`` is told of every request (metrics)."""

    def __init__(self, app: ASGIApp, observer: Observer | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # Accept a caller's id only if it looks like one (no log injection).
        rid = incoming if incoming.isalnum() and 8 <= len(incoming) <= 64 else new_request_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "(unmatched)")
            elapsed = time.perf_counter() - started
            method = str(scope.get("method"))
            log.info(
                "request",
                method=method,
                route=route,
                status=status_code,
                ms=round(elapsed * 1000, 1),
            )
            if self.observer is not None:
                self.observer(method, route, status_code, elapsed)
            request_id_var.reset(token)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer that does not set its own: API answers,
    webhooks and pages carry personal data, which no browser or proxy cache may keep. The
    service's own static files (``exempt`` path prefixes) stay cacheable."""

    def __init__(self, app: ASGIApp, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.exempt):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message["headers"] = [*headers, (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)
