"""The expert's pages (experts only; staff and admins get 403). An expert sees only their own:
another expert's request, consultation or absence answers 404, like one that does not exist.

- ``/expert/assignments``: offers (accept, decline with a reason) and accepted requests.
- ``/expert/cases/{reference}``: a request offered to or accepted by me (the person's details
  only once accepted); once accepted, the conversation (newest first), my consultation(s) with
  the host link, a reply by e-mail (previewed, then sent only as seen: ``app/web/case_reply.py``,
  the staff page's two steps), the contact log and notes. The reply, contact and note
  forms call the services the API calls for the accepted expert (``cases.reply``,
  ``sla.record_contact``, ``cases.add_note``), so their guards and history are the same.
- ``/expert/consultations``: my upcoming consultations; ``/expert/consultations/{id}/host``
  reads a fresh host link from the meeting provider (never stored).
- ``/expert/availability``: weekly hours (edit), date overrides (kept), absences (add, remove).
- ``/expert/notifications``: newest first; mark read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.cases import service as cases
from app.core.deps import SessionDep
from app.core.errors import AppError, NotFound
from app.core.time import now
from app.core.validation import DbId, SafeStr
from app.experts import queries as expert_queries
from app.experts import service as experts
from app.experts.schemas import AbsenceIn
from app.flows import request as flows
from app.intake import records as intake
from app.meetings.host import fresh_host_link
from app.models import AbsenceKind, AssignmentStatus, ConsultationStatus, IntakeRequest, User
from app.scheduling import service as scheduling
from app.scheduling.schemas import AvailabilityIn
from app.scheduling.service.mine import expert_consultations
from app.sla import service as sla
from app.sla.schemas import ContactIn
from app.web import case_reply
from app.web.auth import (
    CsrfForm,
    ExpertPageUser,
    not_found,
    page,
    page_language,
    redirect,
    viewer_zone,
)
from app.web.i18n import N_, Text, filled, from_local_input
from app.web.staff import (
    ASSIGNMENT_LABELS,
    CHANNELS,
    PII_LABELS,
    case_error_text,
    case_messages,
    labels_context,
    sla_context,
    undo,
)

router = APIRouter(include_in_schema=False)
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
ABSENCE_KINDS: dict[str, str] = {
    AbsenceKind.leave.value: N_("Leave"),
    AbsenceKind.day_off.value: N_("Day off"),
}
DONE = {
    "accepted": N_("You accepted the request. The person's details are on its page."),
    "declined": N_("You declined the request. It is offered to another expert."),
    "contact": N_("The contact is recorded."),
    "hours": N_("Your weekly hours are saved."),
    "absence": N_("The absence is added: no offers and no consultation slots then."),
    "absence_removed": N_("The absence is removed."),
    "read": N_("Marked as read."),
    "note": N_("The note is added."),
    "reply": N_(
        "The reply is queued and will be sent in a moment. It counts as the first response."
    ),
}
CONSULTATION_LABELS: dict[str, str] = {
    ConsultationStatus.booked.value: N_("Booked"),
    ConsultationStatus.cancelled.value: N_("Cancelled"),
    ConsultationStatus.held.value: N_("Held"),
    ConsultationStatus.no_show.value: N_("The person did not come"),
}
PII_KEYS = ("full_name", "law_firm_name", "contact_name", "email", "phone", "whatsapp")


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _flash(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


# Assignments ---------------------------------------------------------------------------------


def _assignments_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    errors: Mapping[str, str | Text] | None = None,
    status: int = 200,
) -> Response:
    rows = expert_queries.expert_assignments(session, user.id, live_only=False)
    current = now()
    offered = [(a, ref) for a, ref in rows if a.status == AssignmentStatus.offered]
    accepted = [(a, ref) for a, ref in rows if a.status == AssignmentStatus.accepted]
    live = (AssignmentStatus.offered, AssignmentStatus.accepted)
    past = [(a, ref) for a, ref in rows if a.status not in live][:50]
    ctx = {
        "title": N_("My assignments"),
        "offered": offered,
        "accepted": accepted,
        "past": past,
        "assignment_labels": ASSIGNMENT_LABELS,
        "now": current,
        "errors": errors or {},
        "flash": _flash(request),
    }
    return page(request, "expert/assignments.html", ctx, user=user, status=status)


@router.get("/expert/assignments")
def my_assignments(request: Request, session: SessionDep, user: ExpertPageUser) -> Response:
    return _assignments_page(request, session, user)


@router.post("/expert/assignments/{assignment_id}/{answer}")
def answer_offer(
    assignment_id: DbId,
    answer: SafeStr,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    form: CsrfForm,
) -> Response:
    if answer not in ("accept", "decline"):
        return not_found(request, user)
    reason = _text(form, "reason", 64) or None
    try:
        a = flows.answer_offer(
            session, assignment_id, user, accept=answer == "accept", reason=reason, via="page"
        )
    except AppError as exc:
        undo(session)
        if exc.status_code == 404:
            return not_found(request, user)
        return _assignments_page(
            request, session, user, errors={f"a{assignment_id}": exc.message}, status=409
        )
    if a.status == AssignmentStatus.accepted:
        req = session.get(IntakeRequest, a.request_id)
        return redirect(f"/expert/cases/{req.reference if req else ''}?done=accepted")
    return redirect("/expert/assignments?done=declined")


# My case -------------------------------------------------------------------------------------


def _case_page(
    request: Request,
    session: SessionDep,
    user: User,
    reference: str,
    *,
    errors: Mapping[str, str | Text] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    req, a = expert_queries.case_assignment(session, reference, user)
    accepted = a.status == AssignmentStatus.accepted
    pii = intake.reveal_pii(req) if accepted else None
    contacts = (
        [(c, sla.reveal_note(req, c)) for c in sla.contacts(session, req)] if accepted else []
    )
    notes = cases.notes(session, req) if accepted else []
    # The conversation newest first: the latest message is the one to answer.
    conversation = (
        list(reversed(case_messages(req, cases.messages(session, req), {}))) if accepted else []
    )
    mine = [c for c in cases.consultations(session, req) if c.expert_id == user.id]
    ctx: dict[str, Any] = {
        "title": filled(N_("Request %(reference)s"), reference=req.reference),
        "req": req,
        "assignment": a,
        "accepted": accepted,
        "pii": pii or {},
        "pii_keys": PII_KEYS,
        "pii_labels": PII_LABELS,
        "summary": (pii or {}).get("case_summary"),
        "contacts": contacts,
        "notes": notes,
        "conversation": conversation,
        "consultations": mine if accepted else [],
        "consultation_labels": CONSULTATION_LABELS,
        "reply_enabled": accepted and bool((pii or {}).get("email")),
        **sla_context(req),
        "channels": CHANNELS,
        **labels_context(page_language(request, user)),
        "errors": errors or {},
        "values": values or {},
        "flash": _flash(request),
    }
    return page(request, "expert/case.html", ctx, user=user, status=status)


@router.get("/expert/cases/{reference}")
def my_case(
    reference: SafeStr, request: Request, session: SessionDep, user: ExpertPageUser
) -> Response:
    try:
        return _case_page(request, session, user, reference)
    except NotFound:
        return not_found(request, user)


@router.post("/expert/cases/{reference}/contact")
def my_case_contact(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    form: CsrfForm,
) -> Response:
    try:
        req = sla.case_for(session, reference, user)  # accepted by me, or 404
    except NotFound:
        return not_found(request, user)
    values = {k: _text(form, k) for k in ("channel", "note")}
    try:
        body = ContactIn.model_validate(
            {"channel": values["channel"], "contacted_at": now(), "note": values["note"] or None}
        )
    except ValidationError:
        return _case_page(
            request,
            session,
            user,
            reference,
            errors={"contact_channel": N_("Choose e-mail, phone or WhatsApp.")},
            values=values,
            status=422,
        )
    try:
        sla.record_contact(
            session,
            req,
            channel=body.channel,
            contacted_at=body.contacted_at,
            note=body.note,
            by_user=user,
        )
    except AppError as exc:
        undo(session)
        return _case_page(
            request,
            session,
            user,
            reference,
            errors={"contact_channel": exc.message},
            values=values,
            status=exc.status_code,
        )
    return redirect(f"/expert/cases/{req.reference}?done=contact")


@router.post("/expert/cases/{reference}/notes")
def my_case_note(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    form: CsrfForm,
) -> Response:
    try:
        req = cases.case_for(session, reference, user)  # accepted by me, or 404
    except NotFound:
        return not_found(request, user)
    body = _text(form, "body", 20_000)
    try:
        cases.add_note(session, req, user, body)
    except AppError as exc:
        undo(session)
        return _case_page(
            request,
            session,
            user,
            reference,
            errors={"note_body": case_error_text(request, user, exc)},
            values={"note_body": body},
            status=exc.status_code,
        )
    return redirect(f"/expert/cases/{req.reference}?done=note#notes")


def _reply_refused(
    request: Request,
    session: SessionDep,
    user: User,
    reference: str,
    exc: AppError,
    values: dict[str, str],
) -> Response:
    undo(session)
    # The subject's own refusal beside the subject; the rest (empty, too long, no address,
    # erased) beside the message.
    name = "subject" if exc.fields and exc.fields[0].field == "subject" else "body"
    return _case_page(
        request,
        session,
        user,
        reference,
        errors={f"reply_{name}": case_error_text(request, user, exc)},
        values=values,
        status=exc.status_code,
    )


@router.post("/expert/cases/{reference}/reply/preview")
def my_case_reply_preview(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    form: CsrfForm,
) -> Response:
    """The reply box's first step: the exact e-mail (nothing is stored or sent)."""
    try:
        req = cases.case_for(session, reference, user)  # accepted by me, or 404
    except NotFound:
        return not_found(request, user)
    values = case_reply.reply_values(form)
    try:
        return case_reply.preview(
            request, session, user, req, values, case_url=f"/expert/cases/{req.reference}"
        )
    except AppError as exc:
        return _reply_refused(request, session, user, reference, exc, values)


@router.post("/expert/cases/{reference}/reply")
def my_case_reply(
    reference: SafeStr,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    form: CsrfForm,
) -> Response:
    """Send the previewed e-mail, as the staff page does (``app/web/case_reply.py``): only the
    e-mail whose digest was shown; a body that greets is refused."""
    try:
        req = cases.case_for(session, reference, user)  # accepted by me, or 404
    except NotFound:
        return not_found(request, user)
    values = case_reply.reply_values(form)
    try:
        shown = case_reply.send_previewed(
            request, session, user, req, values, case_url=f"/expert/cases/{req.reference}"
        )
    except AppError as exc:
        return _reply_refused(request, session, user, reference, exc, values)
    if shown is not None:
        return shown
    return redirect(f"/expert/cases/{req.reference}?done=reply#messages")


# Consultations -------------------------------------------------------------------------------


@router.get("/expert/consultations")
def my_consultations(request: Request, session: SessionDep, user: ExpertPageUser) -> Response:
    rows = expert_consultations(session, user.id, ending_after=now() - dt.timedelta(hours=12))
    ctx = {"title": N_("My consultations"), "rows": rows}
    return page(request, "expert/consultations.html", ctx, user=user)


@router.get("/expert/consultations/{consultation_id}/host")
def my_host_link(
    consultation_id: uuid.UUID, request: Request, session: SessionDep, user: ExpertPageUser
) -> Response:
    try:
        provider, url = fresh_host_link(session, consultation_id, user)
    except AppError as exc:
        if exc.status_code == 404:
            return not_found(request, user)
        return page(
            request,
            "expert/host_link.html",
            {"title": N_("Start the meeting"), "url": None, "error": exc.message},
            user=user,
            status=exc.status_code,
            headers=exc.headers,
        )
    ctx = {"title": N_("Start the meeting"), "url": url, "provider": provider, "error": None}
    return page(request, "expert/host_link.html", ctx, user=user)


# Availability --------------------------------------------------------------------------------


def _ranges_text(weekly: list[dict[str, Any]], weekday: int) -> str:
    return ", ".join(f"{r['start']}-{r['end']}" for r in weekly if int(r["weekday"]) == weekday)


def _availability_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    errors: Mapping[str, str | Text] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    profile, row, overrides = scheduling.get_availability(session, user.id)
    weekly = list(row.weekly) if row is not None else []
    defaults = AvailabilityIn()
    form_values = {
        "timezone": row.timezone if row else profile.timezone,
        "slot_minutes": str(row.slot_minutes if row else defaults.slot_minutes),
        "buffer_before_minutes": str(
            row.buffer_before_minutes if row else defaults.buffer_before_minutes
        ),
        "buffer_after_minutes": str(
            row.buffer_after_minutes if row else defaults.buffer_after_minutes
        ),
        "min_notice_minutes": str(row.min_notice_minutes if row else defaults.min_notice_minutes),
        "horizon_days": str(row.horizon_days if row else defaults.horizon_days),
        "max_per_day": str(row.max_per_day) if row and row.max_per_day is not None else "",
        **{f"day{i}": _ranges_text(weekly, i) for i in range(7)},
        **(values or {}),
    }
    absences = experts.list_absences(session, user.id)
    ctx = {
        "title": N_("My availability"),
        "configured": row is not None,
        "weekdays": WEEKDAYS,
        "v": form_values,
        "overrides": overrides,
        "absences": absences,
        "kinds": ABSENCE_KINDS,
        "errors": errors or {},
        "flash": _flash(request),
    }
    return page(request, "expert/availability.html", ctx, user=user, status=status)


@router.get("/expert/availability")
def my_availability(request: Request, session: SessionDep, user: ExpertPageUser) -> Response:
    return _availability_page(request, session, user)


class RangeError(ValueError):
    def __init__(self, part: str) -> None:
        super().__init__(f"'{part}' is not a range like 09:00-12:00")
        self.part = part


def _parse_ranges(text: str, weekday: int) -> list[dict[str, Any]]:
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise RangeError(part)
        out.append({"weekday": weekday, "start": start.strip(), "end": end.strip()})
    return out


@router.post("/expert/availability")
def save_availability(
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    form: CsrfForm,
) -> Response:
    names = (
        "timezone",
        "slot_minutes",
        "buffer_before_minutes",
        "buffer_after_minutes",
        "min_notice_minutes",
        "horizon_days",
        "max_per_day",
    )
    values = {n: _text(form, n, 64) for n in names}
    values.update({f"day{i}": _text(form, f"day{i}", 300) for i in range(7)})
    errors: dict[str, str | Text] = {}
    weekly: list[dict[str, Any]] = []
    for i in range(7):
        try:
            weekly += _parse_ranges(values[f"day{i}"], i)
        except RangeError as exc:
            errors[f"day{i}"] = filled(
                N_("'%(part)s' is not a range like 09:00-12:00"), part=exc.part[:40]
            )
    _, _, overrides = scheduling.get_availability(session, user.id)
    body: AvailabilityIn | None = None
    if not errors:
        raw: dict[str, Any] = {
            "timezone": values["timezone"] or None,
            "weekly": weekly,
            # Date overrides are kept as they are (this page edits the weekly hours).
            "overrides": [{"date": o.date, "ranges": o.ranges} for o in overrides],
            "max_per_day": values["max_per_day"] or None,
        }
        for n in names[1:6]:
            if values[n]:
                raw[n] = values[n]
        try:
            body = AvailabilityIn.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = err["loc"]
                key = str(loc[0]) if loc else "form"
                if key == "weekly" and len(loc) > 1 and isinstance(loc[1], int):
                    key = f"day{weekly[loc[1]]['weekday']}"
                errors.setdefault(key, str(err["msg"]).removeprefix("Value error, "))
    if errors or body is None:
        return _availability_page(
            request,
            session,
            user,
            errors=errors or {"form": N_("Check the hours.")},
            values=values,
            status=422,
        )
    scheduling.put_availability(session, user.id, body, actor=f"user:{user.id}")
    return redirect("/expert/availability?done=hours")


@router.post("/expert/availability/absences")
def add_absence(
    request: Request, session: SessionDep, user: ExpertPageUser, form: CsrfForm
) -> Response:
    values = {k: _text(form, k, 500) for k in ("starts_at", "ends_at", "kind", "note")}
    errors: dict[str, str] = {}
    parsed: dict[str, dt.datetime] = {}
    for name in ("starts_at", "ends_at"):
        try:
            # A datetime-local input, in the viewer's zone (the page names it).
            parsed[name] = from_local_input(values[name], viewer_zone(user))
        except ValueError:
            errors[name] = N_("Enter a date and time.")
    if not errors:
        try:
            body = AbsenceIn.model_validate(
                {**parsed, "kind": values["kind"], "note": values["note"] or None}
            )
        except ValidationError as exc:
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else "ends_at"
                errors.setdefault(key, str(err["msg"]).removeprefix("Value error, "))
        else:
            experts.add_absence(session, user.id, body)
            return redirect("/expert/availability?done=absence#absences")
    return _availability_page(
        request,
        session,
        user,
        errors={f"absence_{k}": v for k, v in errors.items()},
        status=422,
    )


@router.post("/expert/availability/absences/{period_id}/delete")
def remove_absence(
    period_id: DbId,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    _form: CsrfForm,
) -> Response:
    try:
        experts.delete_absence(session, user.id, period_id)
    except AppError:
        undo(session)
        return not_found(request, user)
    return redirect("/expert/availability?done=absence_removed#absences")


# Notifications -------------------------------------------------------------------------------

KIND_TEXT = {
    "assignment_offered": N_("A request was offered to you"),
    "offer_expired": N_("An offer to you ran out of time"),
    "assignment_withdrawn": N_("A request was reassigned away from you"),
    "assignment_booked": N_("A consultation was booked with you"),
}


@router.get("/expert/notifications")
def my_notifications(request: Request, session: SessionDep, user: ExpertPageUser) -> Response:
    rows = expert_queries.notifications(session, user.id)
    ctx = {
        "title": N_("My notifications"),
        "rows": rows,
        "kind_text": KIND_TEXT,
        "flash": _flash(request),
    }
    return page(request, "expert/notifications.html", ctx, user=user)


@router.post("/expert/notifications/{notification_id}/read")
def read_notification(
    notification_id: DbId,
    request: Request,
    session: SessionDep,
    user: ExpertPageUser,
    _form: CsrfForm,
) -> Response:
    try:
        expert_queries.mark_read(session, user.id, notification_id)
    except AppError:
        undo(session)
        return not_found(request, user)
    return redirect("/expert/notifications?done=read")
