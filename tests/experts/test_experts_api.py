"""Admin CRUD of experts, the directory's public fields, absences, regions' leads, CVs."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Role
from tests.factories import create_expert, create_user, login, tiny_pdf

PRIVATE = {
    "email",
    "phone",
    "zoom_user",
    "personal_meeting_link",
    "max_open_assignments",
    "open_assignments",
    "timezone",
    "available_now",
    "bio",
    "cv_document_id",
}


def _payload(user_id: object, **kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "user_id": str(user_id),
        "public_name": "Dr Nurlan Example",
        "email": "nurlan@example.org",
        "phone": "+44 20 7946 0001",
        "timezone": "Asia/Bishkek",
        "languages": ["ru", "ky", "en"],
        "regions": ["eastern_europe_post_soviet"],
        "countries": ["kg", "KZ"],
        "topics": ["political_repression", "freedom_of_speech"],
        "max_open_assignments": 4,
        "zoom_user": "nurlan@example.org",
        "personal_meeting_link": "https://meet.example.org/nurlan",
    }
    body.update(kw)
    return body


def test_admin_creates_updates_and_deactivates_an_expert(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    account = create_user(db, role=Role.expert)
    c = client  # type: ignore[assignment]
    h = login(c, admin)
    resp = c.post("/api/v1/admin/experts", json=_payload(account.id), headers=h)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["countries"] == ["KG", "KZ"] and body["regions"] == ["eastern_europe_post_soviet"]
    assert body["open_assignments"] == 0 and body["available_now"] is True
    assert body["phone"] == "+442079460001"
    again = c.post("/api/v1/admin/experts", json=_payload(account.id), headers=h)
    assert again.status_code == 409
    resp = c.patch(
        f"/api/v1/admin/experts/{account.id}",
        json={"countries": ["UZ"], "max_open_assignments": 7},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["countries"] == ["UZ"] and resp.json()["max_open_assignments"] == 7
    assert resp.json()["regions"] == ["eastern_europe_post_soviet"]  # untouched
    resp = c.post(f"/api/v1/admin/experts/{account.id}/deactivate", headers=h)
    assert resp.json()["is_active"] is False
    listed = c.get("/api/v1/admin/experts", headers=h).json()
    assert [e["id"] for e in listed] == [str(account.id)]


def test_validation_names_each_bad_field(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    account = create_user(db, role=Role.expert)
    bad = _payload(
        account.id,
        timezone="Mars/Base",
        languages=["not a tag"],
        countries=["QQ"],
        topics=["cooking"],
        personal_meeting_link="http://insecure.example.org",
        phone="12345",
    )
    resp = client.post("/api/v1/admin/experts", json=bad, headers=login(client, admin))  # type: ignore[attr-defined]
    assert resp.status_code == 422
    fields = {f["field"] for f in resp.json()["error"]["fields"]}
    assert {"timezone", "languages", "countries", "personal_meeting_link", "phone"} <= fields
    assert any(f.startswith("topics") for f in fields)
    unknown_region = _payload(account.id, regions=["atlantis"])
    resp = client.post("/api/v1/admin/experts", json=unknown_region, headers=login(client, admin))  # type: ignore[attr-defined]
    assert resp.status_code == 422


def test_only_expert_accounts_get_a_profile_and_only_admins_manage(
    db: Session, client: object
) -> None:
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    c = client  # type: ignore[assignment]
    resp = c.post("/api/v1/admin/experts", json=_payload(staff.id), headers=login(c, admin))
    assert resp.status_code == 409
    account = create_user(db, role=Role.expert)
    resp = c.post("/api/v1/admin/experts", json=_payload(account.id), headers=login(c, staff))
    assert resp.status_code == 403
    assert c.get("/api/v1/admin/experts").status_code == 401


def test_an_expert_reading_experts_sees_public_fields_only(db: Session, client: object) -> None:
    me = create_expert(db, countries=["KG"], name="Dr Me")
    other = create_expert(db, countries=["SY"], languages=["ar"], name="Dr Other")
    staff = create_user(db, role=Role.staff)
    c = client  # type: ignore[assignment]
    listed = c.get("/api/v1/experts", headers=login(c, me)).json()
    assert {e["public_name"] for e in listed} == {"Dr Me", "Dr Other"}
    for e in listed:
        assert PRIVATE.isdisjoint(e), e
        assert other.email not in str(e)
    one = c.get(f"/api/v1/experts/{other.id}", headers=login(c, me)).json()
    assert PRIVATE.isdisjoint(one) and one["countries"] == ["SY"]
    mine = c.get(f"/api/v1/experts/{me.id}", headers=login(c, me)).json()
    assert mine["email"] == me.email
    # Staff see contact and load.
    full = c.get("/api/v1/experts", headers=login(c, staff)).json()
    assert all("email" in e and "open_assignments" in e for e in full)


def test_absences_by_admin_and_by_the_expert(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    expert = create_expert(db, countries=["KG"])
    c = client  # type: ignore[assignment]
    period = {
        "starts_at": "2020-01-01T00:00:00Z",
        "ends_at": "2100-01-01T00:00:00Z",
        "kind": "leave",
        "note": "sabbatical",
    }
    resp = c.post(
        f"/api/v1/admin/experts/{expert.id}/unavailable", json=period, headers=login(c, admin)
    )
    assert resp.status_code == 201, resp.text
    got = c.get(f"/api/v1/admin/experts/{expert.id}", headers=login(c, admin)).json()
    assert got["available_now"] is False
    mine = c.get("/api/v1/expert/unavailable", headers=login(c, expert)).json()
    assert [p["kind"] for p in mine] == ["leave"]
    day_off = {
        "starts_at": "2099-05-01T00:00:00+02:00",
        "ends_at": "2099-05-02T00:00:00+02:00",
        "kind": "day_off",
    }
    resp = c.post("/api/v1/expert/unavailable", json=day_off, headers=login(c, expert))
    assert resp.status_code == 201
    assert resp.json()["starts_at"].startswith("2099-04-30T22:00:00")
    backwards = dict(day_off, ends_at="2099-04-01T00:00:00Z")
    assert (
        c.post("/api/v1/expert/unavailable", json=backwards, headers=login(c, expert)).status_code
        == 422
    )
    naive = dict(day_off, starts_at="2099-05-01T00:00:00")
    assert (
        c.post("/api/v1/expert/unavailable", json=naive, headers=login(c, expert)).status_code
        == 422
    )
    pid = mine[0]["id"]
    assert (
        c.delete(f"/api/v1/expert/unavailable/{pid}", headers=login(c, expert)).status_code == 204
    )
    got = c.get(f"/api/v1/admin/experts/{expert.id}", headers=login(c, admin)).json()
    assert got["available_now"] is True


def test_region_lead(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    expert = create_expert(db, regions=["east_asia"], name="Dr Lead")
    c = client  # type: ignore[assignment]
    h = login(c, admin)
    resp = c.put(
        "/api/v1/admin/experts/region-leads/east_asia",
        json={"expert_id": str(expert.id)},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["lead_public_name"] == "Dr Lead"
    leads = {
        r["region_code"]: r for r in c.get("/api/v1/admin/experts/region-leads", headers=h).json()
    }
    assert leads["east_asia"]["lead_expert_id"] == str(expert.id)
    assert leads["middle_east"]["lead_expert_id"] is None
    resp = c.put(
        "/api/v1/admin/experts/region-leads/east_asia", json={"expert_id": None}, headers=h
    )
    assert resp.json()["lead_expert_id"] is None
    resp = c.put("/api/v1/admin/experts/region-leads/atlantis", json={"expert_id": None}, headers=h)
    assert resp.status_code == 404


def test_cv_upload_and_who_may_read_it(db: Session, client: object) -> None:
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    owner = create_expert(db, countries=["KG"])
    other = create_expert(db, countries=["KG"])
    c = client  # type: ignore[assignment]
    pdf = tiny_pdf()
    resp = c.put(
        f"/api/v1/admin/experts/{owner.id}/cv",
        files={"file": ("my cv.pdf", pdf, "application/pdf")},
        headers=login(c, admin),
    )
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["kind"] == "cv" and doc["size"] == len(pdf) and doc["filename"] == "my cv.pdf"
    profile = c.get("/api/v1/expert/me", headers=login(c, owner)).json()
    assert profile["cv_document_id"] == doc["id"] and profile["has_cv"] is True
    for user in (admin, staff, owner):
        got = c.get(f"/api/v1/documents/{doc['id']}", headers=login(c, user))
        assert got.status_code == 200 and got.content == pdf
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"].startswith("attachment")
    assert c.get(f"/api/v1/documents/{doc['id']}", headers=login(c, other)).status_code == 404
    assert c.get(f"/api/v1/documents/{doc['id']}").status_code == 401
    public = c.get(f"/api/v1/experts/{owner.id}", headers=login(c, other)).json()
    assert public["has_cv"] is True and "cv_document_id" not in public
