"""The admin console's Regions and countries page: regions with their lead, add, rename, delete
(refused while countries belong to it), a region's lead; country profiles added, edited and
removed on their own page; the coverage gaps, which follow routing's candidates and the
sample report sending would choose. Each action goes through the API's service; a form without
its CSRF token changes nothing; staff and experts get 403; an unknown code is 404."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.experts import service as experts
from app.models import AuditEvent, CivicSpaceRating, Country, Region, Role, User
from app.reference import service as reference
from app.routing import assignments
from app.sendouts import service as sendouts
from app.web import admin_regions as regions_page
from tests.factories import (
    create_expert,
    create_user,
    csrf,
    field_error,
    make_request,
    sample_report,
    signed_in,
)

PATH = regions_page.PATH
EE = "eastern_europe_post_soviet"
BALKANS = {"AL", "XK", "MK", "RS", "BA"}
STAFF_CSS = Path(regions_page.__file__).parent / "static" / "staff.css"


@pytest.fixture
def admin(db: Session) -> User:
    return create_user(db, role=Role.admin, display_name="Ada Admin")


def post(web: TestClient, url: str, **data: str) -> Any:
    return web.post(url, data={**csrf(web, PATH), **data}, follow_redirects=False)


def listed(html: str, kind: str) -> set[str]:
    """Country codes in one of the gap lists (``no-expert``, ``no-sample``)."""
    return set(re.findall(rf'<li id="{kind}-([A-Z]{{2}})"', html))


def table_codes(db: Session) -> set[str]:
    return {c.code for c in reference.list_countries(db)}


def region_row(html: str, code: str) -> str:
    found = re.search(rf'<tr id="region-{code}".*?</tr>', html, re.S)
    assert found is not None, f"no row for region {code}"
    return found.group(0)


def country_row(html: str, code: str) -> str:
    found = re.search(rf'<tr id="country-{code}".*?</tr>', html, re.S)
    assert found is not None, f"no row for country {code}"
    return found.group(0)


def fresh(db: Session, model: type[Any], key: str) -> Any:
    db.expire_all()
    return db.get(model, key)


# Who may open it ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_and_comes_back(web: TestClient, db: Session) -> None:
    resp = web.get(PATH, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/sign-in?next=/admin/regions"


@pytest.mark.parametrize("role", [Role.staff, Role.expert])
def test_staff_and_experts_get_403_for_every_page_and_action(
    web: TestClient, db: Session, role: Role
) -> None:
    expert = create_expert(db, regions=[EE])
    signed_in(web, create_user(db, role=role))
    for url in (PATH, f"{PATH}/countries/new", f"{PATH}/countries/KG"):
        assert web.get(url).status_code == 403, url
    token = {"csrf_token": csrf(web, "/my-account")["csrf_token"]}
    actions = {
        f"{PATH}/add": {"code": "central_africa", "name": "Central Africa"},
        f"{PATH}/{EE}/rename": {"name": "Renamed"},
        f"{PATH}/east_asia/delete": {},
        f"{PATH}/{EE}/lead": {"expert_id": str(expert.id)},
        f"{PATH}/countries/new": {"country_code": "TR", "name": "Türkiye"},
        f"{PATH}/countries/KG/edit": {"name": "Renamed", "civic_space_rating": "open"},
        f"{PATH}/countries/KG/delete": {},
    }
    for url, data in actions.items():
        assert web.post(url, data={**token, **data}).status_code == 403, url
    region = fresh(db, Region, EE)
    assert region.name == "Eastern Europe & Post-Soviet States" and region.lead_expert_id is None
    assert fresh(db, Region, "central_africa") is None
    assert fresh(db, Region, "east_asia") is not None
    kg = fresh(db, Country, "KG")
    assert kg.name == "Kyrgyzstan" and kg.civic_space_rating == CivicSpaceRating.repressed
    assert fresh(db, Country, "TR") is None


def test_the_navigation_marks_the_page_for_admins(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    html = web.get(PATH).text
    assert re.search(r'href="/admin/regions" id="nav-regions" aria-current="page"', html)


# The lists ---------------------------------------------------------------------------------


def test_regions_show_their_lead_linked_and_how_many_countries_belong_to_them(
    web: TestClient, db: Session, admin: User
) -> None:
    lead = create_expert(db, regions=[EE], name="Dr Lead Person")
    experts.set_region_lead(db, EE, lead.id)
    signed_in(web, admin)
    html = web.get(PATH).text
    row = region_row(html, EE)
    assert f'<a href="/admin/experts/{lead.id}"><bdi>Dr Lead Person</bdi></a>' in row
    assert '<td data-label="Countries" class="region-countries">12</td>' in row
    assert "No lead" in region_row(html, "east_asia").split('class="region-lead">')[1][:20]


def test_country_profiles_show_region_rating_with_date_and_source_and_notes(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    html = web.get(PATH).text
    row = country_row(html, "KG")
    assert "<bdi>Eastern Europe &amp; Post-Soviet States</bdi>" in row
    assert 'Repressed, <bdi dir="ltr">2023-12</bdi> (<bdi>CIVICUS Monitor</bdi>)' in row
    assert "CIVICUS Monitor watchlist in March 2024" in row
    assert 'href="/admin/regions/countries/KG"' in row
    assert "Not rated" in country_row(html, "TJ")


# Regions -----------------------------------------------------------------------------------


def test_adding_a_region_lists_it_and_is_audited(web: TestClient, db: Session, admin: User) -> None:
    resp = post(signed_in(web, admin), f"{PATH}/add", code="central_africa", name="Central Africa")
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}?done=region_added#region-central_africa"
    assert fresh(db, Region, "central_africa").name == "Central Africa"
    html = web.get(resp.headers["location"]).text
    assert "The region is added." in html
    assert "<bdi>Central Africa</bdi>" in region_row(html, "central_africa")
    db.expire_all()
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == f"POST {PATH}/add")).all()


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"code": "Central Africa", "name": "Central Africa"}, "code", "lower-case letters"),
        ({"code": "c", "name": "Central Africa"}, "code", "lower-case letters"),
        ({"code": "central_africa", "name": ""}, "name", "Enter a name"),
        ({"code": "central_africa", "name": "x" * 201}, "name", "Enter a name"),
        ({"code": "central_africa", "name": "Central\x00Africa"}, "name", "control characters"),
        ({"code": "middle_east", "name": "Again"}, "code", "exists already"),
    ],
)
def test_a_region_with_a_bad_or_taken_code_or_name_is_refused_beside_the_field(
    web: TestClient, db: Session, admin: User, answers: dict[str, str], field: str, message: str
) -> None:
    resp = post(signed_in(web, admin), f"{PATH}/add", **answers)
    assert resp.status_code == 422
    assert message in field_error(resp.text, field)
    assert 'id="error-summary"' in resp.text and f'href="#{field}"' in resp.text
    assert f'value="{answers["code"]}"' in resp.text  # the answers are kept
    assert fresh(db, Region, "central_africa") is None
    assert fresh(db, Region, "middle_east").name == "Middle East"


def test_renaming_a_region_and_an_empty_name_refused_beside_it(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/east_asia/rename", name="East & North-East Asia")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?done=region_renamed#region-east_asia"
    assert fresh(db, Region, "east_asia").name == "East & North-East Asia"
    resp = post(web, f"{PATH}/east_asia/rename", name="  ")
    assert resp.status_code == 422
    assert "Enter a name" in field_error(resp.text, "region-east_asia")
    assert 'aria-describedby="region-east_asia-error"' in region_row(resp.text, "east_asia")
    assert fresh(db, Region, "east_asia").name == "East & North-East Asia"


def test_deleting_a_region_is_refused_while_countries_belong_to_it(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{EE}/delete")
    assert resp.status_code == 409
    assert "12 countries belong to this region; move them first." in field_error(
        resp.text, f"region-{EE}"
    )
    assert "Nothing was changed" in resp.text
    assert fresh(db, Region, EE) is not None
    reference.create_region(db, code="empty_region", name="Empty")
    resp = post(web, f"{PATH}/empty_region/delete")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?done=region_deleted"
    assert fresh(db, Region, "empty_region") is None
    assert 'id="region-empty_region"' not in web.get(PATH).text


def test_a_regions_lead_is_named_changed_and_removed_through_the_experts_service(
    web: TestClient, db: Session, admin: User
) -> None:
    first = create_expert(db, regions=[EE], name="Dr First")
    second = create_expert(db, countries=["KG"], name="Dr Second")
    signed_in(web, admin)
    html = web.get(PATH).text
    assert f'<option value="{second.id}">Dr Second</option>' in region_row(html, EE)
    assert post(web, f"{PATH}/{EE}/lead", expert_id=str(first.id)).status_code == 303
    assert fresh(db, Region, EE).lead_expert_id == first.id
    html = web.get(PATH).text
    assert f'<option value="{first.id}" selected>Dr First</option>' in region_row(html, EE)
    assert post(web, f"{PATH}/{EE}/lead", expert_id=str(second.id)).status_code == 303
    assert {r.code: name for r, name in experts.region_leads(db)}[EE] == "Dr Second"
    resp = post(web, f"{PATH}/{EE}/lead", expert_id="")
    assert resp.status_code == 303
    assert fresh(db, Region, EE).lead_expert_id is None
    db.expire_all()
    audited = db.scalars(
        select(AuditEvent).where(AuditEvent.action == f"POST {PATH}/{{code}}/lead")
    ).all()
    assert len(audited) == 3


def test_a_lead_that_is_no_expert_or_deactivated_is_refused_beside_the_region(
    web: TestClient, db: Session, admin: User
) -> None:
    gone = create_expert(db, regions=[EE], name="Dr Gone")
    experts.set_active(db, gone.id, False)
    signed_in(web, admin)
    for chosen, message in (
        ("not-a-uuid", "Choose an expert from the list"),
        (str(uuid.uuid4()), "No expert with this id."),
        (str(gone.id), "A deactivated expert cannot lead a region."),
    ):
        resp = post(web, f"{PATH}/{EE}/lead", expert_id=chosen)
        assert resp.status_code in (409, 422), chosen
        assert message in field_error(resp.text, f"region-{EE}")
        assert fresh(db, Region, EE).lead_expert_id is None


@pytest.mark.parametrize("action", ["rename", "delete", "lead"])
def test_an_unknown_region_answers_404(
    web: TestClient, db: Session, admin: User, action: str
) -> None:
    resp = post(signed_in(web, admin), f"{PATH}/nowhere/{action}", name="X", expert_id="")
    assert resp.status_code == 404


def test_a_form_without_its_csrf_token_changes_nothing(
    web: TestClient, db: Session, admin: User
) -> None:
    expert = create_expert(db, regions=[EE])
    reference.create_region(db, code="empty_region", name="Empty")
    signed_in(web, admin)
    actions = {
        f"{PATH}/add": {"code": "central_africa", "name": "Central Africa"},
        f"{PATH}/{EE}/rename": {"name": "Renamed"},
        f"{PATH}/empty_region/delete": {},
        f"{PATH}/{EE}/lead": {"expert_id": str(expert.id)},
        f"{PATH}/countries/new": {"country_code": "TR", "name": "Türkiye"},
        f"{PATH}/countries/KG/edit": {"name": "Renamed"},
        f"{PATH}/countries/KG/delete": {},
    }
    for url, data in actions.items():
        resp = web.post(url, data=data, follow_redirects=False)
        assert resp.status_code == 403, url
        resp = web.post(url, data={**data, "csrf_token": "forged"}, follow_redirects=False)
        assert resp.status_code == 403, url
    assert fresh(db, Region, "central_africa") is None
    assert fresh(db, Region, "empty_region") is not None
    region = fresh(db, Region, EE)
    assert region.name != "Renamed" and region.lead_expert_id is None
    assert fresh(db, Country, "TR") is None
    assert fresh(db, Country, "KG").name == "Kyrgyzstan"


# Countries ---------------------------------------------------------------------------------


def test_adding_a_country_with_its_profile(web: TestClient, db: Session, admin: User) -> None:
    signed_in(web, admin)
    assert web.get(f"{PATH}/countries/new").status_code == 200
    resp = post(
        web,
        f"{PATH}/countries/new",
        country_code=" tr ",
        name="Türkiye",
        region_code="middle_east",
        civic_space_rating="repressed",
        rating_date="2024-12",
        rating_source="CIVICUS Monitor",
        staff_notes="Line one.\nLine two.",
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}?done=country_added#country-TR"
    tr = fresh(db, Country, "TR")
    assert (tr.name, tr.region_code, tr.civic_space_rating, tr.rating_date) == (
        "Türkiye",
        "middle_east",
        CivicSpaceRating.repressed,
        "2024-12",
    )
    assert tr.staff_notes == "Line one.\nLine two."
    html = web.get(resp.headers["location"]).text
    assert "The country is added." in html
    assert "<bdi>Türkiye</bdi>" in country_row(html, "TR")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"country_code": "QQ"}, "country_code", "two-letter ISO code"),
        ({"country_code": ""}, "country_code", "two-letter ISO code"),
        ({"country_code": "KG"}, "country_code", "in the table already"),
        ({"name": ""}, "name", "Enter a name"),
        ({"rating_date": "December 2023"}, "rating_date", "2023-12 or 2023-12-05"),
        ({"civic_space_rating": "awful"}, "civic_space_rating", "Choose a rating"),
        ({"region_code": "nowhere"}, "region_code", "Choose a region"),
        ({"rating_source": "x" * 201}, "rating_source", "at most 200"),
    ],
)
def test_a_new_country_with_a_mistake_is_refused_beside_the_field(
    web: TestClient, db: Session, admin: User, change: dict[str, str], field: str, message: str
) -> None:
    answers = {"country_code": "TR", "name": "Türkiye", "region_code": "middle_east", **change}
    resp = post(signed_in(web, admin), f"{PATH}/countries/new", **answers)
    assert resp.status_code == 422
    assert message in field_error(resp.text, field)
    assert f'href="#{field}"' in resp.text
    assert "Türkiye" in resp.text or field == "name"  # the answers are kept
    assert fresh(db, Country, "TR") is None
    assert fresh(db, Country, "KG").name == "Kyrgyzstan"


def test_editing_a_profile_changes_and_clears_its_fields(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    form = web.get(f"{PATH}/countries/KG").text
    assert 'value="2023-12"' in form and '<option value="repressed" selected>' in form
    resp = post(
        web,
        f"{PATH}/countries/KG/edit",
        name="Kyrgyz Republic",
        region_code="",
        civic_space_rating="closed",
        rating_date="2025-01-15",
        rating_source="",
        staff_notes="Watch closely.",
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}?done=country_saved#country-KG"
    kg = fresh(db, Country, "KG")
    assert (kg.name, kg.region_code, kg.civic_space_rating) == (
        "Kyrgyz Republic",
        None,
        CivicSpaceRating.closed,
    )
    assert (kg.rating_date, kg.rating_source, kg.staff_notes) == (
        "2025-01-15",
        None,
        "Watch closely.",
    )
    html = web.get(PATH).text
    assert "None: the general pool" in country_row(html, "KG")
    db.expire_all()
    assert db.scalars(
        select(AuditEvent).where(AuditEvent.action == f"POST {PATH}/countries/{{code}}/edit")
    ).all()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": " "}, "name", "Enter the country"),
        ({"rating_date": "2023-13"}, "rating_date", "2023-12 or 2023-12-05"),
        ({"region_code": "nowhere"}, "region_code", "Choose a region"),
        ({"region_code": "Not A Code"}, "region_code", "Choose a region"),
        ({"staff_notes": "x" * 10_001}, "staff_notes", "10,000"),
        ({"staff_notes": "bell\x07"}, "staff_notes", "control characters"),
    ],
)
def test_an_edit_with_a_mistake_changes_nothing_and_names_the_field(
    web: TestClient, db: Session, admin: User, change: dict[str, str], field: str, message: str
) -> None:
    answers = {
        "name": "Kyrgyzstan",
        "region_code": EE,
        "civic_space_rating": "closed",
        "rating_date": "2024-01",
        **change,
    }
    resp = post(signed_in(web, admin), f"{PATH}/countries/KG/edit", **answers)
    assert resp.status_code == 422
    assert message in field_error(resp.text, field)
    kg = fresh(db, Country, "KG")
    assert (kg.region_code, kg.civic_space_rating, kg.rating_date) == (
        EE,
        CivicSpaceRating.repressed,
        "2023-12",
    )


def test_removing_a_country_sends_its_requests_to_the_general_pool(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/countries/KG/delete")
    assert resp.status_code == 303
    assert fresh(db, Country, "KG") is None
    html = web.get(resp.headers["location"]).text
    assert "its requests go to the general pool" in html
    assert 'id="country-KG"' not in html
    assert reference.region_of(db, "KG") is None


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", f"{PATH}/countries/ZZ"),
        ("post", f"{PATH}/countries/ZZ/edit"),
        ("post", f"{PATH}/countries/ZZ/delete"),
    ],
)
def test_an_unknown_country_answers_404(
    web: TestClient, db: Session, admin: User, method: str, url: str
) -> None:
    signed_in(web, admin)
    resp = web.get(url) if method == "get" else post(web, url, name="Nowhere")
    assert resp.status_code == 404


# Coverage gaps -----------------------------------------------------------------------------


def test_the_gap_lists_shrink_as_experts_and_sample_reports_are_added(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    everyone = table_codes(db)
    html = web.get(PATH).text
    assert listed(html, "no-expert") == everyone
    assert listed(html, "no-sample") == everyone

    create_expert(db, countries=["KG"])
    create_expert(db, regions=["western_balkans"])
    # Neither a deactivated profile nor a deactivated account covers anything.
    gone = create_expert(db, regions=["middle_east"])
    experts.set_active(db, gone.id, False)
    locked = create_expert(db, countries=["AF"])
    locked.is_active = False
    db.flush()
    html = web.get(PATH).text
    assert listed(html, "no-expert") == everyone - {"KG"} - BALKANS
    assert {"TJ", "SY", "AF"} <= listed(html, "no-expert")

    sample_report(db, admin, country="KG")
    sample_report(db, admin, region="east_africa")
    html = web.get(PATH).text
    east_africa = {c.code for c in reference.list_countries(db) if c.region_code == "east_africa"}
    assert len(east_africa) == 8
    assert listed(html, "no-sample") == everyone - {"KG"} - east_africa
    sample_report(db, admin)  # general: every country is covered
    html = web.get(PATH).text
    assert listed(html, "no-sample") == set()
    assert 'id="no-sample-none"' in html


def gaps_box(html: str) -> str:
    found = re.search(r'<section aria-labelledby="gaps-h" id="gaps"[^>]*>', html)
    assert found is not None, "no gaps box"
    return found.group(0)


def test_the_gaps_box_is_framed_as_a_problem_only_while_there_is_a_gap(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    assert 'class="gaps gaps-open" data-state="open"' in gaps_box(web.get(PATH).text)
    create_expert(db, countries=sorted(table_codes(db)))
    html = web.get(PATH).text
    assert listed(html, "no-expert") == set() and listed(html, "no-sample")
    assert 'class="gaps gaps-open"' in gaps_box(html)  # one list with gaps is enough
    sample_report(db, admin)  # general: every country is covered
    html = web.get(PATH).text
    assert listed(html, "no-expert") == listed(html, "no-sample") == set()
    assert 'class="gaps gaps-none" data-state="none"' in gaps_box(html)
    # Only a box with gaps gets the red frame.
    with open(STAFF_CSS, encoding="utf-8") as fh:
        css = fh.read()
    assert ".gaps.gaps-open{border-color:#b10e1e}" in css
    assert re.search(r"\.gaps\{border:3px solid #00703c;", css)


def test_the_expert_gaps_are_the_countries_routing_would_leave_in_triage(
    web: TestClient, db: Session, admin: User
) -> None:
    """The page asks routing's own candidates; this checks it against routing's decisions, so
    a coverage rule of the page's own that diverged (only the country tier, counting inactive
    experts) fails here."""
    create_expert(db, countries=["KG", "SY"], max_open=200)
    create_expert(db, regions=["western_balkans"], max_open=200)
    create_expert(db, regions=[EE], countries=["CU"], max_open=200)
    gone = create_expert(db, regions=["east_africa"], max_open=200)
    experts.set_active(db, gone.id, False)
    signed_in(web, admin)
    gaps = listed(web.get(PATH).text, "no-expert")
    routed_nowhere = set()
    for country in reference.list_countries(db):
        req = make_request(db, country=country.code, region=country.region_code)
        if assignments.route(db, req, trigger="test") is None:
            routed_nowhere.add(country.code)
    assert gaps == routed_nowhere
    assert {"KG", "SY", "CU", "TJ"}.isdisjoint(gaps) and BALKANS.isdisjoint(gaps)
    assert {"ER", "IQ", "VE"} <= gaps


def test_the_sample_gaps_are_the_countries_sending_would_find_no_report_for(
    web: TestClient, db: Session, admin: User
) -> None:
    sample_report(db, admin, country="KG")
    sample_report(db, admin, country="TR")  # outside the table
    sample_report(db, admin, region="western_balkans")
    signed_in(web, admin)
    gaps = listed(web.get(PATH).text, "no-sample")
    unsent = set()
    for country in reference.list_countries(db):
        req = make_request(db, country=country.code, region=country.region_code)
        if sendouts.best_sample_report(db, req) is None:
            unsent.add(country.code)
    assert gaps == unsent
    assert "KG" not in gaps and BALKANS.isdisjoint(gaps) and "TJ" in gaps
