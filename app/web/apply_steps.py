"""The application form in steps, one topic per page (GOV.UK's pattern):

who you are (``/apply``) → the law firm (``/apply/firm``, only when a law firm asks) → how to
reach you (``/apply/contact``) → your case (``/apply/case``) → what you need (``/apply/needs``)
→ check your answers (``/apply/check``, each answer with a "Change" link back to its step) →
consent and send (``/apply/send``).

- No JavaScript needed: each step is a form posting to its own URL and answered with a
  redirect (303) to the next one, so the browser's back and forward buttons and the pages'
  "Back" links move between plain GETs; each step shows the answers saved so far.
- The answers live in the browser between steps, encrypted (``app/web/apply_draft.py``), and
  expire; sending deletes them. A changed, foreign or expired draft is refused with a page that
  says so and starts again; nothing of it is read.
- A step checks its own answers with the API's model (``SubmitIn``, the other steps' answers as
  far as given), so every rule lives in one place; errors come in the one-page form's words,
  in a focused summary at the top, each naming its field.
- Sending builds the same ``SubmitIn`` from the same values as the one-page form and calls the
  same ``app.web.public.send`` (the intake service, the form's own Idempotency-Key), after the
  same protection: CSRF on every step, the submission limit, the honeypot (on every step) and
  the fill time (from the first answer), the body limit on every step.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.core.deps import SessionDep
from app.core.errors import TooManyRequests
from app.core.settings import get_settings
from app.intake.schemas import SubmitIn
from app.intake.throttle import check_submission_rate
from app.models import RequesterType
from app.web import apply_draft, i18n, public
from app.web.apply_draft import Draft, DraftError, DraftTooLarge
from app.web.public import N_, FormDep, page_lang, render, translator
from app.web.security import (
    CSRF_FIELD,
    HONEYPOT_FIELD,
    csrf_ok,
    csrf_value,
    form_stamp,
    stamp_age,
)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    fields: tuple[str, ...]


FIRM = "firm"
CHECK = "check"
SEND = "send"
STEPS = (
    Step("who", N_("Who you are"), ("requester_type", "full_name")),
    Step(FIRM, N_("The law firm"), ("law_firm_name", "contact_name")),
    Step(
        "contact",
        N_("How to reach you"),
        (
            "country_of_residence",
            "email",
            "preferred_channel",
            "phone",
            "whatsapp",
            "language",
            "timezone",
            "discreet",
        ),
    ),
    Step(
        "case",
        N_("Your case"),
        ("country_of_origin", "case_stage", "deadline", "topics", "case_summary"),
    ),
    Step("needs", N_("What you need"), ("wants",)),
    Step(CHECK, N_("Check your answers"), ()),
    Step(SEND, N_("Consent and send"), ("consent_data_processing", "consent_updates")),
)
BY_NAME = {s.name: s for s in STEPS}
QUESTIONS = tuple(s.name for s in STEPS if s.name not in (CHECK, SEND))
FIRM_FIELDS = BY_NAME[FIRM].fields
LIMITED_ROUTES = {("POST", f"/apply/{s.name}") for s in STEPS if s.name != CHECK}


def url(step: str, lang: str, *, change: bool = False, action: bool = False) -> str:
    """A step's page; the first one is ``/apply`` itself (``POST /apply`` is the one-page
    form's: the first step's ``action`` is ``/apply/who``)."""
    path = "/apply" if step == STEPS[0].name and not action else f"/apply/{step}"
    return f"{path}?lang={lang}" + ("&change=1" if change else "")


def flow(values: dict[str, Any]) -> list[str]:
    """The steps of this person: the law firm's only when a law firm asks."""
    law_firm = values.get("requester_type") == RequesterType.law_firm.value
    return [s.name for s in STEPS if s.name != FIRM or law_firm]


def blank() -> dict[str, Any]:
    """Every field of the one-page form, unanswered (the shape ``public._submit_body`` takes)."""
    values: dict[str, Any] = {
        n: "" for n in (*public.TEXT_FIELDS, *public.CHOICE_FIELDS, "deadline", "case_summary")
    }
    values.update({n: [] for n in public.LIST_FIELDS})
    values.update({n: False for n in public.BOOL_FIELDS})
    return values


def step_values(form: FormData, step: Step) -> dict[str, Any]:
    """This step's answers as the one-page form reads them (``public._values``)."""
    every = public._values(form)
    return {name: every[name] for name in step.fields}


def check(values: dict[str, Any], fields: tuple[str, ...], lang: str) -> dict[str, str]:
    """The API model's errors of ``fields``, with every answer given so far."""
    try:
        SubmitIn.model_validate(public._submit_body({**blank(), **values}))
    except ValidationError as exc:
        return {f: m for f, m in public.field_errors(exc, lang).items() if f in fields}
    return {}


def first_missing(draft: Draft) -> str | None:
    return next((s for s in flow(draft.values) if s in QUESTIONS and s not in draft.done), None)


# Pages -------------------------------------------------------------------------------------

REFUSED = {
    "unreadable": N_(
        "We could not read the answers kept in this browser: they were changed, or they come "
        "from an earlier visit. For your safety they have been deleted. Please start again."
    ),
    "expired": N_(
        "Your answers were deleted because the form was left for more than %(minutes)d "
        "minutes. This protects you on a shared or watched device. Please start again."
    ),
    "none": N_(
        "No answers are kept in this browser: the request was sent already, or they were "
        "deleted. Please start again."
    ),
}
TOO_LARGE = N_(
    "This is too long to keep between the steps. Please shorten it; you can send us more "
    "once a person has contacted you."
)
TOO_FAST = N_("Please take a moment to check your answers, then send the form again.")


def restart_page(request: Request, lang: str, problem: DraftError | None) -> HTMLResponse:
    """The draft cannot be used (``None``: there is none): say why, delete it, offer a fresh
    start. 400 for a draft that is not ours, 410 for one that is gone."""
    t = translator(lang)
    reason = "none" if problem is None else "expired" if problem.expired else "unreadable"
    message = str(t(REFUSED[reason]))
    if reason == "expired":
        message = message % {"minutes": apply_draft.DRAFT_MINUTES}
    ctx = {
        "title": t("Please start again"),
        "message": message,
        "start": url(STEPS[0].name, lang),
        "noindex": True,
    }
    page = render(
        request,
        lang,
        "public/apply_restart.html",
        ctx,
        status=400 if reason == "unreadable" else 410,
        csrf=csrf_value(request),
    )
    apply_draft.clear(page)
    return page


def _progress(lang: str, values: dict[str, Any], step: Step) -> str:
    steps = flow(values)
    t = translator(lang)
    text = t("Step %(num)d of %(total)d")
    return str(text) % {"num": steps.index(step.name) + 1, "total": len(steps)}


def _back(lang: str, values: dict[str, Any], step: Step, change: bool) -> str | None:
    steps = flow(values)
    at = steps.index(step.name)
    if change and step.name not in (CHECK, SEND):
        return url(CHECK, lang)
    return url(steps[at - 1], lang) if at > 0 else None


def step_page(
    request: Request,
    lang: str,
    step: Step,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    *,
    change: bool = False,
    status: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    t = translator(lang)
    errors = errors or {}
    values = {**blank(), **values}
    ctx = public._apply_context(lang, values, errors)
    ctx.update(
        {
            "title": (t("Error") + ": " if errors else "") + t(step.title),
            "heading": t(step.title),
            "step": step.name,
            "progress": _progress(lang, values, step),
            "back_url": _back(lang, values, step, change),
            "action": url(step.name, lang, change=change, action=True),
            "notice": notice,
            "law_firm": values.get("requester_type") == RequesterType.law_firm.value,
            "noindex": True,
        }
    )
    if step.name == CHECK:
        ctx["rows"] = answer_rows(lang, values)
        ctx["next_url"] = url(SEND, lang)
    csrf = csrf_value(request)
    template = f"public/apply_{step.name}.html"
    return render(request, lang, template, ctx, status=status, csrf=csrf)


# The check page's rows -----------------------------------------------------------------------

LABELS = {
    "requester_type": N_("Who sends this request?"),
    "full_name": N_("Full name of the applicant"),
    "law_firm_name": N_("Name of the law firm"),
    "contact_name": N_("Name of the lawyer"),
    "country_of_residence": N_("Country where the person lives now"),
    "email": N_("E-mail address"),
    "preferred_channel": N_("How should we contact you?"),
    "phone": N_("Phone number"),
    "whatsapp": N_("WhatsApp number"),
    "language": N_("Language for our replies"),
    "timezone": N_("Your time zone"),
    "discreet": N_("Be discreet"),
    "country_of_origin": N_("Country the person fears returning to"),
    "case_stage": N_("Stage of the case"),
    "deadline": N_("Deadline"),
    "topics": N_("What the report should cover"),
    "case_summary": N_("Short summary of the case"),
    "wants": N_("What you would like"),
}
LEFT_TO_RIGHT = {"email", "phone", "whatsapp", "deadline", "timezone"}


def _shown(lang: str, name: str, value: Any) -> str:
    """An answer as the person chose it, in words of the page's language."""
    t = translator(lang)
    options: dict[str, str] = {}
    if name == "requester_type":
        options = {k.value: t(v) for k, v in public.REQUESTER_TYPES.items()}
    elif name == "preferred_channel":
        options = {k.value: t(v) for k, v in public.CHANNELS.items()}
    elif name == "case_stage":
        options = {k.value: t(v) for k, v in public.STAGES.items()}
    elif name in ("country_of_residence", "country_of_origin"):
        options = dict(i18n.country_names(lang))
    elif name == "language":
        options = dict(i18n.language_names(lang))
    elif name == "topics":
        labels = {k.value: t(v) for k, v in public.TOPICS.items()}
        return ", ".join(labels.get(v, v) for v in value)
    elif name == "wants":
        labels = {k.value: t(v) for k, v in public.WANTS.items()}
        return ", ".join(labels.get(v, v) for v in value)
    elif name == "discreet":
        return str(t("Yes") if value else t("No"))
    if not value:
        return str(t("Not given"))
    return str(options.get(value, value))


def answer_rows(lang: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{step, field, label, value, change, ltr}]`` in the order of the steps."""
    t = translator(lang)
    rows = []
    for name in flow(values):
        for field in BY_NAME[name].fields if name in QUESTIONS else ():
            rows.append(
                {
                    "field": field,
                    "label": t(LABELS[field]),
                    "value": _shown(lang, field, values.get(field)),
                    "change": url(name, lang, change=True) + f"#f-{field}",
                    "ltr": field in LEFT_TO_RIGHT and bool(values.get(field)),
                }
            )
    return rows


# Routes --------------------------------------------------------------------------------------


def _csrf(request: Request) -> str:
    return request.cookies.get("csrf", "")


def _show(request: Request, name: str) -> Response:
    lang = page_lang(request)
    step = BY_NAME[name]
    try:
        draft = apply_draft.read(request, _csrf(request))
    except DraftError as problem:
        return restart_page(request, lang, problem)
    if draft is None:
        if name != STEPS[0].name:  # nothing answered yet: the first step
            return RedirectResponse(url(STEPS[0].name, lang), status_code=303)
        return step_page(request, lang, step, {"language": lang, "requester_type": "applicant"})
    missing = first_missing(draft)
    if name not in flow(draft.values):
        return RedirectResponse(url(missing or CHECK, lang), status_code=303)
    steps = flow(draft.values)
    if missing is not None and steps.index(missing) < steps.index(name):
        return RedirectResponse(url(missing, lang), status_code=303)
    change = request.query_params.get("change") == "1"
    return step_page(request, lang, step, draft.values, change=change)


def _save(request: Request, form: FormData, name: str) -> Response:
    lang = page_lang(request)
    step = BY_NAME[name]
    change = request.query_params.get("change") == "1"
    token = form.get(CSRF_FIELD)
    if not csrf_ok(request, token if isinstance(token, str) else None):
        return public.refused_page(request, lang, url(name, lang))
    csrf = _csrf(request)
    try:
        draft = apply_draft.read(request, csrf)
    except DraftError as problem:
        return restart_page(request, lang, problem)
    if draft is None:
        if name != STEPS[0].name:
            return restart_page(request, lang, None)
        # As the one-page form: replies in the page's language unless the person chooses.
        values = {"language": lang, "requester_type": RequesterType.applicant.value}
        draft = Draft(values=values, stamp=form_stamp(csrf), key=secrets.token_urlsafe(18))
    answers = step_values(form, step)
    values = {**draft.values, **answers}
    if form.get(HONEYPOT_FIELD):  # nothing kept; a person sends the step again
        notice = str(translator(lang)(TOO_FAST))
        return step_page(request, lang, step, values, change=change, status=422, notice=notice)
    if values.get("requester_type") != RequesterType.law_firm.value:
        values = {k: v for k, v in values.items() if k not in FIRM_FIELDS}
        draft.done = [d for d in draft.done if d != FIRM]
    errors = check(values, step.fields, lang)
    if errors:
        return step_page(request, lang, step, values, errors, change=change, status=422)
    draft.values = values
    draft.done = [*[d for d in draft.done if d != name], name]
    missing = first_missing(draft)
    if change or missing is None:
        target = url(missing or CHECK, lang)
    else:
        steps = flow(values)
        target = url(steps[steps.index(name) + 1], lang)
    response = RedirectResponse(target, status_code=303)
    try:
        apply_draft.write(response, draft, csrf)
    except DraftTooLarge:
        field = "case_summary" if "case_summary" in step.fields else step.fields[0]
        too_large = {field: str(translator(lang)(TOO_LARGE))}
        return step_page(request, lang, step, values, too_large, change=change, status=422)
    return response


def _send(request: Request, session: SessionDep, form: FormData) -> Response:
    lang = page_lang(request)
    step = BY_NAME[SEND]
    token = form.get(CSRF_FIELD)
    if not csrf_ok(request, token if isinstance(token, str) else None):
        return public.refused_page(request, lang, url(SEND, lang))
    try:
        check_submission_rate(request)
    except TooManyRequests as exc:
        return public.too_many_page(request, lang, exc)
    csrf = _csrf(request)
    try:
        draft = apply_draft.read(request, csrf)
    except DraftError as problem:
        return restart_page(request, lang, problem)
    if draft is None:
        return restart_page(request, lang, None)
    missing = first_missing(draft)
    if missing is not None:
        return RedirectResponse(url(missing, lang), status_code=303)
    values = {**blank(), **draft.values, **step_values(form, step)}
    age = stamp_age(csrf, draft.stamp)
    if form.get(HONEYPOT_FIELD) or age is None or age < get_settings().form_min_fill_seconds:
        # Not stored; the fill time counts again from now, as the one-page form's fresh stamp.
        draft.stamp = form_stamp(csrf)
        notice = str(translator(lang)(TOO_FAST))
        page = step_page(request, lang, step, values, status=422, notice=notice)
        apply_draft.write(page, draft, csrf)
        return page
    try:
        data = SubmitIn.model_validate(public._submit_body(values))
    except ValidationError as exc:
        errors = public.field_errors(exc, lang)
        # The first step with an error (a deadline passed meanwhile), or this one.
        owner = next(
            (BY_NAME[s] for s in flow(values) if set(BY_NAME[s].fields) & set(errors)), step
        )
        page_errors = {f: m for f, m in errors.items() if f in owner.fields}
        return step_page(request, lang, owner, values, page_errors, status=422)
    page = public.confirmation_page(request, lang, data, public.send(session, data, draft.key))
    apply_draft.clear(page)
    return page


@router.get("/apply", response_class=HTMLResponse, response_model=None)
@router.get("/apply/who", response_class=HTMLResponse, response_model=None)
def who(request: Request) -> Response:
    return _show(request, "who")


@router.get("/apply/firm", response_class=HTMLResponse, response_model=None)
def firm(request: Request) -> Response:
    return _show(request, FIRM)


@router.get("/apply/contact", response_class=HTMLResponse, response_model=None)
def contact(request: Request) -> Response:
    return _show(request, "contact")


@router.get("/apply/case", response_class=HTMLResponse, response_model=None)
def case(request: Request) -> Response:
    return _show(request, "case")


@router.get("/apply/needs", response_class=HTMLResponse, response_model=None)
def needs(request: Request) -> Response:
    return _show(request, "needs")


@router.get("/apply/check", response_class=HTMLResponse, response_model=None)
def check_answers(request: Request) -> Response:
    return _show(request, CHECK)


@router.get("/apply/send", response_class=HTMLResponse, response_model=None)
def consent(request: Request) -> Response:
    return _show(request, SEND)


@router.post("/apply/who", response_class=HTMLResponse, response_model=None)
def save_who(request: Request, form: FormDep) -> Response:
    return _save(request, form, "who")


@router.post("/apply/firm", response_class=HTMLResponse, response_model=None)
def save_firm(request: Request, form: FormDep) -> Response:
    return _save(request, form, FIRM)


@router.post("/apply/contact", response_class=HTMLResponse, response_model=None)
def save_contact(request: Request, form: FormDep) -> Response:
    return _save(request, form, "contact")


@router.post("/apply/case", response_class=HTMLResponse, response_model=None)
def save_case(request: Request, form: FormDep) -> Response:
    return _save(request, form, "case")


@router.post("/apply/needs", response_class=HTMLResponse, response_model=None)
def save_needs(request: Request, form: FormDep) -> Response:
    return _save(request, form, "needs")


@router.post("/apply/send", response_class=HTMLResponse, response_model=None)
def send(request: Request, session: SessionDep, form: FormDep) -> Response:
    return _send(request, session, form)
