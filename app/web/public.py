"""The public pages: apply, confirmation, the requester's page, privacy.

- ``GET/POST /apply`` (``?lang=en|ru|es|ar``; else Accept-Language; else English): the form for
  everything ``SubmitIn`` takes; the POST builds the same ``SubmitIn`` and calls the same
  ``app.intake.service.submit`` as ``POST /api/v1/requests``, with the form's own
  Idempotency-Key (a reload of the confirmation replays the first reply, same reference and
  link). Errors come back next to each field, in the page's language.
- ``GET /r/{reference}`` is the link of the e-mails (``/r/<ref>#token=rl_...``). The token
  never reaches the server in a fragment: ``public.js`` posts it to ``/r/<ref>/open``, which
  keeps it in an HttpOnly, Secure, SameSite=Strict cookie scoped to ``/r/<ref>`` and redirects
  to the clean URL. ``?token=`` sets the cookie too and moves on to the clean URL by a
  same-site refresh (see ``continue.html``). A wrong token is 404, like the API.
- Discretion: the pages of a request that asked for it have neutral titles and headings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import secrets
import zoneinfo
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from babel.core import get_global
from babel.dates import get_timezone_location
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.core.deps import SessionDep
from app.core.errors import AppError, TooManyRequests
from app.core.settings import get_settings
from app.core.validation import SafeStr
from app.flows import request as flows
from app.intake import records, service
from app.intake.errors import IdempotencyKeyReused, RequestNotFound
from app.intake.schemas import NewsletterTopic, RecoverIn, ReportTopic, SubmitIn, Want
from app.intake.throttle import check_submission_rate
from app.models import CaseStage, ContactChannel, IntakeRequest, RequesterType, RequestStatus
from app.notifications import dates
from app.web import apply_draft, consultations, i18n
from app.web.security import (
    CSRF_FIELD,
    HONEYPOT_FIELD,
    PAGE_HEADERS,
    STAMP_FIELD,
    csrf_ok,
    csrf_token,
    csrf_value,
    form_stamp,
    set_csrf_cookie,
    stamp_age,
)

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).parent / "static"
# The apply form's body is limited like the API's (INTAKE_MAX_REQUEST_BODY_BYTES, see app/main.py).
LIMITED_ROUTES = {("POST", "/apply"), ("POST", "/recover")}
#: The one-page form (``GET``; it posts to ``POST /apply``): /apply itself asks in steps.
ONE_PAGE = "/apply/all"

LINK_COOKIE = "requester_link"
IDEM_FIELD = "form_key"
TOKEN_RE = re.compile(r"rl_[A-Za-z0-9_-]{20,100}")
FINAL = {RequestStatus.closed, RequestStatus.declined, RequestStatus.spam, RequestStatus.withdrawn}

# Field kinds of SubmitIn as the form sends them.
TEXT_FIELDS = ("law_firm_name", "full_name", "contact_name", "email", "phone", "whatsapp")
CHOICE_FIELDS = (
    "requester_type",
    "preferred_channel",
    "country_of_residence",
    "country_of_origin",
    "language",
    "timezone",
    "case_stage",
)
LIST_FIELDS = ("wants", "topics", "consent_updates")
BOOL_FIELDS = ("discreet", "consent_data_processing")


def N_(text: str) -> str:
    """Marks a text for extraction; translated where it is shown."""
    return text


# Labels of the API's values ------------------------------------------------------------------

REQUESTER_TYPES = {
    RequesterType.applicant: N_("I am asking for myself"),
    RequesterType.law_firm: N_("A law firm, for a client"),
}
CHANNELS = {
    ContactChannel.email: N_("E-mail"),
    ContactChannel.phone: N_("Phone"),
    ContactChannel.whatsapp: N_("WhatsApp"),
}
STAGES = {
    CaseStage.not_filed: N_("Not filed yet"),
    CaseStage.filed_pending: N_("Filed, waiting for a decision"),
    CaseStage.refused_appeal: N_("Refused, appealing"),
    CaseStage.hearing_scheduled: N_("A hearing is scheduled"),
    CaseStage.other: N_("Other"),
}
WANTS = {
    Want.sample_report: N_("A sample report"),
    Want.expert_cv: N_("An expert's CV"),
    Want.consultation: N_("A free consultation (video call; it commits you to nothing)"),
}
TOPICS = {
    ReportTopic.freedom_of_speech: N_("Freedom of speech"),
    ReportTopic.political_repression: N_("Political repression"),
    ReportTopic.corruption: N_("Corruption"),
    ReportTopic.war_crimes: N_("War crimes"),
    ReportTopic.ethnic_persecution: N_("Persecution for ethnicity"),
    ReportTopic.religious_persecution: N_("Persecution for religion"),
    ReportTopic.social_status_persecution: N_("Persecution for social status"),
    ReportTopic.gender_based_violence: N_("Gender-based violence"),
    ReportTopic.lgbt_persecution: N_("Persecution of LGBT people"),
    ReportTopic.forced_conscription: N_("Forced conscription"),
    ReportTopic.cartel_gang_violence: N_("Cartel and gang violence"),
    ReportTopic.statelessness: N_("Statelessness"),
    ReportTopic.detention_conditions: N_("Conditions in detention"),
}
NEWSLETTER = {
    **{NewsletterTopic(t.value): label for t, label in TOPICS.items()},
    NewsletterTopic.organisation_news: N_("News of the organisation"),
}
STATUSES = {
    RequestStatus.new: N_("Received: a person will contact you soon"),
    RequestStatus.in_progress: N_("In progress"),
    RequestStatus.consultation_scheduled: N_("Consultation booked"),
    RequestStatus.consultation_held: N_("Consultation held"),
    RequestStatus.report_ordered: N_("Report ordered"),
    RequestStatus.closed: N_("Closed"),
    RequestStatus.declined: N_("Declined"),
    RequestStatus.spam: N_("Closed"),
    RequestStatus.withdrawn: N_("Withdrawn by you"),
}


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    skip = ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Chile/", "Mexico/")
    names = [
        z
        for z in zoneinfo.available_timezones()
        if "/" in z and not z.startswith(skip) and z[0].isupper()
    ]
    return ["UTC", *sorted(names)]


# Time-zone lists grouped by area, with the likely zones first -------------------------------

ZONE_AREAS = {
    "UTC": "UTC",
    "Africa": N_("Africa"),
    "America": N_("Americas"),
    "Antarctica": N_("Antarctica"),
    "Arctic": N_("Arctic"),
    "Asia": N_("Asia"),
    "Atlantic": N_("Atlantic Ocean"),
    "Australia": N_("Australia"),
    "Europe": N_("Europe"),
    "Indian": N_("Indian Ocean"),
    "Pacific": N_("Pacific Ocean"),
}
OTHER_AREA = N_("Other")
SUGGESTED = N_("Suggested")


@lru_cache(maxsize=8)
def _zone_labels(lang: str) -> dict[str, str]:
    """Each zone's label in ``lang``: the IANA id, and the city as the language names it when
    babel knows a different name ("Asia/Bishkek (Бишкек)"). The value stays the id."""
    rtl = i18n.LANGUAGES[lang].rtl
    out: dict[str, str] = {}
    for zone in time_zones():
        shown = zone.replace("_", " ")
        city = ""
        with contextlib.suppress(LookupError, ValueError):
            city = str(get_timezone_location(zone, locale=lang, return_city=True))
        if rtl:  # the id is left to right inside a right-to-left list: isolate it
            shown = f"\u2066{shown}\u2069"
        plain = zone.rsplit("/", 1)[-1].replace("_", " ")
        if city and "/" not in city and city != plain and city != zone:
            shown = f"{shown} ({city})"
        out[zone] = shown
    return out


@lru_cache(maxsize=1)
def _country_zones() -> dict[str, list[str]]:
    known = set(time_zones())
    zones = dict(get_global("territory_zones"))
    return {c: [z for z in found if z in known] for c, found in zones.items()}


def suggested_zones(countries: tuple[str | None, ...], current: str | None) -> list[str]:
    """The zone chosen now, then the zones of the given countries (residence, origin)."""
    out: list[str] = [current] if current else []
    for country in countries:
        for zone in _country_zones().get((country or "").upper(), []):
            if zone not in out:
                out.append(zone)
    return out


def zone_groups(
    lang: str, countries: tuple[str | None, ...] = (), current: str | None = None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(group label, [(zone id, label), ...]), ...]`` for a ``<select>`` with optgroups:
    "Suggested" first (when there is anything to suggest), then each area alphabetically by
    id. A suggested zone is not listed again in its area (one option per value)."""
    t = translator(lang)
    labels = _zone_labels(lang)
    first = suggested_zones(countries, current)
    # A valid zone outside the list (an old alias chosen elsewhere) still shows as chosen.
    labels = {**labels, **{z: z.replace("_", " ") for z in first if z not in labels}}
    groups: dict[str, list[tuple[str, str]]] = {}
    for zone in time_zones():
        if zone in first:
            continue
        area = zone.split("/", 1)[0]
        groups.setdefault(str(t(ZONE_AREAS.get(area, OTHER_AREA))), []).append((zone, labels[zone]))
    out = [(str(t(SUGGESTED)), [(z, labels[z]) for z in first])] if first else []
    return out + list(groups.items())


# Rendering ---------------------------------------------------------------------------------


def render(
    request: Request,
    lang: str,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    csrf: tuple[str, bool] | None = None,
) -> HTMLResponse:
    settings = get_settings()
    base = {
        "lang": i18n.LANGUAGES[lang],
        "languages": i18n.LANGUAGES.values(),
        "quick_exit_url": settings.quick_exit_url,
        "path": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(csrf[0]) if csrf else "",
        "switcher": True,
        "noindex": False,
    }
    body = i18n.environment(lang).get_template(template).render({**base, **context})
    response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
    if csrf is not None and csrf[1]:
        set_csrf_cookie(response, csrf[0])
    return response


def page_lang(request: Request, fallback: str | None = None) -> str:
    return i18n.negotiate(
        request.query_params.get("lang"), request.headers.get("accept-language"), fallback
    )


def translator(lang: str) -> Any:
    return i18n.gettext_for(lang).gettext


def tr(lang: str, message: str) -> str:
    return str(i18n.gettext_for(lang).gettext(message))


def not_found_page(request: Request, lang: str | None = None) -> HTMLResponse:
    lang = lang or page_lang(request)
    return render(
        request, lang, "public/not_found.html", {"title": tr(lang, "Not found")}, status=404
    )


def refused_page(request: Request, lang: str, retry: str = "/apply") -> HTMLResponse:
    csrf = csrf_value(request)
    return render(
        request,
        lang,
        "public/refused.html",
        {"title": tr(lang, "Please try again"), "retry": retry},
        status=403,
        csrf=csrf,
    )


def wait_text(lang: str, seconds: int) -> str:
    """How long to wait, as a full sentence: whole minutes, rounded up (at least one)."""
    minutes = max(1, math.ceil(seconds / 60))
    text = i18n.gettext_for(lang).ngettext(
        "Please try again in %(num)d minute.", "Please try again in %(num)d minutes.", minutes
    )
    return str(text) % {"num": minutes}


def too_many_page(request: Request, lang: str, exc: TooManyRequests) -> HTMLResponse:
    """429 with Retry-After, saying in words how long to wait."""
    seconds = int((exc.details or {}).get("retry_after_seconds", 60))
    ctx = {"title": tr(lang, "Please wait"), "wait": wait_text(lang, seconds)}
    page = render(request, lang, "public/too_many.html", ctx, status=429)
    page.headers.update(exc.headers or {})
    return page


class FormTooLarge(AppError):
    """A page's form body over ``INTAKE_MAX_REQUEST_BODY_BYTES``."""

    status_code = 413
    code = "too_large"

    def __init__(self) -> None:
        super().__init__("The form is too large.")


async def form_data(request: Request) -> FormData:
    """The posted form, read up to the body limit (every page form, not only /apply)."""
    limit = get_settings().max_request_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FormTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormTooLarge()
    request._body = bytes(body)  # Starlette parses the form from the cached body
    return await request.form(max_files=0, max_fields=200)


FormDep = Annotated[FormData, Depends(form_data)]


# Apply ---------------------------------------------------------------------------------------


def _apply_context(lang: str, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    t = translator(lang)
    return {
        "title": (t("Error") + ": " if errors else "") + t("Ask for an expert report"),
        "values": values,
        "errors": errors,
        "error_items": [(f"f-{name}", message) for name, message in errors.items()],
        "requester_types": [(k.value, t(v)) for k, v in REQUESTER_TYPES.items()],
        "channels": [(k.value, t(v)) for k, v in CHANNELS.items()],
        "stages": [(k.value, t(v)) for k, v in STAGES.items()],
        "wants": [(k.value, t(v)) for k, v in WANTS.items()],
        "topics": [(k.value, t(v)) for k, v in TOPICS.items()],
        "newsletter": [(k.value, t(v)) for k, v in NEWSLETTER.items()],
        "countries": i18n.country_names(lang),
        "request_languages": i18n.language_names(lang),
        "zone_groups": zone_groups(
            lang,
            (values.get("country_of_residence"), values.get("country_of_origin")),
            values.get("timezone") if values.get("timezone") in time_zones() else None,
        ),
        "honeypot": HONEYPOT_FIELD,
        "stamp_field": STAMP_FIELD,
        "idem_field": IDEM_FIELD,
        "action": f"/apply?lang={lang}",
    }


def _apply_page(
    request: Request,
    lang: str,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    csrf = csrf_value(request)
    values = {**values, STAMP_FIELD: form_stamp(csrf[0])}
    values.setdefault(IDEM_FIELD, secrets.token_urlsafe(18))
    ctx = _apply_context(lang, values, errors or {})
    ctx["notice"] = notice
    return render(request, lang, "public/apply.html", ctx, status=status, csrf=csrf)


@router.get(ONE_PAGE, response_class=HTMLResponse)
def apply_form(request: Request) -> HTMLResponse:
    """Every question on one page (``/apply`` asks them in steps: ``app/web/apply_steps.py``)."""
    lang = page_lang(request)
    return _apply_page(request, lang, {"language": lang, "requester_type": "applicant"})


def _values(form: FormData) -> dict[str, Any]:
    """What the person typed, to show again (never the honeypot)."""
    values: dict[str, Any] = {}
    for name in (*TEXT_FIELDS, *CHOICE_FIELDS, "deadline", "case_summary"):
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) else ""
    for name in LIST_FIELDS:
        values[name] = [v for v in form.getlist(name) if isinstance(v, str)]
    for name in BOOL_FIELDS:
        values[name] = form.get(name) in ("on", "true", "1", "yes")
    key = form.get(IDEM_FIELD)
    if isinstance(key, str) and 10 <= len(key) <= 64 and key.isascii():
        values[IDEM_FIELD] = key
    return values


def _submit_body(values: dict[str, Any]) -> dict[str, Any]:
    """The form as the API takes it: empty fields left out, so a missing required one is
    reported as missing."""
    body: dict[str, Any] = {}
    for name in (*TEXT_FIELDS, *CHOICE_FIELDS, "deadline", "case_summary"):
        if values[name]:
            body[name] = values[name]
    for name in LIST_FIELDS:
        body[name] = values[name]
    for name in BOOL_FIELDS:
        body[name] = values[name]
    if not body["wants"]:
        del body["wants"]
    return body


# Field errors in the page's language ---------------------------------------------------------

REQUIRED = N_("This field is required.")
CHOOSE = N_("Choose one of the options.")
FIELD_VALUE_ERRORS: dict[str, list[tuple[str, str]]] = {
    "law_firm_name": [
        ("is required", N_("Write the name of the law firm.")),
        ("only for", N_("Leave this empty unless the request comes from a law firm.")),
    ],
    "full_name": [("", REQUIRED)],
    "email": [("", N_("Write a valid e-mail address, like name@example.org."))],
    "phone": [
        ("is required", N_("Required, because it is your preferred way to be contacted.")),
        (
            "",
            N_(
                "This is not a valid phone number. Write it with the country code, "
                "like +44 20 7946 0958."
            ),
        ),
    ],
    "country_of_residence": [("", N_("Choose a country from the list."))],
    "country_of_origin": [("", N_("Choose a country from the list."))],
    "timezone": [("", N_("Choose a time zone from the list."))],
    "language": [("", N_("Choose a language from the list."))],
    "deadline": [("in the past", N_("The date is in the past. Give today's date or a later one."))],
    "wants": [("", N_("Choose at least one."))],
    "consent_data_processing": [
        ("", N_("We can only handle your request with your consent. Tick the box to agree."))
    ],
}
FIELD_VALUE_ERRORS["whatsapp"] = FIELD_VALUE_ERRORS["phone"]


def field_message(field: str, error_type: str, message: str, ctx: dict[str, Any], lang: str) -> str:
    """The API's (English) validation error of one field, as the page says it in ``lang``."""
    t = translator(lang)
    if error_type == "missing":
        if field == "wants":
            return str(t("Choose at least one."))
        return str(t(CHOOSE if field in CHOICE_FIELDS else REQUIRED))
    if error_type == "string_too_long":
        return str(
            t("This is too long: at most %(max)s characters.") % {"max": ctx.get("max_length")}
        )
    if error_type.startswith("date") or (field == "deadline" and error_type != "value_error"):
        return str(t("Write the date as year-month-day, like 2026-12-31."))
    if error_type in ("enum", "literal_error"):
        return str(t("Choose from the options."))
    for needle, msgid in FIELD_VALUE_ERRORS.get(field, []):
        if needle in message:
            return str(t(msgid))
    return str(t("Please check this field."))


def field_errors(exc: ValidationError, lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = err.get("loc") or ("form",)
        field = str(loc[0])
        if field not in out:
            ctx = dict(err.get("ctx") or {})
            out[field] = field_message(field, err["type"], str(err.get("msg", "")), ctx, lang)
    return out


@router.post("/apply", response_class=HTMLResponse, response_model=None)
def apply_submit(request: Request, session: SessionDep, form: FormDep) -> Response:
    lang = page_lang(request)
    t = translator(lang)
    token = form.get(CSRF_FIELD)
    if not csrf_ok(request, token if isinstance(token, str) else None):
        return refused_page(request, lang, f"/apply?lang={lang}")
    try:
        check_submission_rate(request)
    except TooManyRequests as exc:
        return too_many_page(request, lang, exc)
    values = _values(form)
    csrf = request.cookies.get("csrf", "")
    stamp = form.get(STAMP_FIELD)
    age = stamp_age(csrf, stamp if isinstance(stamp, str) else None)
    honeypot = form.get(HONEYPOT_FIELD)
    too_fast = age is None or age < get_settings().form_min_fill_seconds
    if honeypot or too_fast:
        # Not stored. A person (an over-eager autofill, a very fast typist) just sends the
        # form again; it comes back with everything they typed and a fresh stamp.
        notice = t("Please take a moment to check your answers, then send the form again.")
        return _apply_page(request, lang, values, status=422, notice=notice)
    try:
        data = SubmitIn.model_validate(_submit_body(values))
    except ValidationError as exc:
        return _apply_page(request, lang, values, field_errors(exc, lang), status=422)
    return confirmation_page(request, lang, data, send(session, data, values.get(IDEM_FIELD)))


def send(session: SessionDep, data: SubmitIn, key: str | None) -> dict[str, Any]:
    """The one intake call of the pages (one page and steps): the API's ``submit`` with the
    form's own Idempotency-Key."""
    try:
        return service.submit(session, data, idempotency_key=key)
    except IdempotencyKeyReused:  # the same page sent again with changed answers
        return service.submit(session, data)


def confirmation_page(
    request: Request, lang: str, data: SubmitIn, reply: dict[str, Any]
) -> HTMLResponse:
    """Reference, the private link (shown once) and the time of the promised reply."""
    t = translator(lang)
    link_path = f"/r/{reply['reference']}#token={reply['access_token']}"
    neutral = data.discreet
    ctx = {
        "title": t("Request received") if neutral else t("Your request for an expert report"),
        "reference": reply["reference"],
        "link": f"{get_settings().public_url}{link_path}",
        "link_path": link_path,
        "due": local_time(
            dt.datetime.fromisoformat(reply["first_response_due_at"]), data.timezone, lang
        ),
        "discreet": neutral,
        "switcher": False,
        "noindex": True,
    }
    return render(request, lang, "public/confirmation.html", ctx)


def local_time(when: dt.datetime, zone: str, lang: str) -> str:
    """ "Sunday 6 December 2026 at 01:11 (Berlin time)", in the page's language."""
    return dates.when_in_words(when, zone, lang)


# The requester's page ------------------------------------------------------------------------


def canonical(reference: str) -> str | None:
    return records.normalise_reference(reference)


def requester_from_cookie(
    request: Request, session: SessionDep, reference: str
) -> IntakeRequest | None:
    token = request.cookies.get(LINK_COOKIE)
    if not token:
        return None
    try:
        return service.authenticate_requester(session, reference, token)
    except RequestNotFound:
        return None


def _set_link_cookie(response: Response, reference: str, token: str) -> None:
    response.set_cookie(
        LINK_COOKIE,
        token,
        path=f"/r/{reference}",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _title(lang: str, req: IntakeRequest) -> str:
    t = translator(lang)
    return str(t("Your request") if req.discreet else t("Your asylum expert report request"))


def _request_page(
    request: Request, session: SessionDep, req: IntakeRequest, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    lang = page_lang(request, req.language)
    t = translator(lang)
    view = service.requester_view(session, req)
    booked = consultations.booked(session, req)
    error = extra.get("withdraw_error")
    ctx = {
        "title": (t("Error") + ": " if error else "") + _title(lang, req),
        "heading": _title(lang, req),
        "booking": consultations.booking_view(session, booked, req.timezone, lang)
        if booked is not None
        else None,
        "may_book": consultations.may_book(req),
        "req": view,
        "discreet": req.discreet,
        "status_label": t(STATUSES[view.status]),
        "final": view.status in FINAL,
        "received": local_time(view.received_at, req.timezone, lang),
        "due": local_time(view.sla.first_response_due_at, req.timezone, lang),
        "responded": view.sla.first_responded_at is not None,
        "wants": [t(WANTS[w]) for w in view.wants],
        "noindex": True,
        "done": request.query_params.get("done"),
        "withdraw_error": None,
        "withdraw_target": "f-confirm",
        **extra,
    }
    return render(
        request, lang, "public/request.html", ctx, status=status, csrf=csrf_value(request)
    )


@router.get("/r/{reference}", response_class=HTMLResponse, response_model=None)
def request_page(request: Request, reference: SafeStr, session: SessionDep) -> Response:
    ref = canonical(reference)
    if ref is None:
        return not_found_page(request)
    lang_q = f"?lang={request.query_params['lang']}" if "lang" in request.query_params else ""
    token = request.query_params.get("token")
    if token is not None:  # a link with the token in the query: keep it, then a clean URL
        try:
            service.authenticate_requester(session, ref, token)
        except RequestNotFound:
            return not_found_page(request)
        lang = page_lang(request)
        ctx = {"title": tr(lang, "Your request"), "next_url": f"/r/{ref}{lang_q}", "noindex": True}
        page = render(request, lang, "public/continue.html", ctx)
        _set_link_cookie(page, ref, token)
        return page
    if ref != reference:
        return RedirectResponse(f"/r/{ref}{lang_q}", status_code=308)
    req = requester_from_cookie(request, session, ref)
    if req is None:
        # The e-mail's link keeps the token in the fragment: public.js posts it to /open. The
        # same page for any reference, so it tells nothing about which ones exist.
        lang = page_lang(request)
        return render(
            request,
            lang,
            "public/open.html",
            {
                "title": tr(lang, "Your request"),
                "reference": ref,
                "noindex": True,
                "lang_q": lang_q,
            },
            csrf=csrf_value(request),
        )
    return _request_page(request, session, req)


@router.post("/r/{reference}/open", response_class=HTMLResponse, response_model=None)
def open_link(request: Request, reference: SafeStr, session: SessionDep, form: FormDep) -> Response:
    ref = canonical(reference)
    lang = page_lang(request)
    if ref is None:
        return not_found_page(request, lang)
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return refused_page(request, lang, f"/r/{ref}")
    raw = form.get("token")
    found = TOKEN_RE.search(raw) if isinstance(raw, str) else None
    if found is None:
        return not_found_page(request, lang)
    try:
        service.authenticate_requester(session, ref, found.group(0))
    except RequestNotFound:
        return not_found_page(request, lang)
    lang_q = f"?lang={request.query_params['lang']}" if "lang" in request.query_params else ""
    page = "/book" if form.get("next") == "book" else ""  # the e-mail's booking link
    response = RedirectResponse(f"/r/{ref}{page}{lang_q}", status_code=303)
    _set_link_cookie(response, ref, found.group(0))
    return response


@router.post("/r/{reference}/withdraw", response_class=HTMLResponse, response_model=None)
def withdraw(request: Request, reference: SafeStr, session: SessionDep, form: FormDep) -> Response:
    ref = canonical(reference)
    req = requester_from_cookie(request, session, ref) if ref else None
    if ref is None or req is None:
        return not_found_page(request)
    lang = page_lang(request, req.language)
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return refused_page(request, lang, f"/r/{ref}")
    if form.get("confirm") != "yes":
        message = tr(lang, "Tick the box to confirm that you want to withdraw your request.")
        return _request_page(request, session, req, status=422, withdraw_error=message)
    try:
        flows.withdraw(session, req)
    except AppError:  # closed, declined or spam: nothing to withdraw
        message = tr(lang, "This request can no longer be withdrawn.")
        return _request_page(
            request, session, req, status=409, withdraw_error=message, withdraw_target="status"
        )
    # An explicit fragment: a redirect without one would keep the form's #error-summary.
    return RedirectResponse(f"/r/{ref}?lang={lang}&done=withdrawn#main", status_code=303)


@router.post("/r/{reference}/forget", response_class=HTMLResponse, response_model=None)
def forget(request: Request, reference: SafeStr, form: FormDep) -> Response:
    """Remove the link's cookie from this device (a shared or watched device)."""
    ref = canonical(reference)
    lang = page_lang(request)
    if ref is None:
        return not_found_page(request, lang)
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return refused_page(request, lang, f"/r/{ref}")
    response = RedirectResponse(f"/privacy?lang={lang}&forgotten=1", status_code=303)
    response.delete_cookie(
        LINK_COOKIE, path=f"/r/{ref}", secure=True, httponly=True, samesite="strict"
    )
    return response


# Lost link -----------------------------------------------------------------------------------

RECOVER_FIELDS = ("reference", "email")
RECOVER_ERRORS = {
    "reference": N_("Write the reference of your request, like 7KQ2M9XD."),
    "email": N_("Write the e-mail address you gave with the request, like name@example.org."),
}


def _recover_page(
    request: Request,
    lang: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
    sent: bool = False,
) -> HTMLResponse:
    t = translator(lang)
    errors = errors or {}
    ctx = {
        "title": (t("Error") + ": " if errors else "") + t("Get the link to your request again"),
        "values": values,
        "errors": errors,
        "error_items": [(f"f-{name}", message) for name, message in errors.items()],
        "sent": sent,
        "honeypot": HONEYPOT_FIELD,
        "action": f"/recover?lang={lang}",
        "noindex": True,
    }
    return render(
        request, lang, "public/recover.html", ctx, status=status, csrf=csrf_value(request)
    )


@router.get("/recover", response_class=HTMLResponse)
def recover_form(request: Request) -> HTMLResponse:
    sent = request.query_params.get("sent") == "1"
    return _recover_page(request, page_lang(request), {}, sent=sent)


@router.post("/recover", response_class=HTMLResponse, response_model=None)
def recover_submit(request: Request, session: SessionDep, form: FormDep) -> Response:
    """The same service as ``POST /api/v1/requests/recover``, and the same answer whether or
    not reference and address match (nothing tells which references exist). Counted towards
    the submission limit: the answer never varies, but each match sends an e-mail."""
    lang = page_lang(request)
    token = form.get(CSRF_FIELD)
    if not csrf_ok(request, token if isinstance(token, str) else None):
        return refused_page(request, lang, f"/recover?lang={lang}")
    try:
        check_submission_rate(request)
    except TooManyRequests as exc:
        return too_many_page(request, lang, exc)
    values = {}
    for name in RECOVER_FIELDS:
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) else ""
    try:
        data = RecoverIn.model_validate(values)
    except ValidationError as exc:
        fields = {str((e.get("loc") or ("email",))[0]) for e in exc.errors()}
        errors = {n: tr(lang, RECOVER_ERRORS[n]) for n in RECOVER_FIELDS if n in fields}
        return _recover_page(request, lang, values, errors, status=422)
    if not form.get(HONEYPOT_FIELD):  # a bot's fill: the same answer, nothing sent
        service.recover_link(session, data.reference, data.email)
    # POST-redirect-GET: a reload does not send again; the answer carries nothing of the form.
    return RedirectResponse(f"/recover?lang={lang}&sent=1#recover-sent", status_code=303)


# Privacy -------------------------------------------------------------------------------------


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request) -> HTMLResponse:
    lang = page_lang(request)
    settings = get_settings()
    ctx = {
        "title": tr(lang, "Privacy and cookies"),
        "version": settings.privacy_notice_version,
        "rate_window": settings.submit_rate_window_minutes,
        "draft_minutes": apply_draft.DRAFT_MINUTES,
        "forgotten": request.query_params.get("forgotten") == "1",
    }
    return render(request, lang, "public/privacy.html", ctx)
