"""``GET /api/v1/admin/audit`` (search, keyset pages) and ``.../audit.csv`` (admins only).

Both are themselves recorded by ``AuditMiddleware``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.accounts.deps import RequireAdmin
from app.audit import service
from app.audit.schemas import AuditEventOut, AuditPage
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.core.validation import DbId, SafeAwareDateTime, SafeStr

router = APIRouter(prefix="/api/v1/admin", tags=["admin: audit trail"])

CSV_MAX_ROWS = service.CSV_MAX_ROWS

Actor = Annotated[
    SafeStr | None,
    Query(
        max_length=254,
        description="a user's id or e-mail address, or `requester`, `anonymous`, `system`",
    ),
]
Reference = Annotated[SafeStr | None, Query(max_length=16, description="a case reference")]
Action = Annotated[
    SafeStr | None,
    Query(max_length=160, description="part of the action, e.g. `/cases/` or `auth.login`"),
]
Since = Annotated[SafeAwareDateTime | None, Query(description="from this instant (inclusive)")]
Until = Annotated[SafeAwareDateTime | None, Query(description="to this instant (exclusive)")]


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Search the audit trail (newest first, keyset pages)",
    responses=error_responses(401, 403, 422),
)
def search(
    session: SessionDep,
    _admin: RequireAdmin,
    actor: Actor = None,
    reference: Reference = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
    cursor: Annotated[DbId | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    rows = service.search(
        session,
        limit=limit + 1,
        actor=actor,
        reference=reference,
        action=action,
        since=since,
        until=until,
        before_seq=cursor,
    )
    items = [AuditEventOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return AuditPage(items=items, next_cursor=items[-1].seq if len(rows) > limit else None)


@router.get(
    "/audit.csv",
    response_class=Response,
    summary="The same search as CSV (at most 100,000 rows, newest first)",
    responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 403, 422)},
)
def export_csv(
    session: SessionDep,
    _admin: RequireAdmin,
    actor: Actor = None,
    reference: Reference = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    body = service.csv_text(
        session, actor=actor, reference=reference, action=action, since=since, until=until
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
