"""The page an escalation e-mail links to. GET only shows the case's facts and a button (mail
scanners follow links, so a GET never acts); the click POSTs back to the same signed link, which
acknowledges the escalation for the person it was sent to. A wrong, tampered or expired link
answers 404; a second acknowledgement says it was acknowledged already (409)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.core.deps import SessionDep
from app.core.validation import SafeStr
from app.notifications.facts import case_facts
from app.roster import escalation
from app.roster.errors import AlreadyAcknowledged, InvalidAckLink
from app.web.pages import SECURITY_HEADERS, templates

router = APIRouter(include_in_schema=False)
TITLE = "Escalation"


def _page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    ctx = {"title": TITLE, "facts": None, "error": None, "done": False, "level": None, **context}
    return templates.TemplateResponse(
        request,
        "reports/escalation_ack.html",
        ctx,
        status_code=status,
        headers=SECURITY_HEADERS,
    )


@router.get("/escalations/ack/{token}", response_class=HTMLResponse)
def ack_page(request: Request, token: SafeStr, session: SessionDep) -> HTMLResponse:
    try:
        esc, req, _user = escalation.link_target(session, token)
    except InvalidAckLink:
        return _page(request, 404, error="This link is not valid.")
    facts = case_facts(session, req)
    if esc.acknowledged_at is not None:
        return _page(request, 409, facts=facts, error="This escalation was acknowledged already.")
    return _page(request, facts=facts, level=esc.level)


@router.post("/escalations/ack/{token}", response_class=HTMLResponse)
def ack_confirm(request: Request, token: SafeStr, session: SessionDep) -> HTMLResponse:
    try:
        req, esc = escalation.acknowledge_link(session, token)
    except InvalidAckLink:
        return _page(request, 404, error="This link is not valid.")
    except AlreadyAcknowledged as exc:
        return _page(request, 409, error=exc.message)
    return _page(request, facts=case_facts(session, req), level=esc.level, done=True)
