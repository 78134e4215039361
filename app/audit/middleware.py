"""Records every access to a case, every admin change and every audit search, generically.

A pure ASGI middleware: after the endpoint ran, it reads the matched route's template
(``scope["route"]``), its path parameters and the status code, and appends one audit row before
the response starts. What it records:

- any route whose template has a ``{reference}`` parameter (API and pages: cases, the
  requester's own request, consultations, contacts, routing, exports, erasure, ...): read or
  write, whatever the outcome;
- any change (POST/PUT/PATCH/DELETE) under ``/api/v1/admin/`` (users, reference data, regions'
  leads, documents: the settings of the service) and under ``/admin/`` (the admin console's
  page forms doing the same changes);
- any read of the audit trail itself (``/api/v1/admin/audit...``, and on the Operations page
  ``/admin/operations/audit...``) and any download of a document (``/api/v1/documents/{id}``:
  attachments are personal data);
- a dead letter's retry (``POST /api/v1/outbox/{id}/retry`` and the Operations page's
  form): a message sent again;
- any request refused for its rate (429): a locked sign-in, a flood of submissions.

It never reads the body, the query string, cookies or the Authorization header. The actor is
whoever authentication recognised (``audit.note_actor``, called by ``accounts.authenticate``
for a user's session, API or pages, and by ``intake.authenticate_requester`` for a link);
otherwise "anonymous".
If the row cannot be written, the response is replaced by a 503: no audit, no data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit import service
from app.core.database import session_scope

log = structlog.get_logger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PREFIX = "/api/v1/admin/"
ADMIN_PAGES_PREFIX = "/admin/"
AUDIT_PREFIX = "/api/v1/admin/audit"
# Documents can be a request's attachments (personal data): every download is recorded.
DOCUMENTS_PREFIX = "/api/v1/documents/"
PAGE_AUDIT_PREFIX = "/admin/operations/audit"
# A dead letter's retry sends a message again: the API's and the Operations page's.
RETRIES = (
    "/api/v1/outbox/{message_id}/retry",
    "/admin/operations/dead-letters/{message_id}/retry",
)
_REFERENCE_CHARS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@dataclass(frozen=True)
class _Entry:
    action: str
    target: str | None
    actor: str
    actor_role: str | None
    status_code: int
    address: str | None
    user_agent: str | None


def _reference(value: Any) -> str:
    ref = str(value).strip().upper().replace("-", "")
    if 1 <= len(ref) <= 16 and set(ref) <= _REFERENCE_CHARS:
        return ref
    return "(invalid)"


def _params_target(params: dict[str, Any]) -> str | None:
    if not params:
        return None
    parts = [f"{k}={str(v)[:64]}" for k, v in sorted(params.items())]
    return ",".join(parts)[:160]


def entry_for(
    scope: Scope, status_code: int, ctx: service.ClientContext | None = None
) -> _Entry | None:
    """What to record for this request, or None."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    method = str(scope.get("method", ""))
    params: dict[str, Any] = dict(scope.get("path_params") or {})
    if "{reference}" in template:
        target: str | None = _reference(params.get("reference", ""))
    elif (
        template.startswith((AUDIT_PREFIX, DOCUMENTS_PREFIX, PAGE_AUDIT_PREFIX))
        or (template in RETRIES and method not in READ_METHODS)
        or (template.startswith((ADMIN_PREFIX, ADMIN_PAGES_PREFIX)) and method not in READ_METHODS)
        or status_code == 429
    ):
        target = _params_target(params)
    else:
        return None
    if ctx is not None and ctx.actor is not None:
        actor, role = ctx.actor, ctx.actor_role
    else:
        actor, role = "anonymous", None
    headers = dict(scope.get("headers") or [])
    client = scope.get("client")
    return _Entry(
        action=f"{method} {template}",
        target=target,
        actor=actor,
        actor_role=role,
        status_code=status_code,
        address=client[0] if client else None,
        user_agent=headers.get(b"user-agent", b"").decode("latin-1") or None,
    )


def _write(entry: _Entry) -> bool:
    try:
        with session_scope() as session:
            service.record(
                session,
                action=entry.action,
                actor=entry.actor,
                actor_role=entry.actor_role,
                target=entry.target,
                outcome=service.outcome_for(entry.status_code),
                status_code=entry.status_code,
                address=entry.address,
                user_agent=entry.user_agent,
            )
        return True
    except Exception:
        log.error("audit_record_failed", action=entry.action, exc_info=True)
        return False


_UNAVAILABLE = json.dumps(
    {
        "error": {
            "code": "audit_unavailable",
            "message": "The access could not be recorded, so it is refused. Try again shortly.",
            "fields": [],
            "details": None,
        },
        "request_id": None,
    }
).encode()


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        ctx = service.ClientContext(
            address=client[0] if client else None,
            user_agent=headers.get(b"user-agent", b"").decode("latin-1") or None,
        )
        token = service.client_context.set(ctx)
        started = False
        refused = False

        async def send_recorded(message: Message) -> None:
            nonlocal started, refused
            if refused:
                return  # the original body of a refused response is dropped
            if message["type"] == "http.response.start":
                started = True
                entry = entry_for(scope, int(message["status"]), ctx)
                if entry is not None and not await anyio.to_thread.run_sync(_write, entry):
                    refused = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 503,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": _UNAVAILABLE})
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            if not started:
                entry = entry_for(scope, 500, ctx)
                if entry is not None:
                    await anyio.to_thread.run_sync(_write, entry)
            raise
        finally:
            service.client_context.reset(token)
