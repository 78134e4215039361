"""The page an offer e-mail links to. GET only shows the offer and two buttons (mail scanners
follow links, so a GET never acts); the expert's click POSTs back to the same signed link.

The signed, expiring link is the proof of who acts (like a password-reset link): it names one
assignment, and only that assignment's expert can have received it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from app.core.deps import SessionDep
from app.core.validation import SafeStr
from app.flows import request as flows
from app.models import Assignment, AssignmentStatus, IntakeRequest, User
from app.notifications.facts import case_facts, local_time_named, recipient_zone
from app.routing import links
from app.routing.errors import InvalidOfferLink, OfferClosed
from app.web.pages import SECURITY_HEADERS, templates

router = APIRouter(include_in_schema=False)
TITLE = "Request offered to you"


def _page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    ctx = {"title": TITLE, "facts": None, "error": None, "done": None, "token": "", **context}
    return templates.TemplateResponse(
        request, "expert_offer.html", ctx, status_code=status, headers=SECURITY_HEADERS
    )


def _load(session: SessionDep, token: str) -> tuple[Assignment, IntakeRequest]:
    assignment_id = links.verify(token)
    a = session.get(Assignment, assignment_id)
    req = session.get(IntakeRequest, a.request_id) if a is not None else None
    if a is None or req is None:
        raise InvalidOfferLink("This link is not valid.")
    return a, req


@router.get("/experts/offers/{token}", response_class=HTMLResponse)
def offer_page(request: Request, token: SafeStr, session: SessionDep) -> HTMLResponse:
    try:
        a, req = _load(session, token)
    except InvalidOfferLink as exc:
        return _page(request, 400, error=exc.message)
    facts = case_facts(session, req)
    if a.status != AssignmentStatus.offered:
        return _page(request, 409, facts=facts, error=f"This offer is {a.status.value}.")
    # The link's holder is the expert it was sent to: their own zone, named, as in the e-mail.
    respond_by = local_time_named(a.respond_by, recipient_zone(session, a.expert_id))
    return _page(request, facts=facts, token=token, respond_by=respond_by)


@router.post("/experts/offers/{token}", response_class=HTMLResponse)
def offer_answer(
    request: Request,
    token: SafeStr,
    session: SessionDep,
    action: Annotated[str, Form()] = "",
) -> HTMLResponse:
    try:
        a, req = _load(session, token)
    except InvalidOfferLink as exc:
        return _page(request, 400, error=exc.message)
    facts = case_facts(session, req)
    if action not in ("accept", "decline"):
        return _page(request, 422, facts=facts, token=token, error="Choose accept or decline.")
    expert = session.get(User, a.expert_id)
    if expert is None or not expert.is_active:
        return _page(request, 400, error="This link is not valid.")
    try:
        flows.answer_offer(session, a.id, expert, accept=action == "accept", via="email_link")
    except OfferClosed as exc:
        return _page(request, 409, facts=facts, error=exc.message)
    return _page(request, facts=facts, done="accepted" if action == "accept" else "declined")
