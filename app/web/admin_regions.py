"""``/admin/regions``: the admin console's Regions and countries (admins only).

- Regions with their lead expert (linked to the expert's page) and how many countries belong to
  them; add, rename, delete a region (``app/reference/service.py``, as
  ``/api/v1/admin/regions``: a region that countries still belong to is refused with how many);
  name or remove a region's lead (``app/experts/service.py::set_region_lead``, as
  ``PUT /api/v1/admin/experts/region-leads/{code}``).
- Country profiles: region, civic-space rating with its date and source, notes for staff; add a
  country, edit a profile (as ``PATCH /api/v1/admin/countries/{code}``, on its own page), remove
  one (its requests go to the general pool from then on).
- Coverage gaps, on top: the countries of the table that no active expert covers, and those no
  sample report would be sent for. Neither list has a rule of its own: an expert covers a
  country when routing would read them as a candidate for a request from it
  (``app/routing/repository.py::candidates``, by country or by region), and a country has a
  sample report when sending would find one (``app/sendouts/service.py::sample_report_coverage``,
  the best-match rule itself). Countries outside the table go to the general pool; they are not
  listed.

Every action is a plain POST form with the CSRF token (no JavaScript); the audit middleware
records it as it records the API's. A refused action re-renders the page with an error summary
and the message beside the field or the region; a done one redirects with a message.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.core.deps import SessionDep
from app.core.errors import AppError, Conflict, NotFound
from app.core.time import now
from app.core.validation import SafeStr
from app.experts import service as experts
from app.models import CivicSpaceRating, Country, User
from app.reference import service as reference
from app.reference.schemas import CountryIn, CountryUpdate, RegionIn, RegionUpdate
from app.routing import repository as routing
from app.routing.decision import TIER_COUNTRY, TIER_REGION
from app.sendouts import service as sendouts
from app.web.auth import AdminPageUser, CsrfForm, not_found, page, redirect
from app.web.i18n import pN_

router = APIRouter(include_in_schema=False)
PATH = "/admin/regions"
COUNTRIES = PATH + "/countries"
EXPERTS_PATH = "/admin/experts"
SAMPLES_PATH = "/admin/sample-reports"


def N_(text: str) -> str:
    return text


# Shown with pgettext("civic space", label): "Open" and "Closed" mean other things elsewhere.
RATINGS: dict[str, str] = {
    CivicSpaceRating.closed.value: pN_("civic space", "Closed"),
    CivicSpaceRating.repressed.value: pN_("civic space", "Repressed"),
    CivicSpaceRating.obstructed.value: pN_("civic space", "Obstructed"),
    CivicSpaceRating.narrowed.value: pN_("civic space", "Narrowed"),
    CivicSpaceRating.open.value: pN_("civic space", "Open"),
}
DONE: dict[str, str] = {
    "region_added": N_("The region is added."),
    "region_renamed": N_("The region is renamed."),
    "region_deleted": N_("The region is deleted."),
    "lead": N_("The region's lead is changed."),
    "country_added": N_("The country is added."),
    "country_saved": N_("The country's profile is saved."),
    "country_removed": N_("The country is removed; its requests go to the general pool."),
}
FIELD_MESSAGES: dict[str, str] = {
    "code": N_("Enter a code of lower-case letters, digits and _ (2 to 64, starting a letter)."),
    "name": N_("Enter a name (at most 200 characters)."),
    "country_code": N_("Enter the country's two-letter ISO code (Kosovo: XK)."),
    "region_code": N_("Choose a region from the list."),
    "civic_space_rating": N_("Choose a rating from the list."),
    "rating_date": N_("Enter the date as 2023-12 or 2023-12-05."),
    "rating_source": N_("Enter the source in at most 200 characters."),
    "staff_notes": N_("Shorten the notes to at most 10,000 characters."),
}
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_MESSAGE = N_("Remove the control characters from this field.")


# Coverage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Countries of the table with no expert and with no sample report, by name."""

    no_expert: list[Country]
    no_sample: list[Country]
    # The sample report a request from each country would get now (None: nothing is sent).
    samples: dict[str, uuid.UUID | None]


def expert_covered(session: Session, countries: Sequence[Country]) -> set[str]:
    """Codes of the countries an active expert covers, free right now or not: routing's own
    candidates. Routing asks the country's tier, then the region's (those covering the region
    but not the country by name); together they are every expert covering one or the other,
    so a region is asked once (for no country) and a country by name only when its region
    has nobody."""
    current = now()
    region_has: dict[str, bool] = {}
    covered: set[str] = set()
    for c in countries:
        region = c.region_code
        if region is not None and region not in region_has:
            region_has[region] = bool(
                routing.candidates(
                    session, country="", region=region, current=current, tier=TIER_REGION
                )
            )
        if (region is not None and region_has[region]) or routing.candidates(
            session, country=c.code, region=region, current=current, tier=TIER_COUNTRY
        ):
            covered.add(c.code)
    return covered


def coverage(session: Session, countries: Sequence[Country]) -> Coverage:
    covered = expert_covered(session, countries)
    samples = sendouts.sample_report_coverage(session, [(c.code, c.region_code) for c in countries])
    return Coverage(
        no_expert=[c for c in countries if c.code not in covered],
        no_sample=[c for c in countries if samples[c.code] is None],
        samples=samples,
    )


# Helpers -----------------------------------------------------------------------------------


def _field(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit].strip() if isinstance(value, str) else ""


def _control_errors(answers: dict[str, str]) -> dict[str, str]:
    return {name: CONTROL_MESSAGE for name, value in answers.items() if CONTROL.search(value)}


def _field_errors(exc: ValidationError, names: dict[str, str] | None = None) -> dict[str, str]:
    """One message per form field; ``names`` maps a schema field to the form's field."""
    errors: dict[str, str] = {}
    for problem in exc.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        shown = (names or {}).get(field, field)
        errors.setdefault(shown, FIELD_MESSAGES.get(shown, N_("Check this field.")))
    return errors


def _blank_none(answers: dict[str, str]) -> dict[str, str | None]:
    return {name: value or None for name, value in answers.items()}


class _Refused(AppError):
    """A form value the page refuses before the service is called (shown like its errors)."""

    status_code = 422
    code = "refused"


# The page ----------------------------------------------------------------------------------


def _regions_page(
    request: Request,
    db: Session,
    user: User,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    new_region: dict[str, str] | None = None,
    renames: dict[str, str] | None = None,
    done_message: str | None = None,
) -> Response:
    countries = reference.list_countries(db)
    members = Counter(c.region_code for c in countries)
    leads = experts.region_leads(db)
    region_names = {region.code: region.name for region, _name in leads}
    ctx: dict[str, Any] = {
        "title": N_("Regions and countries"),
        "regions": leads,
        "members": members,
        "region_names": region_names,
        "countries": countries,
        "candidates": experts.list_profiles(db, active_only=True),
        "coverage": coverage(db, countries),
        "ratings": RATINGS,
        "errors": errors or {},
        "new_region": new_region or {"code": "", "name": ""},
        "renames": renames or {},
        "done_message": done_message,
        "experts_path": EXPERTS_PATH,
        "samples_path": SAMPLES_PATH,
    }
    return page(request, "staff/admin_regions.html", ctx, user=user, status=status)


@router.get(PATH)
def regions(
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    return _regions_page(request, db, user, done_message=DONE.get(done))


@router.post(f"{PATH}/add")
def add_region(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    answers = {"code": _field(form, "code", 100), "name": _field(form, "name", 300)}
    errors = _control_errors(answers)
    body: RegionIn | None = None
    if not errors:
        try:
            body = RegionIn.model_validate(answers)
        except ValidationError as exc:
            errors = _field_errors(exc)
    if body is not None:
        try:
            reference.create_region(db, code=body.code, name=body.name)
        except Conflict:
            errors["code"] = N_("A region with this code exists already.")
    if errors:
        return _regions_page(request, db, user, status=422, errors=errors, new_region=answers)
    return redirect(f"{PATH}?done=region_added#region-{answers['code']}")


def _region_act(
    request: Request,
    db: Session,
    user: User,
    code: str,
    done: str,
    action: Callable[[], object],
    *,
    renames: dict[str, str] | None = None,
) -> Response:
    """Run one action on a region: a refusal is shown beside it, a success redirects."""
    try:
        reference.get_region(db, code)
    except NotFound:
        return not_found(request, user)
    key = f"region-{code}"
    try:
        action()
    except AppError as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        errors = {key: exc.message}
        return _regions_page(request, db, user, status=status, errors=errors, renames=renames)
    anchor = "" if done == "region_deleted" else f"#{key}"
    return redirect(f"{PATH}?done={done}{anchor}")


@router.post(PATH + "/{code}/rename")
def rename_region(
    request: Request, db: SessionDep, code: SafeStr, user: AdminPageUser, form: CsrfForm
) -> Response:
    name = _field(form, "name", 300)

    def act() -> None:
        if CONTROL.search(name):
            raise _Refused(CONTROL_MESSAGE)
        try:
            body = RegionUpdate.model_validate({"name": name})
        except ValidationError:
            raise _Refused(FIELD_MESSAGES["name"]) from None
        reference.update_region(db, code, name=body.name)

    return _region_act(request, db, user, code, "region_renamed", act, renames={code: name})


@router.post(PATH + "/{code}/delete")
def delete_region(
    request: Request, db: SessionDep, code: SafeStr, user: AdminPageUser, _f: CsrfForm
) -> Response:
    return _region_act(
        request, db, user, code, "region_deleted", lambda: reference.delete_region(db, code)
    )


@router.post(PATH + "/{code}/lead")
def set_lead(
    request: Request, db: SessionDep, code: SafeStr, user: AdminPageUser, form: CsrfForm
) -> Response:
    chosen = _field(form, "expert_id", 100)

    def act() -> None:
        try:
            expert_id = uuid.UUID(chosen) if chosen else None
        except ValueError:
            raise _Refused(N_("Choose an expert from the list, or no lead.")) from None
        experts.set_region_lead(db, code, expert_id)

    return _region_act(request, db, user, code, "lead", act)


# Countries ---------------------------------------------------------------------------------

COUNTRY_FIELDS = (
    ("name", 300),
    ("region_code", 100),
    ("civic_space_rating", 40),
    ("rating_date", 40),
    ("rating_source", 300),
    ("staff_notes", 12_000),
)


def _country_answers(form: FormData, *, with_code: bool) -> dict[str, str]:
    answers = {name: _field(form, name, limit) for name, limit in COUNTRY_FIELDS}
    if with_code:
        answers = {"country_code": _field(form, "country_code", 10), **answers}
    return answers


def _country_page(
    request: Request,
    db: Session,
    user: User,
    *,
    country: Country | None,
    answers: dict[str, str],
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    ctx: dict[str, Any] = {
        "title": country.name if country is not None else N_("Add a country"),
        "country": country,
        "answers": answers,
        "regions": reference.list_regions(db),
        "ratings": RATINGS,
        "errors": errors or {},
    }
    return page(request, "staff/admin_region_country.html", ctx, user=user, status=status)


def _answers_of(country: Country) -> dict[str, str]:
    return {
        "name": country.name,
        "region_code": country.region_code or "",
        "civic_space_rating": country.civic_space_rating.value
        if country.civic_space_rating
        else "",
        "rating_date": country.rating_date or "",
        "rating_source": country.rating_source or "",
        "staff_notes": country.staff_notes or "",
    }


@router.get(f"{COUNTRIES}/new")
def new_country(request: Request, db: SessionDep, user: AdminPageUser) -> Response:
    answers = {"country_code": "", **{name: "" for name, _limit in COUNTRY_FIELDS}}
    return _country_page(request, db, user, country=None, answers=answers)


@router.post(f"{COUNTRIES}/new")
def add_country(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    answers = _country_answers(form, with_code=True)
    errors = _control_errors(answers)
    body: CountryIn | None = None
    if not errors:
        values = _blank_none(answers)
        values["code"] = values.pop("country_code") or ""
        try:
            body = CountryIn.model_validate(values)
        except ValidationError as exc:
            errors = _field_errors(exc, {"code": "country_code"})
    if body is not None:
        try:
            reference.create_country(db, **body.model_dump())
        except Conflict:
            errors["country_code"] = N_("This country is in the table already; edit it instead.")
        except NotFound:
            errors["region_code"] = FIELD_MESSAGES["region_code"]
    if errors:
        return _country_page(
            request, db, user, country=None, answers=answers, status=422, errors=errors
        )
    assert body is not None
    return redirect(f"{PATH}?done=country_added#country-{body.code}")


@router.get(COUNTRIES + "/{code}")
def country(request: Request, db: SessionDep, code: SafeStr, user: AdminPageUser) -> Response:
    try:
        found = reference.get_country(db, code)
    except NotFound:
        return not_found(request, user)
    return _country_page(request, db, user, country=found, answers=_answers_of(found))


@router.post(COUNTRIES + "/{code}/edit")
def edit_country(
    request: Request, db: SessionDep, code: SafeStr, user: AdminPageUser, form: CsrfForm
) -> Response:
    try:
        found = reference.get_country(db, code)
    except NotFound:
        return not_found(request, user)
    answers = _country_answers(form, with_code=False)
    errors = _control_errors(answers)
    changes: dict[str, object] = {}
    if not errors:
        try:
            # Every field of the form is sent: an emptied one is cleared, as null is in the API.
            changes = CountryUpdate.model_validate(_blank_none(answers)).model_dump()
        except ValidationError as exc:
            errors = _field_errors(exc)
        if not errors and changes.get("name") is None:
            errors["name"] = N_("Enter the country's name.")
    if not errors:
        try:
            reference.update_country(db, found.code, changes)
        except NotFound:
            errors["region_code"] = FIELD_MESSAGES["region_code"]
    if errors:
        return _country_page(
            request, db, user, country=found, answers=answers, status=422, errors=errors
        )
    return redirect(f"{PATH}?done=country_saved#country-{found.code}")


@router.post(COUNTRIES + "/{code}/delete")
def delete_country(
    request: Request, db: SessionDep, code: SafeStr, user: AdminPageUser, _f: CsrfForm
) -> Response:
    try:
        reference.delete_country(db, code)
    except NotFound:
        return not_found(request, user)
    return redirect(f"{PATH}?done=country_removed#countries")
