"""The requester's journey in-process: refusals shown in a focused summary at the top (withdraw,
apply, booking), time zones grouped by area with the request's likely ones first, the quick
exit's keyboard hint, the confirmation's way to recover a lost link."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.settings import Settings, get_settings
from app.intake import records
from app.intake import service as intake
from app.models import IntakeRequest, RequestStatus
from app.web.public import zone_groups
from tests.factories import expert_with_hours, hidden_fields, post_form, submission

SUMMARY = re.compile(r'<div class="error-summary"[^>]*tabindex="-1"[^>]*id="error-summary"[^>]*>')


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    s = get_settings()
    monkeypatch.setattr(s, "form_min_fill_seconds", 0.0)
    yield s


@pytest.fixture
def web(db: Session, settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        yield c


def _opened(web: TestClient, db: Session, **overrides: str) -> IntakeRequest:
    """A stored request whose link's cookie this client holds."""
    reply = intake.submit(db, submission(**overrides))
    req = records.get_by_reference(db, reply["reference"])
    assert req is not None
    assert web.get(f"/r/{req.reference}?token={reply['access_token']}").status_code == 200
    return req


def _options(html: str, select_id: str) -> list[tuple[str, list[str]]]:
    """[(optgroup label, [values])] of one select, in page order."""
    found = re.search(rf'<select id="{select_id}".*?</select>', html, re.S)
    assert found is not None
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', found.group(0), re.S)
    return [(label, re.findall(r'<option value="([^"]+)"', body)) for label, body in groups]


# Errors where the person is ----------------------------------------------------------------


def test_withdraw_without_the_tick_opens_at_a_focused_summary_and_withdraws_nothing(
    web: TestClient, db: Session
) -> None:
    req = _opened(web, db, language="ru")
    html = web.get(f"/r/{req.reference}").text
    action = re.search(r'action="([^"]*/withdraw[^"]*)"', html)
    assert action is not None and action[1].endswith("#error-summary")  # opens at the summary
    resp = web.post(action[1].replace("&amp;", "&"), data=hidden_fields(html))
    assert resp.status_code == 422
    page = resp.text
    summary = SUMMARY.search(page)
    assert summary is not None and "autofocus" in summary.group(0)
    # On top: before the facts of the request, far above the form; linked to the checkbox.
    assert summary.start() < page.index('id="reference"') < page.index('id="withdraw-form"')
    assert 'href="#f-confirm"' in page and 'aria-describedby="f-confirm-error"' in page
    assert "<title>Ошибка: " in page
    db.refresh(req)
    assert req.status == RequestStatus.new


def test_a_withdrawal_lands_on_the_message_not_on_the_forms_anchor(
    web: TestClient, db: Session
) -> None:
    req = _opened(web, db)
    hidden = hidden_fields(web.get(f"/r/{req.reference}").text)
    done = web.post(
        f"/r/{req.reference}/withdraw", data={**hidden, "confirm": "yes"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=withdrawn#main")


def test_apply_errors_come_in_a_focused_summary_at_the_top(web: TestClient) -> None:
    resp = post_form(web, email="")
    assert resp.status_code == 422
    summary = SUMMARY.search(resp.text)
    assert summary is not None and "autofocus" in summary.group(0)
    assert summary.start() < resp.text.index('id="apply-form"')
    assert 'href="#f-email"' in resp.text


def test_an_unknown_zone_on_the_booking_page_is_in_the_summary(
    web: TestClient, db: Session
) -> None:
    expert_with_hours(db, countries=("KG",), zone="Europe/London", name="Dr Zone")
    req = _opened(web, db)
    resp = web.get(f"/r/{req.reference}/book?tz=Mars/Olympus")
    assert SUMMARY.search(resp.text) is not None
    assert 'href="#f-tz"' in resp.text


# Time zones ----------------------------------------------------------------------------------


def test_zones_come_grouped_by_area_with_the_likely_ones_suggested_first() -> None:
    groups = zone_groups("en", ("KG", "DE"), "Europe/London")
    labels = [label for label, _ in groups]
    assert labels[0] == "Suggested"
    suggested = [z for z, _ in groups[0][1]]
    assert suggested == ["Europe/London", "Asia/Bishkek", "Europe/Berlin", "Europe/Busingen"]
    assert {"Africa", "Americas", "Asia", "Europe", "Pacific Ocean", "UTC"} <= set(labels)
    by_label = dict(groups)
    assert all(z.startswith("Africa/") for z, _ in by_label["Africa"])
    # One option per zone: a suggested zone is not listed again in its area.
    values = [z for _, zones in groups for z, _ in zones]
    assert len(values) == len(set(values))
    assert "Asia/Bishkek" not in [z for z, _ in by_label["Asia"]]


def test_zone_labels_name_the_city_in_the_page_language_and_keep_the_id_as_value() -> None:
    ru = {z: text for _, zones in zone_groups("ru", ("KG",)) for z, text in zones}
    assert ru["Asia/Bishkek"] == "Asia/Bishkek (Бишкек)"
    ar = {z: text for _, zones in zone_groups("ar") for z, text in zones}
    assert ar["Europe/Berlin"] == "\u2066Europe/Berlin\u2069 (برلين)"  # the id kept LTR
    assert {z for z in ar} == {z for _, zones in zone_groups("en") for z, _ in zones}


def test_the_booking_page_suggests_the_zones_of_a_kyrgyz_request_first(
    web: TestClient, db: Session
) -> None:
    expert_with_hours(db, countries=("KG",), zone="Europe/London", name="Dr Zone")
    req = _opened(
        web,
        db,
        timezone="Europe/Moscow",
        country_of_residence="KG",
        country_of_origin="KG",
        language="en",
    )
    groups = _options(web.get(f"/r/{req.reference}/book").text, "f-tz")
    assert groups[0] == ("Suggested", ["Europe/Moscow", "Asia/Bishkek"])
    assert [label for label, _ in groups][1:3] == ["UTC", "Africa"]


def test_the_apply_form_suggests_the_zones_of_the_countries_it_was_sent_with(
    web: TestClient,
) -> None:
    resp = post_form(web, email="", country_of_residence="KG", timezone="Asia/Bishkek")
    groups = _options(resp.text, "f-timezone")
    assert groups[0][0] == "Suggested" and groups[0][1][0] == "Asia/Bishkek"
    assert re.search(r'<option value="Asia/Bishkek" selected>', resp.text)


# Quick exit and the lost link ----------------------------------------------------------------


def test_the_quick_exit_says_escape_three_times_works_too(web: TestClient) -> None:
    html = web.get("/apply?lang=en").text
    assert 'aria-describedby="quick-exit-hint"' in html
    assert re.search(r'id="quick-exit-hint"[^>]*>Or press the Escape key three times', html)


def test_the_confirmation_links_to_the_recovery_page(web: TestClient) -> None:
    resp = post_form(web, language="es", email="conf@example.org")
    assert resp.status_code == 200
    lost = re.search(r'<p id="lost-link">.*?</p>', resp.text, re.S)
    assert lost is not None and 'href="/recover?lang=en"' in lost.group(0)
