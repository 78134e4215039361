"""Regions and countries: seeded by a migration, public lists for the form, admin editing, and
the profile is data (editing it changes behaviour without code)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import IntakeRequest, Role
from tests.factories import create_user, login, submit


def _admin(client: TestClient, db: Session) -> dict[str, str]:
    return login(client, create_user(db, role=Role.admin))


def test_public_regions_and_countries_for_the_form(client: TestClient) -> None:
    regions = client.get("/api/v1/regions").json()
    assert {r["code"] for r in regions} == {
        "east_africa",
        "south_central_asia",
        "middle_east",
        "western_balkans",
        "eastern_europe_post_soviet",
        "latin_america_caribbean",
        "east_asia",
    }
    countries = {c["code"]: c for c in client.get("/api/v1/countries").json()}
    assert countries["XK"] == {"code": "XK", "name": "Kosovo", "region": "western_balkans"}
    assert countries["PS"]["region"] == "middle_east"
    assert countries["KG"]["region"] == "eastern_europe_post_soviet"
    assert countries["FR"]["region"] is None  # valid, outside the table: general pool
    assert len(countries) >= 249
    assert all(set(c) == {"code", "name", "region"} for c in countries.values())


def test_the_seeded_kyrgyzstan_profile(client: TestClient, db: Session) -> None:
    headers = _admin(client, db)
    profiles = {c["code"]: c for c in client.get("/api/v1/admin/countries", headers=headers).json()}
    assert len(profiles) == 58
    kg = profiles["KG"]
    assert kg["civic_space_rating"] == "repressed"
    assert kg["rating_date"] == "2023-12"
    assert kg["rating_source"] == "CIVICUS Monitor"
    assert "watchlist" in kg["staff_notes"] and "March 2024" in kg["staff_notes"]
    staff = login(client, create_user(db, role=Role.staff))
    assert client.get("/api/v1/countries/KG/profile", headers=staff).json() == kg
    assert client.get("/api/v1/countries/KG/profile").status_code == 401


def test_admins_edit_a_profile(client: TestClient, db: Session) -> None:
    headers = _admin(client, db)
    resp = client.patch(
        "/api/v1/admin/countries/KG",
        json={"civic_space_rating": "closed", "rating_date": "2026-11-01", "staff_notes": None},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["civic_space_rating"] == "closed" and body["rating_date"] == "2026-11-01"
    assert body["staff_notes"] is None and body["rating_source"] == "CIVICUS Monitor"
    bad = client.patch(
        "/api/v1/admin/countries/KG", json={"civic_space_rating": "awful"}, headers=headers
    )
    assert bad.status_code == 422
    bad_date = client.patch(
        "/api/v1/admin/countries/KG", json={"rating_date": "December 2023"}, headers=headers
    )
    assert bad_date.status_code == 422


def test_moving_a_country_changes_where_new_requests_go(client: TestClient, db: Session) -> None:
    headers = _admin(client, db)
    before = submit(client, country_of_origin="FR")
    created = client.post(
        "/api/v1/admin/countries",
        json={"code": "fr", "name": "France", "region_code": "western_balkans"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    after = submit(client, country_of_origin="FR")
    regions = dict(
        db.execute(
            select(IntakeRequest.reference, IntakeRequest.region_code).where(
                IntakeRequest.reference.in_([before["reference"], after["reference"]])
            )
        ).all()
    )
    assert regions == {before["reference"]: None, after["reference"]: "western_balkans"}
    # Out of the table again: the general pool.
    assert client.delete("/api/v1/admin/countries/FR", headers=headers).status_code == 204
    later = submit(client, country_of_origin="FR")
    req = db.scalar(select(IntakeRequest).where(IntakeRequest.reference == later["reference"]))
    assert req is not None and req.region_code is None


def test_country_codes_are_checked(client: TestClient, db: Session) -> None:
    headers = _admin(client, db)
    bad = client.post(
        "/api/v1/admin/countries", json={"code": "QQ", "name": "Nowhere"}, headers=headers
    )
    assert bad.status_code == 422
    dup = client.post("/api/v1/admin/countries", json={"code": "XK", "name": "K"}, headers=headers)
    assert dup.status_code == 409
    no_region = client.post(
        "/api/v1/admin/countries",
        json={"code": "DE", "name": "Germany", "region_code": "atlantis"},
        headers=headers,
    )
    assert no_region.status_code == 404


def test_regions_are_edited_and_only_empty_ones_deleted(client: TestClient, db: Session) -> None:
    headers = _admin(client, db)
    created = client.post(
        "/api/v1/admin/regions",
        json={"code": "north_africa", "name": "North Africa"},
        headers=headers,
    )
    assert created.status_code == 201
    renamed = client.patch(
        "/api/v1/admin/regions/north_africa", json={"name": "North Africa & Sahel"}, headers=headers
    )
    assert renamed.json()["name"] == "North Africa & Sahel"
    busy = client.delete("/api/v1/admin/regions/east_africa", headers=headers)
    assert busy.status_code == 409 and busy.json()["error"]["details"] == {"countries": 8}
    assert client.delete("/api/v1/admin/regions/north_africa", headers=headers).status_code == 204
    assert client.get("/api/v1/admin/regions/north_africa", headers=headers).status_code in (
        404,
        405,
    )


def test_only_admins_edit_reference_data(client: TestClient, db: Session) -> None:
    for role in (Role.staff, Role.expert):
        headers = login(client, create_user(db, role=role))
        assert client.get("/api/v1/admin/countries", headers=headers).status_code == 403
        resp = client.patch(
            "/api/v1/admin/countries/KG", json={"civic_space_rating": "open"}, headers=headers
        )
        assert resp.status_code == 403
    assert (
        client.post("/api/v1/admin/regions", json={"code": "x_y", "name": "X"}).status_code == 401
    )
