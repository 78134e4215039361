"""``/staff/getting-started``: the first-run checklist (admins only).

An admin who signs in without a page to return to lands here while an item is unticked, and
the staff navigation shows "Getting started" until every item is ticked. The items are computed
from the database (``app.onboarding.service``), so they tick themselves whether the work was
done on pages or through the API.

Each item's directions say what to do on the admin console's page its link opens (the
``*_LINK`` constants below).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core.deps import SessionDep
from app.onboarding import service as onboarding
from app.web.auth import AdminPageUser, page

router = APIRouter(include_in_schema=False)
PATH = "/staff/getting-started"

EXPERTS_LINK = "/admin/experts"
HOURS_LINK = "/admin/experts"
SAMPLES_LINK = "/admin/sample-reports"
ROSTER_LINK = "/admin/roster"
SECOND_FACTOR_LINK = "/my-account"


def N_(text: str) -> str:
    return text


@dataclass(frozen=True)
class ItemText:
    title: str
    why: str
    how: str
    link: str
    link_text: str


ITEMS: dict[str, ItemText] = {
    "experts": ItemText(
        N_("Add experts"),
        N_("Requests are offered to active experts who cover the requester's country or region."),
        N_(
            'On Experts, under "Add an expert", choose an expert account or invite someone new, '
            'fill in their time zone, languages, countries and regions and press "Add the '
            'expert". Then, on the expert\'s page under "Profile", enter their personal meeting '
            'link (where the service uses Zoom: their Zoom user) and press "Save the profile": '
            "their consultations are held there."
        ),
        EXPERTS_LINK,
        N_("Go to Experts"),
    ),
    "hours": ItemText(
        N_("Set the experts' hours"),
        N_("Every active expert needs weekly hours: requesters book consultations in them."),
        N_(
            'On Experts, open each expert and, under "Weekly hours", enter the ranges of each '
            'day in the expert\'s own time zone, like 09:00-12:00; press "Save the weekly hours".'
        ),
        HOURS_LINK,
        N_("Go to Experts"),
    ),
    "samples": ItemText(
        N_("Upload sample reports"),
        N_(
            "Requesters may ask for a sample report: each region that has an expert needs one "
            "of its own."
        ),
        N_(
            'On Sample reports, under "Upload a sample report", choose the region in "For", '
            'choose the PDF file and press "Upload".'
        ),
        SAMPLES_LINK,
        N_("Go to Sample reports"),
    ),
    "roster": ItemText(
        N_("Fill the duty roster"),
        N_(
            "Someone on staff, and an expert or the lead of each region, on duty at every hour "
            "of the next 7 days, so that every request gets its answer within the hour."
        ),
        N_(
            'On Roster, under "Add a weekly shift", choose the person, the weekday, the start '
            'and the end and press "Add the shift"; "Gaps in the next 7 days" shows what is left.'
        ),
        ROSTER_LINK,
        N_("Go to Roster"),
    ),
    "second_factor": ItemText(
        N_("Turn on your second factor"),
        N_("An admin account can do everything: protect yours with an authenticator app."),
        N_("On your account page, enrol an authenticator app and keep the recovery codes."),
        SECOND_FACTOR_LINK,
        N_("Your account"),
    ),
}


@router.get(PATH)
def getting_started(request: Request, session: SessionDep, user: AdminPageUser) -> Response:
    result = onboarding.checklist(session, user)
    items = [(key, result.done[key], ITEMS[key]) for key in onboarding.ITEMS]
    return page(
        request,
        "staff/getting_started.html",
        {
            "title": N_("Getting started"),
            "items": items,
            "complete": result.complete,
            "regions_without_sample": result.regions_without_sample,
            "experts_without_hours": result.experts_without_hours,
            "experts_without_meeting": result.experts_without_meeting,
            "roster_uncovered": result.roster_uncovered,
        },
        user=user,
    )
