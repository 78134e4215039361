"""Staff pages: the queue and the case page (staff and admins; an expert gets 403).

- ``GET /staff/queue``: the queue service's page (``app.queue.service.queue_page``) with its
  filters as GET parameters (so every filter is a bookmarkable URL), the built-in views as tabs,
  a live countdown (``staff.js``; without JavaScript the minutes are rendered by the server) and
  colour plus text for due soon and breached. ``GET /staff/queue/live`` answers the same rows as
  an HTML fragment; ``staff.js`` fetches it every ``REFRESH_SECONDS``.
- ``GET /staff/cases/{reference}``: the case, conversation first (``app.cases.service.timeline``:
  e-mails both ways, logged contacts, internal notes, status changes, consultations; the newest
  last, the reply box right under it, the request's facts beside it, below it on a phone), then
  the actions, routing, offers, e-mails and history. Each POST checks CSRF, calls the domain's
  service and redirects back with a message (``?done=``); a refused value comes back with the
  error next to its field (422).
- A reply is previewed before it is sent (``.../reply/preview``: the exact e-mail, built by the
  same function as the sending, ``app/cases/reply_mail.py``); ``.../reply`` sends only the
  e-mail whose digest the preview showed, and refuses a body that greets (the e-mail greets);
  both steps are ``app/web/case_reply.py``, shared with the expert's own case page.
- "Take it" (``.../take``) from the case or the queue: the staff owner of the request.
- Codes (history events, outbox kinds and states, routing triggers and rules, regions) are
  shown as words in the viewer's language (the ``*_LABELS`` maps below).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from app.cases import service as cases
from app.core.deps import SessionDep
from app.core.errors import AppError, NotFound
from app.core.settings import get_settings
from app.core.time import now
from app.core.validation import SafeStr
from app.experts import service as experts
from app.flows import request as flows
from app.intake import records as intake
from app.intake.schemas import ReportTopic, Want
from app.intake.sla import SlaState
from app.intake.status import FINAL, allowed_moves
from app.models import (
    AssignmentStatus,
    CaseStage,
    ConsultationStatus,
    ContactChannel,
    ContactVia,
    DeliveryState,
    ExpertProfile,
    IntakeRequest,
    OutboxStatus,
    RequesterType,
    RequestSource,
    RequestStatus,
    RoutingRule,
    User,
)
from app.models.messages import MessageDirection, MessageKind, PresenceActivity
from app.queue import service as queue
from app.queue.errors import InvalidQueueParameter
from app.queue.repository import QueueFilters, QueueSort, QueueView
from app.queue.schemas import QueuePage
from app.reference import service as reference
from app.replies import service as replies
from app.routing import queries as routing_queries
from app.sla import service as sla
from app.sla.schemas import ContactIn
from app.web import case_reply, case_whatsapp
from app.web.admin_regions import RATINGS
from app.web.auth import (
    CsrfForm,
    StaffPageUser,
    not_found,
    page,
    page_language,
    redirect,
    viewer_zone,
)
from app.web.i18n import N_, Text, country_names, filled, from_local_input, pN_, translations
from app.web.saved_replies import LANGUAGE_NAMES

router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 30
PRESENCE_SECONDS = 15
PAGE_SIZE = 50


VIEWS: dict[QueueView, str] = {
    QueueView.all_open: N_("All open"),
    QueueView.mine: N_("Mine"),
    QueueView.unassigned: N_("Unassigned"),
    QueueView.due_soon: N_("Due soon"),
    QueueView.breached: N_("Breached"),
    QueueView.all: N_("All, ended too"),
}
SLA_LABELS: dict[str, str] = {
    SlaState.awaiting.value: N_("On track"),
    SlaState.due_soon.value: N_("Due soon"),
    SlaState.breached.value: N_("Breached"),
    SlaState.met.value: N_("Answered in time"),
    SlaState.ended.value: N_("Ended before the deadline"),
}
STATUS_LABELS: dict[str, str] = {
    RequestStatus.new.value: N_("New"),
    RequestStatus.in_progress.value: N_("In progress"),
    RequestStatus.consultation_scheduled.value: N_("Consultation booked"),
    RequestStatus.consultation_held.value: N_("Consultation held"),
    RequestStatus.report_ordered.value: N_("Report ordered"),
    RequestStatus.closed.value: N_("Closed"),
    RequestStatus.declined.value: N_("Declined"),
    RequestStatus.spam.value: N_("Spam"),
    RequestStatus.withdrawn.value: N_("Withdrawn"),
}
CHANNELS: dict[str, str] = {
    ContactChannel.email.value: N_("E-mail"),
    ContactChannel.phone.value: N_("Phone"),
    ContactChannel.whatsapp.value: N_("WhatsApp"),
}
# The request's fixed values as the desk reads them (short; the public form asks in full).
WANT_LABELS: dict[str, str] = {
    Want.sample_report.value: N_("Sample report"),
    Want.expert_cv.value: N_("Expert's CV"),
    Want.consultation.value: N_("Consultation"),
}
TOPIC_LABELS: dict[str, str] = {
    ReportTopic.freedom_of_speech.value: N_("Freedom of speech"),
    ReportTopic.political_repression.value: N_("Political repression"),
    ReportTopic.corruption.value: N_("Corruption"),
    ReportTopic.war_crimes.value: N_("War crimes"),
    ReportTopic.ethnic_persecution.value: N_("Persecution for ethnicity"),
    ReportTopic.religious_persecution.value: N_("Persecution for religion"),
    ReportTopic.social_status_persecution.value: N_("Persecution for social status"),
    ReportTopic.gender_based_violence.value: N_("Gender-based violence"),
    ReportTopic.lgbt_persecution.value: N_("Persecution of LGBT people"),
    ReportTopic.forced_conscription.value: N_("Forced conscription"),
    ReportTopic.cartel_gang_violence.value: N_("Cartel and gang violence"),
    ReportTopic.statelessness.value: N_("Statelessness"),
    ReportTopic.detention_conditions.value: N_("Conditions in detention"),
}
STAGE_LABELS: dict[str, str] = {
    CaseStage.not_filed.value: N_("Not filed yet"),
    CaseStage.filed_pending.value: N_("Filed, waiting for a decision"),
    CaseStage.refused_appeal.value: N_("Refused, appealing"),
    CaseStage.hearing_scheduled.value: N_("A hearing is scheduled"),
    CaseStage.other.value: N_("Other"),
}
REQUESTER_LABELS: dict[str, str] = {
    RequesterType.applicant.value: N_("The applicant"),
    RequesterType.law_firm.value: N_("A law firm"),
}
SOURCE_LABELS: dict[str, str] = {
    RequestSource.form.value: N_("Web form"),
    RequestSource.email.value: N_("E-mail"),
    RequestSource.whatsapp.value: N_("WhatsApp"),
}
VIA_LABELS: dict[str, str] = {
    ContactVia.logged.value: N_("logged"),
    ContactVia.reply.value: N_("reply from the case"),
}
# Shown with pgettext("assignment", label): "accepted" alone also reads "accepted <when>".
ASSIGNMENT_LABELS: dict[str, str] = {
    AssignmentStatus.offered.value: pN_("assignment", "offered"),
    AssignmentStatus.accepted.value: pN_("assignment", "accepted"),
    AssignmentStatus.declined.value: pN_("assignment", "declined"),
    AssignmentStatus.expired.value: pN_("assignment", "expired"),
    AssignmentStatus.reassigned.value: pN_("assignment", "reassigned"),
    AssignmentStatus.cancelled.value: pN_("assignment", "cancelled"),
}
# Codes the case page shows, as words (msgids; the templates translate them). A code not listed
# here is shown with its underscores and dots as spaces (``words``), never raw.
HISTORY_LABELS: dict[str, str] = {
    "submitted": N_("Request received"),
    "linked": N_("Linked to an earlier request from the same address"),
    "ack_queued": N_("Acknowledgement e-mail queued"),
    "ack_capped": N_("Acknowledgement not sent: too many from this address today"),
    "ack_skipped": N_("Acknowledgement skipped"),
    "ack_suppressed": N_("Acknowledgement held back (an automatic mail)"),
    "link_queued": N_("Private link e-mail queued"),
    "link_capped": N_("Private link not sent: too many from this address today"),
    "mail_set_aside": N_("Mail set aside"),
    "opened_from_set_aside": N_("Opened from mail set aside"),
    "possible_follow_up": N_("Possibly a follow-up of another request"),
    "requester_message": N_("Message from the requester"),
    "delivery_report": N_("Delivery report received"),
    "triage_completed": N_("Triage completed"),
    "assignment_offered": N_("Offered to an expert"),
    "assignment_accepted": N_("The expert accepted"),
    "assignment_declined": N_("The expert declined"),
    "assignment_expired": N_("The offer expired without an answer"),
    "assignment_reassigned": N_("Given to another expert"),
    "assignment_released": N_("The expert's assignment ended"),
    "routing_no_candidate": N_("No expert could take it"),
    "duty_lead_alerted": N_("Duty lead alerted: nobody on duty for the region"),
    "escalation_level_sent": N_("Escalation sent"),
    "escalation_level_skipped": N_("Escalation step skipped: nobody to send it to"),
    "escalation_acknowledged": N_("Escalation acknowledged"),
    "contact_recorded": N_("Contact recorded"),
    "contact_bounced": N_("Reply bounced: it no longer counts as the first response"),
    "reply_queued": N_("Reply queued"),
    "reply_sent": N_("Reply sent"),
    "reply_refused": N_("Reply refused by the mail server"),
    "note_added": N_("Internal note added"),
    "status_changed": N_("Status changed"),
    "fields_corrected": N_("Details corrected"),
    "merged_into": N_("Merged into another request"),
    "merged_from": N_("A duplicate was merged into this request"),
    "merge_undone": N_("Merge undone"),
    "documents_sent": N_("Documents sent"),
    "documents_missing": N_("Documents missing: staff alerted"),
    "sample_report_resend_queued": N_("Sample report queued to send again"),
    "sample_report_resent": N_("Sample report sent again"),
    "consultation_booked": N_("Consultation booked"),
    "consultation_rescheduled": N_("Consultation moved to another time"),
    "consultation_moved": N_("Consultation moved to another expert"),
    "consultation_cancelled": N_("Consultation cancelled"),
    "consultation_held": N_("Consultation held"),
    "consultation_no_show": N_("The person did not come to the consultation"),
    "owner_taken": N_("Taken by a staff member"),
    "erased": N_("Personal data erased"),
    "whatsapp_failed": N_("WhatsApp message could not be sent"),
    "whatsapp_fallback": N_("WhatsApp failed: the e-mail was sent instead"),
}
# The outbox's kinds (app/outbox/registry.py) as what the e-mail or task is.
OUTBOX_KIND_LABELS: dict[str, str] = {
    "accounts.invite": N_("Invitation e-mail"),
    "accounts.password_reset": N_("Password reset e-mail"),
    "cases.reply": N_("Reply from the case"),
    "calendars.conflict": N_("Alert: a consultation clashes with the expert's calendar"),
    "calendars.unreadable": N_("Alert: an expert's calendar cannot be read"),
    "cases.sample_report": N_("Sample report sent again"),
    "experts.offer": N_("Offer to an expert"),
    "experts.triage_alert": N_("Triage alert to staff"),
    "inbound.ack": N_("Acknowledgement of an e-mail"),
    "inbound.bounce_notice": N_("Bounce notice to staff"),
    "inbound.triage_alert": N_("Triage alert for an e-mailed request"),
    "intake.ack": N_("Acknowledgement e-mail"),
    "intake.link": N_("Private link e-mail"),
    "intake.submitted": N_("Processing of the new request"),
    "meetings.cap_alert": N_("Alert: meeting limit nearly reached"),
    "meetings.create": N_("Online meeting created"),
    "meetings.delete": N_("Online meeting deleted"),
    "meetings.deleted_alert": N_("Alert: meeting deleted in Zoom"),
    "meetings.update": N_("Online meeting changed"),
    "meetings.webhook_event": N_("Zoom event"),
    "notifications.test_email": N_("Test e-mail"),
    "outbox.dead_letter_alert": N_("Alert: a message could not be sent"),
    "roster.escalation_mail": N_("Escalation e-mail"),
    "roster.escalation_next": N_("Next escalation step"),
    "roster.gaps_mail": N_("Roster gaps e-mail"),
    "roster.uncovered_alert": N_("Alert: nobody on duty for the region"),
    "scheduling.invite": N_("Calendar invitation"),
    "sendouts.consultation_reminder": N_("Consultation reminder"),
    "sendouts.documents": N_("Sample report and CV e-mail"),
    "sendouts.documents_missing": N_("Alert: documents missing"),
    "sla.escalation": N_("First-response escalation"),
    "sla.mail": N_("First-response reminder e-mail"),
    "sla.reminder": N_("First-response reminder"),
    "whatsapp.inbound": N_("WhatsApp message received"),
    "whatsapp.send": N_("WhatsApp message"),
}
OUTBOX_STATE_LABELS: dict[str, str] = {
    OutboxStatus.pending.value: N_("Waiting to be sent"),
    OutboxStatus.claimed.value: N_("Being sent"),
    OutboxStatus.sent.value: N_("Sent out"),
    OutboxStatus.dead.value: N_("Failed for good"),
    OutboxStatus.cancelled.value: N_("Cancelled, not needed"),
}
DELIVERY_LABELS: dict[str, str] = {
    DeliveryState.queued.value: N_("queued"),
    DeliveryState.sent.value: N_("delivered to the mail server"),
    DeliveryState.bounced.value: N_("bounced"),
}
CONSULTATION_STATE_LABELS: dict[str, str] = {
    ConsultationStatus.booked.value: N_("Booked"),
    ConsultationStatus.cancelled.value: N_("Cancelled"),
    ConsultationStatus.held.value: N_("Held"),
    ConsultationStatus.no_show.value: N_("The person did not come"),
}
ROUTING_TRIGGER_LABELS: dict[str, str] = {
    "submitted": N_("on submission"),
    "declined": N_("after a decline"),
    "expired": N_("after an offer expired"),
    "staff_reassign": N_("staff reassigned"),
    "staff_route": N_("staff asked routing again"),
    "expert_deactivated": N_("the expert was deactivated"),
}
ROUTING_RULE_LABELS: dict[str, str] = {
    RoutingRule.country.value: N_("an expert for the country"),
    RoutingRule.region.value: N_("an expert for the region"),
    RoutingRule.general.value: N_("no expert for the country or region: staff triage"),
    RoutingRule.none.value: N_("nobody free now: staff triage"),
    RoutingRule.staff.value: N_("chosen by staff"),
}
# One timeline entry's kind, as the conversation names it.
TIMELINE_LABELS: dict[str, str] = {
    "inbound": N_("From the requester"),
    "reply": N_("Reply sent from the case"),
    "automatic": N_("Automatic e-mail"),
    "delivery_report": N_("Delivery report"),
    "contact": N_("Contact logged"),
    "note": N_("Internal note"),
    "status": N_("Status changed"),
    "consultation": N_("Consultation"),
}


def words(code: str) -> str:
    """A code no label map knows, readable at least: ``sla_step_x.y`` -> ``sla step x y``."""
    return re.sub(r"[_.]+", " ", code).strip()


DONE: dict[str, str] = {
    "contact": N_("The contact is recorded."),
    "assigned": N_("The request is offered to the expert."),
    "rerouted": N_("The request is offered to the next candidate."),
    "note": N_("The note is added."),
    "reply": N_(
        "The reply is queued and will be sent in a moment. It counts as the first response."
    ),
    "status": N_("The status is changed."),
    "taken": N_("You took this request: you answer the requester."),
    "whatsapp": case_whatsapp.SENT,
}


def labels_context(lang: str) -> dict[str, Any]:
    """Labels of a request's fixed values (msgids; the templates translate them) and the
    countries' names in the viewer's language, for the desk's case pages and the queue."""
    return {
        "want_labels": WANT_LABELS,
        "topic_labels": TOPIC_LABELS,
        "stage_labels": STAGE_LABELS,
        "requester_labels": REQUESTER_LABELS,
        "source_labels": SOURCE_LABELS,
        "channel_labels": CHANNELS,
        "assignment_labels": ASSIGNMENT_LABELS,
        "via_labels": VIA_LABELS,
        "rating_labels": RATINGS,
        "country_names": dict(country_names(lang)),
        "history_labels": HISTORY_LABELS,
        "outbox_kind_labels": OUTBOX_KIND_LABELS,
        "outbox_state_labels": OUTBOX_STATE_LABELS,
        "delivery_labels": DELIVERY_LABELS,
        "consultation_state_labels": CONSULTATION_STATE_LABELS,
        "routing_trigger_labels": ROUTING_TRIGGER_LABELS,
        "routing_rule_labels": ROUTING_RULE_LABELS,
        "timeline_labels": TIMELINE_LABELS,
        "words": words,
    }


def region_names(session: SessionDep) -> dict[str, str]:
    """Region codes -> the names admins gave them (shown instead of the codes)."""
    return {r.code: r.name for r in reference.list_regions(session)}


# The queue -----------------------------------------------------------------------------------


@dataclass
class QueueQuery:
    view: QueueView = QueueView.all_open
    sort: QueueSort = QueueSort.due
    statuses: list[str] = field(default_factory=list)
    sla_states: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    assigned: str = ""
    q: str = ""
    cursor: str = ""
    errors: dict[str, str | Text] = field(default_factory=dict)


def _enum_values(
    raw: list[str], allowed: Sequence[str], name: str, errors: dict[str, str | Text]
) -> list[str]:
    out = []
    for v in raw:
        if v in allowed:
            out.append(v)
        elif v:
            errors[name] = filled(N_("'%(value)s' is not a choice here."), value=v[:40])
    return out


def parse_query(request: Request) -> QueueQuery:
    p = request.query_params
    qq = QueueQuery(errors={})
    try:
        qq.view = QueueView(p.get("view") or QueueView.all_open.value)
    except ValueError:
        qq.errors["view"] = N_("Not a view of the queue.")
    try:
        qq.sort = QueueSort(p.get("sort") or QueueSort.due.value)
    except ValueError:
        qq.errors["sort"] = N_("Not a sort order.")
    qq.statuses = _enum_values(
        p.getlist("status"), [s.value for s in RequestStatus], "status", qq.errors
    )
    qq.sla_states = _enum_values(
        p.getlist("sla_state"), [s.value for s in SlaState], "sla_state", qq.errors
    )
    qq.regions = [r.strip()[:64] for r in p.getlist("region") if r.strip()]
    for c in p.getlist("country"):
        text = c.strip().upper()
        if not text:
            continue
        if len(text) != 2 or not text.isalpha():
            qq.errors["country"] = N_("A country is a two-letter code, e.g. KG.")
        else:
            qq.countries.append(text)
    assigned = p.get("assigned", "")
    qq.assigned = assigned if assigned in ("", "yes", "no") else ""
    qq.q = (p.get("q") or "").strip()[:320]
    qq.cursor = (p.get("cursor") or "")[:400]
    return qq


def _filters(session: SessionDep, qq: QueueQuery) -> QueueFilters:
    f = QueueFilters(
        statuses=[RequestStatus(s) for s in qq.statuses],
        sla_states=[SlaState(s) for s in qq.sla_states],
        regions=qq.regions,
        countries=qq.countries,
        unassigned=qq.assigned == "no",
        # In the query, before paging: a filter applied to a page would leave pages empty.
        assigned=qq.assigned == "yes",
    )
    try:
        queue.apply_search(session, f, qq.q)
    except InvalidQueueParameter:
        qq.errors["q"] = N_("Enter a reference (e.g. K7M-4QX-2P) or an exact e-mail address.")
    return f


def load_queue(session: SessionDep, user: User, qq: QueueQuery) -> QueuePage | None:
    f = _filters(session, qq)
    if "q" in qq.errors:
        return None
    try:
        result = queue.queue_page(
            session,
            user_id=user.id,
            filters=f,
            view=qq.view,
            sort=qq.sort,
            cursor=qq.cursor or None,
            limit=PAGE_SIZE,
        )
    except InvalidQueueParameter:
        qq.errors["cursor"] = N_("This page link is out of date; showing the first page.")
        qq.cursor = ""
        result = queue.queue_page(
            session, user_id=user.id, filters=f, view=qq.view, sort=qq.sort, limit=PAGE_SIZE
        )
    return result


def sla_context(req: IntakeRequest) -> dict[str, Any]:
    """The first-response clock of one request for a page: state, minutes left, the countdown's
    server time and the labels (the staff case page and the expert's case page)."""
    return {
        "sla_state": intake.current_sla(req).value,
        "sla_labels": SLA_LABELS,
        "status_labels": STATUS_LABELS,
        "minutes_left": (
            int((req.first_response_due_at - now()).total_seconds() // 60)
            if req.first_responded_at is None and req.ended_at is None
            else None
        ),
        "server_now": now().isoformat(),
        "due_soon_minutes": get_settings().sla_due_soon_minutes,
    }


def _live_context(
    request: Request, session: SessionDep, user: User, result: QueuePage | None
) -> dict[str, Any]:
    return {
        **labels_context(page_language(request, user)),
        "region_names": region_names(session),
        "queue_url": "/staff/queue" + (f"?{request.url.query}" if request.url.query else ""),
        "result": result,
        "server_now": now().isoformat(),
        "due_soon_minutes": get_settings().sla_due_soon_minutes,
        "sla_labels": SLA_LABELS,
        "status_labels": STATUS_LABELS,
        "query": request.url.query,
    }


def _next_url(request: Request, cursor: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    return "/staff/queue?" + urlencode(params)


@router.get("/staff/queue")
def queue_page(request: Request, session: SessionDep, user: StaffPageUser) -> Response:
    qq = parse_query(request)
    result = load_queue(session, user, qq)
    regions = reference.list_regions(session)
    ctx = {
        "title": N_("Queue"),
        "qq": qq,
        "errors": qq.errors,
        "views": VIEWS,
        "regions": regions,
        "statuses": STATUS_LABELS,
        "refresh_seconds": REFRESH_SECONDS,
        "next_url": _next_url(request, result.next_cursor)
        if result and result.next_cursor
        else None,
        **_live_context(request, session, user, result),
    }
    return page(
        request, "staff/queue.html", ctx, user=user, status=422 if "q" in qq.errors else 200
    )


@router.get("/staff/queue/live")
def queue_live(request: Request, session: SessionDep, user: StaffPageUser) -> Response:
    """The rows and counts only, for the page's background refresh."""
    qq = parse_query(request)
    result = load_queue(session, user, qq)
    return page(
        request,
        "staff/_queue_live.html",
        {"title": "", **_live_context(request, session, user, result)},
        user=user,
    )


# The case page -------------------------------------------------------------------------------


def _case(session: SessionDep, reference: str, user: User) -> IntakeRequest:
    return cases.case_for(session, reference, user)


PII_LABELS = {
    "full_name": pN_("person", "Name"),
    "law_firm_name": N_("Law firm"),
    "contact_name": N_("Contact at the firm"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "whatsapp": N_("WhatsApp"),
    "case_summary": N_("Case summary"),
}


def case_context(session: SessionDep, req: IntakeRequest) -> dict[str, Any]:
    pii = cases.personal(req) or {}
    rows, decisions = routing_queries.routing_of(session, req)
    names = dict(session.execute(select(ExpertProfile.user_id, ExpertProfile.public_name)).all())
    expert_choices = [
        (r.profile.user_id, r.profile.public_name, r.available_now)
        for r in experts.list_profiles(session, active_only=True)
    ]
    moves = [m for m in allowed_moves(req.status) if m != RequestStatus.withdrawn]
    history = cases.history(session, req)
    saved_same, saved_other = replies.for_language(session, req.language)
    return {
        "req": req,
        "pii": pii,
        "pii_labels": PII_LABELS,
        "erased": req.data_key_enc is None,
        **sla_context(req),
        "country": cases.country_of(session, req),
        "assignments": rows,
        "decisions": decisions,
        "expert_names": {str(k): v for k, v in names.items()},
        "expert_choices": expert_choices,
        "consultations": cases.consultations(session, req),
        "contacts": [(c, sla.reveal_note(req, c)) for c in cases.contacts(session, req)],
        "messages": cases.outbox_rows(session, req),
        "history": history,
        "actor_names": actor_names(session, [h.actor for h, _ in history]),
        "moves": moves,
        "final": req.status in FINAL,
        "channels": CHANNELS,
        "linked": cases.linked_reference(session, req),
        "case_messages": case_messages(req, cases.messages(session, req), names),
        "notes": [
            {"at": n.created_at, "author": n.author_name or "—", "body": n.body}
            for n in cases.notes(session, req)
        ],
        "timeline": cases.timeline(session, req),
        "owner": cases.owner_of(session, req),
        "region_names": region_names(session),
        "saved_same": saved_same,
        "saved_other": saved_other,
        "reply_language": replies.primary_language(req.language),
        "language_names": LANGUAGE_NAMES,
        "reply_enabled": req.data_key_enc is not None and bool(pii.get("email")),
        "note_enabled": req.data_key_enc is not None,
        "status_enabled": True,
        # "Offer" says what the assign form does: routing's offer, with its real time to answer.
        "offer_minutes": get_settings().offer_response_minutes,
    }


def actor_names(session: SessionDep, actors: Sequence[str]) -> dict[str, str]:
    """``user:<id>`` -> the user's display name (other actors: shown as they are)."""
    ids: set[uuid.UUID] = set()
    for a in actors:
        if a.startswith("user:"):
            try:
                ids.add(uuid.UUID(a[5:]))
            except ValueError:
                continue
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()
    return {f"user:{uid}": name for uid, name in rows}


def undo(session: SessionDep) -> None:
    """A refused action: nothing of it may be committed with the re-rendered page."""
    session.info.pop("after_commit", None)
    session.rollback()


def refused(
    request: Request,
    session: SessionDep,
    user: User,
    reference: str,
    exc: AppError,
    *,
    field: str,
    message: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """Undo the refused action and show the case again with the error next to ``field``."""
    undo(session)
    req = _case(session, reference, user)
    errors = {field: message or exc.message}
    return render_case(
        request, session, user, req, errors=errors, values=values, status=exc.status_code
    )


# The case services' refusals ("body: is empty; write the reply") as whole sentences for a page,
# in the viewer's language; a refusal not listed here is shown as the service wrote it.
CASE_INPUT_TEXTS: dict[tuple[str, str], str] = {
    ("body", "is empty; write the reply"): N_("The reply is empty. Write the message to send."),
    ("body", "is empty; write the note"): N_("The note is empty. Write the note to add."),
    ("subject", "must be one line"): N_("The subject must be one line."),
    ("email", "the request has no e-mail address; correct it first"): N_(
        "The request has no e-mail address. Correct it on the case first, then reply."
    ),
}
CASE_ERROR_TEXTS: dict[str, str] = {
    "request_erased": N_("This request's personal data was erased: nothing personal can be kept."),
}
_LONGER = re.compile(r"^is longer than (\d+) characters$")


def case_error_text(request: Request, user: User | None, exc: AppError) -> str:
    """``exc`` (a refusal of a case service) as a whole sentence in the viewer's language."""
    lang = page_language(request, user)
    gettext = translations(lang).gettext
    ngettext = translations(lang).ngettext
    if exc.fields:
        problem = exc.fields[0]
        known = CASE_INPUT_TEXTS.get((problem.field, problem.message))
        if known is not None:
            return gettext(known)
        longer = _LONGER.match(problem.message)
        if longer is not None:
            limit = int(longer.group(1))
            if problem.field == "subject":
                text = ngettext(
                    "The subject is longer than %(num)d character. Shorten it.",
                    "The subject is longer than %(num)d characters. Shorten it.",
                    limit,
                )
            else:
                text = ngettext(
                    "The text is longer than %(num)d character. Shorten it.",
                    "The text is longer than %(num)d characters. Shorten it.",
                    limit,
                )
            return text % {"num": limit}
        return problem.message
    retry = exc.details.get("retry_after_seconds") if isinstance(exc.details, dict) else None
    if isinstance(retry, int):
        text = ngettext(
            "Too many attempts. Try again in %(num)d second.",
            "Too many attempts. Try again in %(num)d seconds.",
            retry,
        )
        return text % {"num": retry}
    known = CASE_ERROR_TEXTS.get(exc.code)
    return gettext(known) if known is not None else exc.message


DIRECTION_LABELS = {
    (MessageDirection.outbound, MessageKind.reply): N_("Reply sent from the case"),
    (MessageDirection.outbound, MessageKind.automatic): N_("Automatic e-mail"),
    (MessageDirection.inbound, MessageKind.requester): N_("From the requester"),
    (MessageDirection.inbound, MessageKind.delivery_report): N_("Delivery report"),
}


def case_messages(
    req: IntakeRequest, rows: Sequence[cases.MessageView], names: dict[Any, str]
) -> list[dict[str, Any]]:
    out = []
    for m in rows:
        data = m.data or {}
        out.append(
            {
                "at": m.at,
                "direction": m.direction.value,
                "direction_label": DIRECTION_LABELS.get((m.direction, m.kind), m.kind.value),
                "status": m.delivery.value if m.delivery else None,
                "subject": data.get("subject"),
                "body": data.get("body"),
                "erased": m.data is None,
            }
        )
    return out


def render_case(
    request: Request,
    session: SessionDep,
    user: User,
    req: IntakeRequest,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    done = request.query_params.get("done", "")
    ctx = {
        "title": filled(N_("Case %(reference)s"), reference=req.reference),
        "errors": errors or {},
        "values": values or {},
        "flash": DONE.get(done),
        "present": cases.others(session, req, user),
        "presence_seconds": PRESENCE_SECONDS,
        **case_context(session, req),
        **labels_context(page_language(request, user)),
    }
    chosen = (values or {}).get("channel") or request.query_params.get("channel", "")
    ctx |= case_whatsapp.context(  # the reply box's channels and WhatsApp's window
        session,
        req,
        email_possible=ctx["reply_enabled"],
        zone=viewer_zone(user),
        lang=page_language(request, user),
        chosen=chosen,
    )
    return page(request, "staff/case.html", ctx, user=user, status=status)


def back_to(req: IntakeRequest, done: str, anchor: str = "") -> Response:
    return redirect(f"/staff/cases/{req.reference}?done={done}{anchor}")


@router.get("/staff/cases/{reference}")
def case_page(
    reference: SafeStr, request: Request, session: SessionDep, user: StaffPageUser
) -> Response:
    try:
        req = _case(session, reference, user)
    except NotFound:
        return not_found(request, user)
    cases.heartbeat(session, req, user, PresenceActivity.viewing)
    return render_case(request, session, user, req, values=_saved_reply_values(request, session))


def _saved_reply_values(request: Request, session: SessionDep) -> dict[str, str] | None:
    """``?saved=<id>`` (the insert form without JavaScript): the reply box filled with it."""
    raw = request.query_params.get("saved", "")
    if not raw.isdigit() or len(raw) > 18:
        return None
    try:
        row = replies.get(session, int(raw))
    except AppError:
        return None
    return {"body": row.body}


@router.post("/staff/cases/{reference}/presence")
def presence(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    """The case page's heartbeat (``staff.js``): who else has this case open, as a fragment."""
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    activity = (
        PresenceActivity.replying
        if _text(form, "activity", 16) == "replying"
        else PresenceActivity.viewing
    )
    others = cases.heartbeat(session, req, user, activity)
    return page(request, "staff/_presence.html", {"title": "", "present": others}, user=user)


def _field_errors(exc: ValidationError, names: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        key = str(err["loc"][-1]) if err["loc"] else ""
        out[names.get(key, key)] = str(err["msg"])
    return out


def _text(form: FormData, name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@router.post("/staff/cases/{reference}/contact")
def log_contact(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    values = {k: _text(form, k, 2000) for k in ("channel", "contacted_at", "note")}
    errors: dict[str, str] = {}
    contacted_at: dt.datetime | None = None
    if not values["contacted_at"]:
        contacted_at = now()
    else:
        try:
            # datetime-local from the page, in the viewer's zone (the page says so).
            contacted_at = from_local_input(values["contacted_at"], viewer_zone(user))
        except ValueError:
            errors["contact_at"] = N_("Enter a date and time, e.g. 2026-11-23 14:05.")
    if not errors:
        try:
            body = ContactIn.model_validate(
                {
                    "channel": values["channel"],
                    "contacted_at": contacted_at,
                    "note": values["note"] or None,
                }
            )
        except ValidationError as exc:
            errors = _field_errors(
                exc,
                {
                    "channel": "contact_channel",
                    "contacted_at": "contact_at",
                    "note": "contact_note",
                },
            )
    if errors:
        return render_case(request, session, user, req, errors=errors, values=values, status=422)
    try:
        cases.log_contact(
            session, req, user, body.channel, contacted_at=body.contacted_at, note=body.note
        )
    except AppError as exc:
        field = "contact_at" if exc.status_code == 422 else "contact_form"
        return refused(request, session, user, reference, exc, field=field, values=values)
    return back_to(req, "contact", "#contacts")


@router.post("/staff/cases/{reference}/assign")
def assign(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    values = {k: _text(form, k, 500) for k in ("expert_id", "reason")}
    expert_id: uuid.UUID | None = None
    if values["expert_id"] and values["expert_id"] != "next":
        try:
            expert_id = uuid.UUID(values["expert_id"])
        except ValueError:
            return render_case(
                request,
                session,
                user,
                req,
                errors={"expert_id": N_("Choose an expert from the list.")},
                values=values,
                status=422,
            )
    try:
        flows.reassign(session, req, by=user, expert_id=expert_id, reason=values["reason"] or None)
    except AppError as exc:
        return refused(request, session, user, reference, exc, field="expert_id", values=values)
    return back_to(req, "assigned" if expert_id else "rerouted", "#routing")


def _case_or_404(session: SessionDep, reference: str, user: User) -> IntakeRequest | None:
    try:
        return _case(session, reference, user)
    except NotFound:
        return None


def _input_field(exc: AppError, prefix: str) -> str:
    name = exc.fields[0].field if exc.fields else "form"
    return f"{prefix}_{name}"


def _reply_refused(
    request: Request,
    session: SessionDep,
    user: User,
    reference: str,
    exc: AppError,
    values: dict[str, str],
) -> Response:
    field = _input_field(exc, "reply") if exc.fields else "reply_body"
    message = case_error_text(request, user, exc)
    return refused(
        request, session, user, reference, exc, field=field, message=message, values=values
    )


@router.post("/staff/cases/{reference}/reply/preview")
def preview_reply(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    """The reply box's first step: the exact e-mail (nothing is stored or sent)."""
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    values = case_reply.reply_values(form)
    try:
        return case_reply.preview(
            request, session, user, req, values, case_url=f"/staff/cases/{req.reference}"
        )
    except AppError as exc:
        return _reply_refused(request, session, user, reference, exc, values)


@router.post("/staff/cases/{reference}/reply")
def send_reply(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    """Send the previewed e-mail. Only with the digest of the preview it was shown: without it
    the preview comes first; if the e-mail would now differ (another text, a changed name),
    the new preview is shown instead of sending; a body that greets is refused (422)."""
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    values = case_reply.reply_values(form)
    try:
        shown = case_reply.send_previewed(
            request, session, user, req, values, case_url=f"/staff/cases/{req.reference}"
        )
    except AppError as exc:
        return _reply_refused(request, session, user, reference, exc, values)
    if shown is not None:
        return shown
    return back_to(req, "reply", "#conversation")


@router.post("/staff/cases/{reference}/whatsapp")
def send_whatsapp(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    """A WhatsApp message from the reply box: free text inside the 24-hour window, else an
    approved template (the API's service and refusals, shown beside the box)."""
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    values = case_whatsapp.values(form)
    try:
        case_whatsapp.send(session, req, user, values)
    except AppError as exc:
        problem = exc.fields[0].field if exc.fields else None
        message = case_whatsapp.refusal(exc.code, problem) or case_error_text(request, user, exc)
        open_box = problem == "text" and exc.code != "whatsapp_window_closed"
        field = "reply_wa_text" if open_box else "reply_wa"  # the box shown has no text field
        return refused(
            request,
            session,
            user,
            reference,
            exc,
            field=field,
            message=message,
            values={**values, "channel": "whatsapp"},
        )
    return back_to(req, "whatsapp", "#conversation")


@router.post("/staff/cases/{reference}/take")
def take(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    """Take it, from the case or the queue: I answer this requester. Back to the queue (the
    same filters) when taken there."""
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    cases.take(session, req, user)
    back = _text(form, "back", 2000)
    if re.fullmatch(r"/staff/queue(\?[^\\#]*)?", back) and "//" not in back:
        return redirect(back)
    return back_to(req, "taken")


@router.post("/staff/cases/{reference}/notes")
def add_note(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    body = _text(form, "body", 20_000)
    try:
        cases.add_note(session, req, user, body)
    except AppError as exc:
        return refused(
            request,
            session,
            user,
            reference,
            exc,
            field="note_body",
            message=case_error_text(request, user, exc),
            values={"note_body": body},
        )
    return back_to(req, "note", "#notes")


@router.post("/staff/cases/{reference}/status")
def change_status(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: StaffPageUser,
    form: CsrfForm,
) -> Response:
    req = _case_or_404(session, reference, user)
    if req is None:
        return not_found(request, user)
    raw = _text(form, "status", 64)
    try:
        target = RequestStatus(raw)
    except ValueError:
        return render_case(
            request, session, user, req, errors={"new_status": N_("Choose a status.")}, status=422
        )
    try:
        flows.change_status(session, req, target, actor=f"user:{user.id}")
    except AppError as exc:
        return refused(request, session, user, reference, exc, field="new_status")
    return back_to(req, "status")
