"""The admin console's Sample reports page: every report by its tag with file name, size, upload
date (in the admin's zone) and delete; an upload for a country, a region or general through the
API's service (a file that is not a PDF by its content, or too large, is refused beside the
field); which countries are covered and by which report, which is what sending would attach.
A form without its CSRF token changes nothing; staff and experts get 403; an unknown report
is 404."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.models import AuditEvent, Document, DocumentKind, Role, User
from app.notifications.facts import local_time
from app.reference import service as reference
from app.sendouts import service as sendouts
from app.web import admin_samples as samples_page
from tests.factories import (
    create_user,
    csrf,
    field_error,
    make_request,
    sample_report,
    signed_in,
    tiny_pdf,
)

PATH = samples_page.PATH
EE = "eastern_europe_post_soviet"


@pytest.fixture
def admin(db: Session) -> User:
    return create_user(db, role=Role.admin, display_name="Ada Admin")


def upload(
    web: TestClient,
    tag: str,
    data: bytes | None = None,
    name: str = "report.pdf",
    token: dict[str, str] | None = None,
) -> Any:
    files = {"file": (name, data if data is not None else tiny_pdf(), "application/pdf")}
    form = {**(csrf(web, PATH) if token is None else token), "tag": tag}
    return web.post(f"{PATH}/upload", data=form, files=files, follow_redirects=False)


def stored(db: Session) -> list[Document]:
    db.expire_all()
    return list(
        db.scalars(select(Document).where(Document.kind == DocumentKind.sample_report)).all()
    )


def covered(html: str) -> dict[str, tuple[str, str]]:
    """Country code -> (report id, tier) of the "Covered" list."""
    return {
        code: (report, tier)
        for code, report, tier in re.findall(
            r'<li id="covered-([A-Z]{2})" data-report="([0-9a-f-]{36})" data-tier="(\w+)">', html
        )
    }


def uncovered(html: str) -> set[str]:
    return set(re.findall(r'<li id="uncovered-([A-Z]{2})"', html))


def report_row(html: str, doc: Document) -> str:
    found = re.search(rf'<tr id="report-{doc.id}".*?</tr>', html, re.S)
    assert found is not None, f"no row for {doc.filename}"
    return found.group(0)


def table_codes(db: Session) -> set[str]:
    return {c.code for c in reference.list_countries(db)}


# Who may open it ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(web: TestClient, db: Session) -> None:
    resp = web.get(PATH, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/sign-in?next=/admin/sample-reports"


@pytest.mark.parametrize("role", [Role.staff, Role.expert])
def test_staff_and_experts_get_403_for_the_page_upload_and_delete(
    web: TestClient, db: Session, admin: User, role: Role
) -> None:
    doc = sample_report(db, admin, country="KG")
    signed_in(web, create_user(db, role=role))
    assert web.get(PATH).status_code == 403
    token = {"csrf_token": csrf(web, "/my-account")["csrf_token"]}
    assert upload(web, "general", token=token).status_code == 403
    resp = web.post(f"{PATH}/{doc.id}/delete", data=token, follow_redirects=False)
    assert resp.status_code == 403
    assert [d.id for d in stored(db)] == [doc.id]


def test_the_navigation_marks_the_page_for_admins(
    web: TestClient, db: Session, admin: User
) -> None:
    html = signed_in(web, admin).get(PATH).text
    assert 'href="/admin/sample-reports" id="nav-sample-reports" aria-current="page"' in html


# The list ----------------------------------------------------------------------------------


def test_every_report_is_listed_by_tag_with_name_size_and_the_date_in_the_admins_zone(
    web: TestClient, db: Session, admin: User, clock: Any
) -> None:
    # Late on the 27th in UTC is already the 28th in Auckland.
    clock.at(dt.datetime(2027, 3, 27, 23, 30, tzinfo=dt.UTC))
    admin.timezone = "Pacific/Auckland"
    kg = sample_report(db, admin, country="KG", filename="kyrgyzstan.pdf")
    region = sample_report(db, admin, region=EE, filename="region.pdf", pages=3)
    general = sample_report(db, admin, filename="general.pdf")
    html = signed_in(web, admin).get(PATH).text
    row = report_row(html, kg)
    assert 'Country: <bdi>Kyrgyzstan</bdi> <bdi dir="ltr">KG</bdi>' in row
    assert "<bdi>kyrgyzstan.pdf</bdi>" in row
    assert f'<bdi dir="ltr">{kg.size} B</bdi>' in row
    day = local_time(kg.created_at, "Pacific/Auckland", "en", "date")
    assert day != local_time(kg.created_at, "UTC", "en", "date")
    assert f"<bdi>{day}</bdi>" in row
    assert f'action="{PATH}/{kg.id}/delete"' in row
    assert "Region: <bdi>Eastern Europe &amp; Post-Soviet States</bdi>" in report_row(html, region)
    assert 'class="report-tag">General</th>' in report_row(html, general)


def test_with_no_report_the_page_says_so_and_no_country_is_covered(
    web: TestClient, db: Session, admin: User
) -> None:
    html = signed_in(web, admin).get(PATH).text
    assert 'id="no-reports"' in html
    assert uncovered(html) == table_codes(db)
    assert 'id="covered-none"' in html


# Upload ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "country", "region"),
    [("general", None, None), (f"region:{EE}", None, EE), ("country:kg", "KG", None)],
)
def test_an_upload_for_general_a_region_or_a_country_is_stored_with_its_tag_and_audited(
    web: TestClient,
    db: Session,
    admin: User,
    tag: str,
    country: str | None,
    region: str | None,
) -> None:
    resp = upload(signed_in(web, admin), tag, name="../../Annual report.pdf")
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}?done=uploaded"
    (doc,) = stored(db)
    assert (doc.country_code, doc.region_code, doc.uploaded_by) == (country, region, admin.id)
    assert doc.filename == "Annual report.pdf"
    html = web.get(resp.headers["location"]).text
    assert "The sample report is uploaded." in html
    assert "<bdi>Annual report.pdf</bdi>" in report_row(html, doc)
    db.expire_all()
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == f"POST {PATH}/upload")).all()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"just some text, not a PDF", "report.pdf"),
        (b"%PDF-1.7\n" + b"garbage" * 50, "report.pdf"),
        (tiny_pdf()[:-60], "cut.pdf"),
    ],
)
def test_a_file_that_is_not_a_pdf_by_its_content_is_refused_beside_the_file_field(
    web: TestClient, db: Session, admin: User, data: bytes, name: str
) -> None:
    resp = upload(signed_in(web, admin), f"region:{EE}", data=data, name=name)
    assert resp.status_code == 422
    assert "not a readable PDF" in field_error(resp.text, "file")
    assert 'href="#file"' in resp.text and "Nothing was uploaded" in resp.text
    assert f'<option value="region:{EE}" selected>' in resp.text  # the choice is kept
    assert stored(db) == []


def test_a_file_over_the_size_limit_is_refused_beside_the_file_field(
    web: TestClient, db: Session, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_DOCUMENT_MAX_BYTES", "1024")
    get_settings.cache_clear()
    try:
        big = tiny_pdf(pages=20)
        assert len(big) > 1024
        resp = upload(signed_in(web, admin), "general", data=big)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert resp.status_code == 413
    assert "larger than the limit of 1024 bytes" in field_error(resp.text, "file")
    assert stored(db) == []


@pytest.mark.parametrize(
    "tag", ["", "region:nowhere", "country:QQ", "country:", "planet:mars", "region:a b"]
)
def test_an_unknown_tag_is_refused_beside_the_tag_field(
    web: TestClient, db: Session, admin: User, tag: str
) -> None:
    resp = upload(signed_in(web, admin), tag)
    assert resp.status_code == 422
    assert "Choose a country, a region or general." in field_error(resp.text, "tag")
    assert stored(db) == []


def test_an_upload_without_a_file_is_refused_beside_the_file_field(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = web.post(
        f"{PATH}/upload", data={**csrf(web, PATH), "tag": "general"}, follow_redirects=False
    )
    assert resp.status_code == 422
    assert "Choose a PDF file" in field_error(resp.text, "file")
    assert stored(db) == []


def test_forms_without_their_csrf_token_change_nothing(
    web: TestClient, db: Session, admin: User
) -> None:
    doc = sample_report(db, admin)
    signed_in(web, admin)
    web.get(PATH)  # the browser holds a CSRF cookie; the forms leave the token out
    for token in ({}, {"csrf_token": "forged"}):
        assert upload(web, "country:KG", token=token).status_code == 403
        resp = web.post(f"{PATH}/{doc.id}/delete", data=token, follow_redirects=False)
        assert resp.status_code == 403
    assert [d.id for d in stored(db)] == [doc.id]


# Delete ------------------------------------------------------------------------------------


def test_deleting_a_report_removes_it_and_an_unknown_one_is_404(
    web: TestClient, db: Session, admin: User
) -> None:
    doc_id = sample_report(db, admin, country="KG").id
    signed_in(web, admin)
    token = csrf(web, PATH)
    resp = web.post(f"{PATH}/{doc_id}/delete", data=token, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?done=deleted"
    assert stored(db) == []
    html = web.get(resp.headers["location"]).text
    assert "The sample report is deleted." in html and "uncovered-KG" in html
    for unknown in (doc_id, uuid.uuid4()):
        resp = web.post(f"{PATH}/{unknown}/delete", data=token, follow_redirects=False)
        assert resp.status_code == 404
    resp = web.post(f"{PATH}/not-an-id/delete", data=token, follow_redirects=False)
    assert resp.status_code in (404, 422)


def test_a_cv_is_not_a_sample_report_and_cannot_be_deleted_here(
    web: TestClient, db: Session, admin: User
) -> None:
    from app.documents import service as documents

    cv = documents.store(
        db, data=tiny_pdf(), filename="cv.pdf", kind=DocumentKind.cv, uploaded_by=admin.id
    )
    signed_in(web, admin)
    resp = web.post(f"{PATH}/{cv.id}/delete", data=csrf(web, PATH), follow_redirects=False)
    assert resp.status_code == 404
    db.expire_all()
    assert db.get(Document, cv.id) is not None


# Coverage ----------------------------------------------------------------------------------


def test_coverage_names_the_report_each_country_gets_and_follows_uploads_and_deletes(
    web: TestClient, db: Session, admin: User, clock: Any
) -> None:
    signed_in(web, admin)
    everyone = table_codes(db)
    ee = {c.code for c in reference.list_countries(db) if c.region_code == EE}
    region = sample_report(db, admin, region=EE)
    html = web.get(PATH).text
    assert uncovered(html) == everyone - ee
    assert covered(html)["TJ"] == (str(region.id), "region")
    assert "Its region&#39;s report" in html or "Its region's report" in html

    clock.advance(minutes=1)
    assert upload(web, "country:KG", name="kg.pdf").status_code == 303
    kg = next(d for d in stored(db) if d.country_code == "KG")
    general = sample_report(db, admin)
    html = web.get(PATH).text
    assert uncovered(html) == set() and 'id="uncovered-none"' in html
    found = covered(html)
    assert found["KG"] == (str(kg.id), "country")
    assert found["TJ"] == (str(region.id), "region")
    assert found["SY"] == (str(general.id), "general")

    sendouts.delete_sample_report(db, kg.id)
    assert covered(web.get(PATH).text)["KG"] == (str(region.id), "region")


def test_the_covering_report_is_the_one_sending_would_attach(
    web: TestClient, db: Session, admin: User, clock: Any
) -> None:
    """The page asks the sending rule itself; this checks it against what sending picks for
    a request from each country, so a coverage rule of the page's own that diverged fails."""
    sample_report(db, admin, region=EE)
    clock.advance(minutes=1)
    sample_report(db, admin, region=EE)  # newer: the one sent
    sample_report(db, admin, country="KG")
    sample_report(db, admin, country="SY")
    sample_report(db, admin, region="western_balkans")
    html = signed_in(web, admin).get(PATH).text
    shown = {code: report for code, (report, _tier) in covered(html).items()}
    sent: dict[str, str] = {}
    for country in reference.list_countries(db):
        req = make_request(db, country=country.code, region=country.region_code)
        doc = sendouts.best_sample_report(db, req)
        if doc is not None:
            sent[country.code] = str(doc.id)
    assert shown == sent
    assert uncovered(html) == table_codes(db) - set(sent)
    assert {"KG", "TJ", "SY", "AL"} <= set(sent) and "ER" not in sent
