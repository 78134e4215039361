"""``POST /api/v1/admin/mail/test``: an admin checks that outgoing mail works."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.accounts.deps import RequireAdmin
from app.core.deps import SessionDep
from app.core.errors import error_responses
from app.notifications import service
from app.notifications.schemas import TestEmailIn, TestEmailOut

admin_router = APIRouter(prefix="/api/v1/admin/mail", tags=["admin: mail"])


@admin_router.post(
    "/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestEmailOut,
    summary="Send a test e-mail",
    description="Queues a test e-mail to `to` (default: your own address). The worker sends it "
    "like any other e-mail; if it cannot, it is retried and then shows in "
    "`GET /api/v1/outbox/dead-letters` with the error.",
    responses=error_responses(401, 403, 422),
)
def send_test_email(body: TestEmailIn, admin: RequireAdmin, session: SessionDep) -> TestEmailOut:
    row = service.request_test_email(session, admin=admin, to=body.to)
    return TestEmailOut(outbox_id=row.id, status=row.status.value)
