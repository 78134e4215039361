"""POST /api/v1/requests: validation in words a requester understands, limits, idempotency,
linking, what is stored."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import get_settings
from app.core.time import now
from app.intake import records
from app.intake.records import CROCKFORD
from app.models import IntakeRequest, RequestHistory
from tests.conftest import Clock
from tests.factories import field_problems, form, submit


def _post(client: TestClient, body: object, **headers: str) -> object:
    return client.post("/api/v1/requests", json=body, headers=headers)


def _stored(db: Session, reference: str) -> IntakeRequest:
    req = db.scalar(select(IntakeRequest).where(IntakeRequest.reference == reference))
    assert req is not None
    return req


def test_a_valid_form_is_201_with_reference_clock_token_and_links(
    client: TestClient, db: Session
) -> None:
    before = now()
    body = submit(client)
    assert len(body["reference"]) == 8 and all(c in CROCKFORD for c in body["reference"])
    assert body["status"] == "new"
    received = dt.datetime.fromisoformat(body["received_at"])
    due = dt.datetime.fromisoformat(body["first_response_due_at"])
    assert received >= before - dt.timedelta(seconds=1)
    assert due - received == dt.timedelta(minutes=60)
    assert body["access_token"].startswith("rl_")
    assert body["links"]["status_page"].endswith(f"/r/{body['reference']}")
    assert body["links"]["booking_page"].endswith(f"/r/{body['reference']}/book")
    req = _stored(db, body["reference"])
    assert req.sla_minutes == 60 and req.region_code == "eastern_europe_post_soviet"
    assert req.privacy_notice_version == get_settings().privacy_notice_version
    assert req.consent_given_at == req.received_at
    # Only a hash of the token is stored for look-up.
    assert req.token_hash != body["access_token"]


def test_no_booking_link_without_a_consultation(client: TestClient) -> None:
    body = submit(client, wants=["expert_cv"])
    assert body["links"]["booking_page"] is None


def test_references_are_not_sequential(client: TestClient) -> None:
    refs = [submit(client)["reference"] for _ in range(5)]
    assert len(set(refs)) == 5
    assert refs != sorted(refs) or refs != sorted(refs, reverse=True)


def test_sla_target_is_configurable_and_stored_with_the_request(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "sla_first_response_minutes", 90)
    body = submit(client)
    received = dt.datetime.fromisoformat(body["received_at"])
    due = dt.datetime.fromisoformat(body["first_response_due_at"])
    assert due - received == dt.timedelta(minutes=90)
    assert _stored(db, body["reference"]).sla_minutes == 90


# Validation: each rule names its field ----------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"requester_type": "law_firm"}, "law_firm_name", "required"),
        ({"law_firm_name": "Firm LLP"}, "law_firm_name", "only for"),
        ({"preferred_channel": "phone"}, "phone", "required when the preferred channel is phone"),
        ({"preferred_channel": "whatsapp"}, "whatsapp", "required when the preferred channel"),
        ({"phone": "12345"}, "phone", "not a valid phone number"),
        ({"timezone": "Mars/Olympus"}, "timezone", "time zone name"),
        ({"timezone": ...}, "timezone", "required"),
        ({"country_of_origin": "QQ"}, "country_of_origin", "not a known country code"),
        ({"country_of_residence": "ZZ"}, "country_of_residence", "not a known country code"),
        ({"deadline": "2001-01-01"}, "deadline", "in the past"),
        ({"consent_data_processing": False}, "consent_data_processing", "must be true"),
        ({"consent_data_processing": ...}, "consent_data_processing", "required"),
        ({"wants": []}, "wants", "at least one"),
        ({"wants": ["a_lawyer"]}, "wants.0", "must be one of"),
        ({"email": "not-an-address"}, "email", "not a valid e-mail address"),
        ({"full_name": ""}, "full_name", "at least 1 character"),
        ({"full_name": "   "}, "full_name", "is required"),
        ({"full_name": "x" * 201}, "full_name", "at most 200 characters"),
        ({"case_summary": "x" * 5001}, "case_summary", "at most 5000 characters"),
        ({"requester_type": "lawyer"}, "requester_type", "must be one of"),
        ({"case_stage": "appeal"}, "case_stage", "must be one of"),
        ({"topics": ["gossip"]}, "topics.0", "must be one of"),
        ({"consent_updates": ["gossip"]}, "consent_updates.0", "must be one of"),
        ({"language": "english!"}, "language", "language tag"),
        ({"favourite_colour": "blue"}, "favourite_colour", "not a field this form knows"),
    ],
)
def test_each_rule_names_its_field(
    client: TestClient, overrides: dict[str, object], field: str, words: str
) -> None:
    resp = _post(client, form(**overrides))
    assert resp.status_code == 422, resp.text  # type: ignore[attr-defined]
    problems = field_problems(resp)
    assert field in problems, problems
    assert words in problems[field], problems[field]
    assert resp.json()["error"]["code"] == "validation_error"  # type: ignore[attr-defined]


def test_several_problems_are_reported_together(client: TestClient) -> None:
    resp = _post(
        client,
        form(requester_type="law_firm", preferred_channel="phone", wants=[], timezone="Nowhere"),
    )
    assert resp.status_code == 422  # type: ignore[attr-defined]
    assert {"law_firm_name", "phone", "wants", "timezone"} <= set(field_problems(resp))


def test_a_law_firm_request_with_the_lawyer_as_contact(client: TestClient, db: Session) -> None:
    body = submit(
        client,
        requester_type="law_firm",
        law_firm_name="Example Chambers",
        contact_name="Jane Counsel",
        full_name="Client Name",
    )
    pii = records.reveal_pii(_stored(db, body["reference"]))
    assert pii is not None
    assert pii["law_firm_name"] == "Example Chambers" and pii["contact_name"] == "Jane Counsel"


def test_a_national_phone_number_uses_the_country_of_residence(
    client: TestClient, db: Session
) -> None:
    body = submit(
        client,
        preferred_channel="phone",
        phone="020 7946 0958",
        country_of_residence="GB",
        whatsapp="+996 555 123 456",
    )
    pii = records.reveal_pii(_stored(db, body["reference"]))
    assert pii is not None
    assert pii["phone"] == "+442079460958"
    assert pii["whatsapp"] == "+996555123456"
    # The same national number read for Germany is not a valid number.
    resp = _post(client, form(phone="020 7946 0958", country_of_residence="DE"))
    assert resp.status_code == 422  # type: ignore[attr-defined]
    assert "phone" in field_problems(resp)


def test_email_is_normalised(client: TestClient, db: Session) -> None:
    body = submit(client, email="  Someone@Example.ORG ")
    pii = records.reveal_pii(_stored(db, body["reference"]))
    assert pii is not None and pii["email"] == "someone@example.org"


def test_kosovo_and_palestine_are_accepted_in_their_region(client: TestClient, db: Session) -> None:
    xk = submit(client, country_of_origin="xk")
    ps = submit(client, country_of_origin="PS")
    assert _stored(db, xk["reference"]).country_of_origin == "XK"
    assert _stored(db, xk["reference"]).region_code == "western_balkans"
    assert _stored(db, ps["reference"]).region_code == "middle_east"


def test_a_valid_country_outside_the_table_goes_to_the_general_pool(
    client: TestClient, db: Session
) -> None:
    body = submit(client, country_of_origin="FR")
    req = _stored(db, body["reference"])
    assert req.country_of_origin == "FR" and req.region_code is None


def test_deadline_today_in_the_requesters_zone_is_accepted(
    client: TestClient, db: Session, clock: Clock
) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14
    import zoneinfo

    # 20:00 UTC: Kiritimati is already on UTC's tomorrow, so its yesterday is UTC's today and
    # only a check in the requester's zone refuses it.
    clock.at(dt.datetime(2027, 1, 13, 20, 0, tzinfo=dt.UTC))
    today_there = now().astimezone(zoneinfo.ZoneInfo(zone)).date()
    assert today_there == now().date() + dt.timedelta(days=1)
    body = submit(client, timezone=zone, deadline=today_there.isoformat())
    assert _stored(db, body["reference"]).deadline == today_there
    yesterday = today_there - dt.timedelta(days=1)
    resp = _post(client, form(timezone=zone, deadline=yesterday.isoformat()))
    assert resp.status_code == 422  # type: ignore[attr-defined]


def test_malformed_json_is_400(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/requests", content=b'{"full_name": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "malformed_json"


def test_a_body_over_64_kb_is_413_in_the_error_shape(client: TestClient) -> None:
    big = form(case_summary="x" * (70 * 1024))
    resp = _post(client, big)
    assert resp.status_code == 413  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["error"]["code"] == "too_large" and body["request_id"]


def test_a_chunked_body_over_the_limit_is_413_too(client: TestClient) -> None:
    import json

    payload = json.dumps(form(case_summary="y" * (70 * 1024))).encode()

    def chunks() -> object:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    resp = client.post(
        "/api/v1/requests", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413


def test_a_body_just_under_the_limit_is_validated_not_refused(client: TestClient) -> None:
    resp = _post(client, form(case_summary="x" * 6000))  # ~6 KB: over 5,000 characters
    assert resp.status_code == 422  # type: ignore[attr-defined]
    assert "case_summary" in field_problems(resp)


def test_other_routes_are_not_limited_by_the_form_limit(client: TestClient) -> None:
    # A large body elsewhere is handled by that route (here: a validation error, not 413).
    resp = client.post(
        "/api/v1/auth/login", json={"email": "a@example.org", "password": "p" * 70_000}
    )
    assert resp.status_code == 422


# Idempotency ---------------------------------------------------------------------------------


def test_same_key_and_body_returns_the_first_reply(client: TestClient, db: Session) -> None:
    body = form()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = _post(client, body, **key)
    second = _post(client, body, **key)
    assert first.status_code == second.status_code == 201  # type: ignore[attr-defined]
    assert first.json() == second.json()  # type: ignore[attr-defined]
    assert first.json()["access_token"] == second.json()["access_token"]  # type: ignore[attr-defined]
    count = db.scalars(
        select(IntakeRequest).where(IntakeRequest.reference == first.json()["reference"])  # type: ignore[attr-defined]
    ).all()
    assert len(count) == 1
    # One request, one acknowledgement queued.
    total = db.scalars(select(IntakeRequest)).all()
    assert len(total) == 1


def test_same_key_with_a_different_body_is_422(client: TestClient) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert _post(client, form(), **key).status_code == 201  # type: ignore[attr-defined]
    resp = _post(client, form(case_summary="something else"), **key)
    assert resp.status_code == 422  # type: ignore[attr-defined]
    assert resp.json()["error"]["code"] == "idempotency_key_reused"  # type: ignore[attr-defined]
    assert "Idempotency-Key" in field_problems(resp)


def test_the_stored_reply_does_not_hold_the_token_in_clear(client: TestClient, db: Session) -> None:
    from app.models import IdempotencyRecord

    reply = _post(client, form(), **{"Idempotency-Key": "abc-123"}).json()  # type: ignore[attr-defined]
    record = db.scalars(select(IdempotencyRecord)).one()
    assert reply["access_token"].encode() not in record.response_enc
    assert record.key_hash != "abc-123"


def test_without_a_key_the_same_form_twice_makes_two_requests(client: TestClient) -> None:
    body = form()
    a = _post(client, body).json()  # type: ignore[attr-defined]
    b = _post(client, body).json()  # type: ignore[attr-defined]
    assert a["reference"] != b["reference"]


# Linking --------------------------------------------------------------------------------------


def test_same_address_and_country_within_a_day_is_linked_not_dropped(
    client: TestClient, db: Session, clock: object
) -> None:
    first = submit(client, email="repeat@example.org", country_of_origin="SY")
    clock.advance(hours=2)  # type: ignore[attr-defined]
    second = submit(client, email="Repeat@example.org", country_of_origin="SY")
    third = submit(client, email="repeat@example.org", country_of_origin="IR")
    a, b, c = (_stored(db, x["reference"]) for x in (first, second, third))
    assert b.linked_request_id == a.id
    assert c.linked_request_id is None  # another country
    linked = db.scalars(
        select(RequestHistory).where(
            RequestHistory.request_id == b.id, RequestHistory.action == "linked"
        )
    ).all()
    assert len(linked) == 1
    clock.advance(hours=25)  # type: ignore[attr-defined]
    later = submit(client, email="repeat@example.org", country_of_origin="SY")
    assert _stored(db, later["reference"]).linked_request_id is None


@pytest.mark.sqlite
def test_submission_and_linking_on_sqlite(client: TestClient, db: Session) -> None:
    first = submit(client, email="lite@example.org", country_of_origin="XK")
    second = submit(client, email="lite@example.org", country_of_origin="XK")
    assert _stored(db, second["reference"]).linked_request_id == _stored(db, first["reference"]).id
    key = {"Idempotency-Key": "sqlite-key"}
    body = form()
    assert _post(client, body, **key).json() == _post(client, body, **key).json()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        None,
        42,
        {},
        {"wants": "consultation"},
        {**form(), "full_name": 5},
        {**form(), "full_name": "nul\x00byte", "case_summary": "\x00"},
        {**form(), "topics": ["freedom_of_speech"] * 500},
        {**form(), "deadline": "not a date"},
        {**form(), "email": "a" * 400 + "@example.org"},
        {**form(), "phone": "+" + "9" * 39},
        {**form(), "timezone": "../../etc/passwd"},
        {**form(), "language": "x" * 100},
        {**form(), "country_of_origin": "\u00e9\u00e9"},
        {**form(), "consent_data_processing": "yes please"},
    ],
)
def test_odd_bodies_never_answer_500(client: TestClient, body: object) -> None:
    resp = client.post("/api/v1/requests", json=body)
    assert 400 <= resp.status_code < 500 or resp.status_code == 201, resp.text
    if resp.status_code != 201:
        assert set(resp.json()) == {"error", "request_id"}


def test_odd_headers_and_references_never_answer_500(client: TestClient) -> None:
    resp = client.post("/api/v1/requests", json=form(), headers={"Idempotency-Key": "k" * 300})
    assert resp.status_code == 422 and "Idempotency-Key" in field_problems(resp)
    for ref in ("a" * 500, "ÄÖÜ", "1 OR 1=1"):
        assert client.get(f"/api/v1/requests/{ref}").status_code == 404
    nul = client.get("/api/v1/requests/%00")  # refused before any look-up, naming it
    assert nul.status_code == 422 and "reference" in field_problems(nul)
    bad = client.post("/api/v1/requests/recover", json={"reference": "x" * 50, "email": "no"})
    assert bad.status_code == 422
