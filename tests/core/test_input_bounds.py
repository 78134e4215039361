"""Odd input never reaches the database or date arithmetic: NUL and control characters in path
and query strings, ids beyond 64 bits, dates at the ends of the calendar. Each is a 4xx naming
the parameter, in the one error shape; a walk over every route proves each parameter goes
through the bounded types of ``app/core/validation.py``, so a new route cannot forget."""

from __future__ import annotations

import datetime as dt
import inspect
import types
import typing
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Role
from tests.factories import (
    at,
    bearer,
    create_expert,
    create_user,
    day_in,
    expert_with_hours,
    hidden_fields,
    iso,
    login,
    submission,
    submit,
)

BEYOND_64_BITS = 2**64
LONDON = "Europe/London"


def _problems(resp: Any) -> dict[str, str]:
    body = resp.json()
    assert set(body) == {"error", "request_id"}, body
    return {f["field"]: f["message"] for f in body["error"]["fields"]}


def _assert_names(resp: Any, field: str, status: int = 422) -> None:
    assert resp.status_code == status, resp.text
    assert field in _problems(resp), resp.text


def _as(client: TestClient, db: Session, role: Role) -> dict[str, str]:
    return login(client, create_user(db, role=role))


# NUL in strings ------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["actor", "action", "reference"])
def test_nul_in_an_audit_search_parameter_is_422_naming_it(
    client: TestClient, db: Session, param: str
) -> None:
    headers = _as(client, db, Role.admin)
    for path in ("/api/v1/admin/audit", "/api/v1/admin/audit.csv"):
        resp = client.get(path, params={param: "a\x00b"}, headers=headers)
        _assert_names(resp, param)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/countries/K%00/profile", None),
        ("PATCH", "/api/v1/admin/countries/K%00", {"notes": "x"}),
        ("DELETE", "/api/v1/admin/countries/K%00", None),
    ],
)
def test_nul_in_a_country_code_is_422_naming_it(
    client: TestClient, db: Session, method: str, path: str, body: Any
) -> None:
    resp = client.request(method, path, json=body, headers=_as(client, db, Role.admin))
    _assert_names(resp, "code")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/api/v1/admin/regions/east%00africa", {"name": "x"}, "code"),
        ("DELETE", "/api/v1/admin/regions/east%00africa", None, "code"),
        ("PUT", "/api/v1/admin/experts/region-leads/east%00africa", {}, "region_code"),
    ],
)
def test_nul_in_a_region_code_is_422_naming_it(
    client: TestClient, db: Session, method: str, path: str, body: Any, field: str
) -> None:
    resp = client.request(method, path, json=body, headers=_as(client, db, Role.admin))
    _assert_names(resp, field)


def test_nul_in_a_query_read_by_hand_is_422_naming_it(client: TestClient, db: Session) -> None:
    """The guard before every endpoint: also parameters a page reads from the raw query."""
    staff = create_user(db, role=Role.staff)
    client.cookies.set("intake_session", login(client, staff)["Authorization"].split()[1])
    resp = client.get("/staff/reports", params={"from": "2026-01-01\x00"})
    _assert_names(resp, "from")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/admin/regions", {"code": "zz_nul", "name": "a\x00b"}, "name"),
        ("PATCH", "/api/v1/admin/countries/KG", {"notes": "x\x00"}, "notes"),
        ("POST", "/api/v1/admin/roster/shifts", {"note": "\x00", "x": [1, {"y": "\x00"}]}, "note"),
    ],
)
def test_nul_in_a_json_body_is_422_naming_the_field(
    client: TestClient, db: Session, method: str, path: str, body: Any, field: str
) -> None:
    resp = client.request(method, path, json=body, headers=_as(client, db, Role.admin))
    _assert_names(resp, field)


def test_nul_deep_in_a_json_body_is_named_by_its_path(client: TestClient, db: Session) -> None:
    body = {"name": "ok", "code": "zz_deep", "extra": {"list": ["fine", "bad\x00"]}}
    resp = client.post("/api/v1/admin/regions", json=body, headers=_as(client, db, Role.admin))
    _assert_names(resp, "extra.list.1")


def test_an_escaped_backslash_before_u0000_is_plain_text(client: TestClient, db: Session) -> None:
    """The fast check looks for the bytes ``\\u0000``; the text ``\\u0000`` (a backslash, then
    "u0000") contains them too and is stored as typed."""
    resp = client.post(
        "/api/v1/admin/regions",
        json={"code": "zz_text", "name": "C:\\u0000"},
        headers=_as(client, db, Role.admin),
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "C:\\u0000"


# Ids beyond 64 bits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "field"),
    [
        (Role.expert, "POST", "/api/v1/expert/assignments/{id}/accept", None, "assignment_id"),
        (Role.expert, "POST", "/api/v1/expert/assignments/{id}/decline", {}, "assignment_id"),
        (Role.expert, "POST", "/api/v1/expert/notifications/{id}/read", None, "notification_id"),
        (Role.admin, "PATCH", "/api/v1/admin/roster/shifts/{id}", {}, "shift_id"),
        (Role.admin, "DELETE", "/api/v1/admin/roster/shifts/{id}", None, "shift_id"),
        (Role.staff, "POST", "/api/v1/outbox/{id}/retry", None, "message_id"),
    ],
)
@pytest.mark.parametrize("value", [BEYOND_64_BITS, 2**63, 0])
def test_an_id_outside_a_database_id_is_422_naming_it(
    client: TestClient,
    db: Session,
    role: Role,
    method: str,
    path: str,
    body: Any,
    field: str,
    value: int,
) -> None:
    headers = login(client, create_expert(db)) if role == Role.expert else _as(client, db, role)
    resp = client.request(method, path.format(id=value), json=body, headers=headers)
    _assert_names(resp, field)


def test_the_largest_database_id_is_accepted_and_simply_not_found(
    client: TestClient, db: Session
) -> None:
    resp = client.post(f"/api/v1/outbox/{2**63 - 1}/retry", headers=_as(client, db, Role.staff))
    assert resp.status_code == 404, resp.text


# Dates at the ends of the calendar -----------------------------------------------------------

EDGES = ["9999-12-31T23:00:00Z", "9999-12-31T00:00:00+00:00", "0001-01-01T00:00:00Z"]


def _requester_with_expert(client: TestClient, db: Session) -> dict[str, Any]:
    expert_with_hours(db)
    return submit(client, full_name="Zqxbounds Applicant", timezone=LONDON)


@pytest.mark.parametrize("start", EDGES)
def test_booking_at_the_ends_of_the_calendar_is_422_naming_start(
    client: TestClient, db: Session, start: str
) -> None:
    sub = _requester_with_expert(client, db)
    resp = client.post(
        f"/api/v1/requests/{sub['reference']}/consultation",
        json={"start": start},
        headers=bearer(sub["access_token"]),
    )
    _assert_names(resp, "start")


@pytest.mark.parametrize("start", EDGES)
def test_rescheduling_to_the_ends_of_the_calendar_is_422_naming_start(
    client: TestClient, db: Session, start: str
) -> None:
    sub = _requester_with_expert(client, db)
    url = f"/api/v1/requests/{sub['reference']}/consultation"
    headers = bearer(sub["access_token"])
    booked = client.post(
        url, json={"start": iso(at(day_in(LONDON, 2), "09:00", LONDON))}, headers=headers
    )
    assert booked.status_code == 201, booked.text
    _assert_names(client.patch(url, json={"start": start}, headers=headers), "start")


@pytest.mark.parametrize("start", EDGES)
def test_booking_on_the_page_at_the_ends_of_the_calendar_is_422_with_the_free_times(
    db: Session, start: str
) -> None:
    from app.intake import service as intake
    from app.main import create_app

    expert_with_hours(db)
    reply = intake.submit(db, submission(timezone=LONDON, language="en"))
    ref = reply["reference"]
    with TestClient(
        create_app(), base_url="https://testserver", raise_server_exceptions=False
    ) as web:
        assert web.get(f"/r/{ref}?token={reply['access_token']}").status_code == 200
        hidden = hidden_fields(web.get(f"/r/{ref}/book").text)
        resp = web.post(f"/r/{ref}/book", data={**hidden, "start": start, "tz": LONDON})
    assert resp.status_code == 422, resp.text
    assert "Choose one of the free times" in resp.text


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_dates_at_the_ends_of_the_calendar_in_bodies_are_422_naming_the_field(
    client: TestClient, db: Session, when: str
) -> None:
    staff = create_user(db, role=Role.staff)
    headers = _as(client, db, Role.admin)
    sub = submit(client, full_name="Zqxbounds Applicant", timezone=LONDON)
    contact = client.post(
        f"/api/v1/cases/{sub['reference']}/contacts",
        json={"channel": "phone", "contacted_at": when},
        headers=headers,
    )
    _assert_names(contact, "contacted_at")
    override = client.post(
        "/api/v1/admin/roster/overrides",
        json={"user_id": str(staff.id), "kind": "extra", "starts_at": when, "ends_at": when},
        headers=headers,
    )
    _assert_names(override, "starts_at")
    absence = client.post(
        f"/api/v1/admin/experts/{create_expert(db).id}/unavailable",
        json={"starts_at": when, "ends_at": when, "kind": "leave"},
        headers=headers,
    )
    _assert_names(absence, "starts_at")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "9999-12-31"}, "to"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "from"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ],
)
def test_the_sla_report_at_the_ends_of_the_calendar_is_422_naming_the_date(
    client: TestClient, db: Session, params: dict[str, str], field: str
) -> None:
    headers = _as(client, db, Role.staff)
    for path in ("/api/v1/reports/sla", "/api/v1/reports/sla.csv"):
        _assert_names(client.get(path, params=params, headers=headers), field)


def test_the_sla_report_page_to_9999_12_31_is_422_naming_to(
    client: TestClient, db: Session
) -> None:
    staff = create_user(db, role=Role.staff)
    client.cookies.set("intake_session", login(client, staff)["Authorization"].split()[1])
    resp = client.get("/staff/reports", params={"to": "9999-12-31"})
    assert resp.status_code == 422, resp.text
    assert "text/html" in resp.headers["content-type"]
    assert "to: must be a date between" in resp.text
    # The page still shows the default range, and a sane date is fine.
    assert client.get("/staff/reports", params={"to": "2199-12-31"}).status_code == 200


# The mechanism: every route's parameters are bounded -----------------------------------------


def _params(app: Any) -> list[tuple[str, str, str, Any]]:
    from fastapi.routing import iter_route_contexts

    found: list[tuple[str, str, str, Any]] = []

    def walk(route: str, dep: Any) -> None:
        for kind, params in (("path", dep.path_params), ("query", dep.query_params)):
            for p in params:
                found.append((route, kind, p.name, p.field_info))
        for sub in dep.dependencies:
            walk(route, sub)

    for r in iter_route_contexts(app.routes):
        dependant = getattr(r, "dependant", None)
        if dependant is not None:
            walk(f"{sorted(r.methods)} {r.path}", dependant)
    return found


def _leaves(annotation: Any) -> list[tuple[Any, list[Any]]]:
    """The types a parameter can take, each with the metadata attached to it."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        return [(t, m + meta) for t, m in _leaves(base)]
    if origin in (typing.Union, types.UnionType) or origin is list:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [(annotation, [])]


def test_every_path_and_query_parameter_goes_through_a_bounded_type() -> None:
    from app.core import validation
    from app.main import create_app

    params = _params(create_app())
    assert len(params) > 100
    unbounded = []
    for route, kind, name, info in params:
        meta = list(info.metadata)
        for leaf, leaf_meta in _leaves(info.annotation):
            all_meta = meta + leaf_meta
            if leaf is type(None) or (inspect.isclass(leaf) and issubclass(leaf, bool)):
                continue
            if leaf is int:
                lo = [m.ge for m in all_meta if hasattr(m, "ge")]
                hi = [m.le for m in all_meta if hasattr(m, "le")]
                ok = lo and hi and min(lo) >= -(2**63) and max(hi) <= validation.DB_ID_MAX
            elif leaf is str:
                ok = validation.SAFE_TEXT in all_meta
            elif leaf in (dt.date, dt.datetime) or getattr(leaf, "__name__", "") in (
                "AwareDatetime",
            ):
                ok = validation.SAFE_RANGE in all_meta
            else:
                ok = True  # enums, UUIDs, booleans: parsed strictly by pydantic
            if not ok:
                unbounded.append(f"{route} {kind} {name}: {leaf}")
    assert not unbounded, "use DbId / SafeStr / SafeDate / SafeDateTime:\n" + "\n".join(unbounded)


def _body_fields(app: Any) -> list[tuple[str, str, Any, list[Any]]]:
    """(route, dotted field, type, metadata) of every field of every request body model."""
    from fastapi.routing import iter_route_contexts
    from pydantic import BaseModel

    found: list[tuple[str, str, Any, list[Any]]] = []

    def fields(route: str, where: str, annotation: Any, meta: list[Any], seen: set[Any]) -> None:
        for leaf, leaf_meta in _leaves(annotation):
            if inspect.isclass(leaf) and issubclass(leaf, BaseModel):
                if leaf in seen:
                    continue
                for name, info in leaf.model_fields.items():
                    here = f"{where}.{name}"
                    fields(route, here, info.annotation, list(info.metadata), {*seen, leaf})
            else:
                found.append((route, where, leaf, meta + leaf_meta))

    def walk(route: str, dep: Any) -> None:
        for p in dep.body_params:
            fields(route, p.name, p.field_info.annotation, list(p.field_info.metadata), set())
        for sub in dep.dependencies:
            walk(route, sub)

    for r in iter_route_contexts(app.routes):
        dependant = getattr(r, "dependant", None)
        if dependant is not None:
            walk(f"{sorted(r.methods)} {r.path}", dependant)
    return found


def test_every_date_and_number_in_a_request_body_is_bounded() -> None:
    """Bodies too: a date or a number the database or date arithmetic cannot take is refused
    by its type. (Strings in bodies are checked for NUL by the guard before every endpoint.)"""
    from app.core import validation
    from app.main import create_app

    found = _body_fields(create_app())
    assert len(found) > 50
    unbounded = []
    for route, where, leaf, meta in found:
        if leaf is int:
            lo = [m.ge for m in meta if hasattr(m, "ge")] + [m.gt for m in meta if hasattr(m, "gt")]
            hi = [m.le for m in meta if hasattr(m, "le")] + [m.lt for m in meta if hasattr(m, "lt")]
            ok = lo and hi and min(lo) >= -(2**63) and max(hi) <= validation.DB_ID_MAX
        elif leaf in (dt.date, dt.datetime) or getattr(leaf, "__name__", "") == "AwareDatetime":
            ok = validation.SAFE_RANGE in meta
        else:
            ok = True
        if not ok:
            unbounded.append(f"{route} {where}: {leaf}")
    assert not unbounded, "use DbId / SafeDate / SafeDateTime or bounds:\n" + "\n".join(
        sorted(set(unbounded))
    )
