"""Every API route x every kind of caller, called for real: each cell answers the status the
matrix (tests/authz_matrix.py) expects, no route is missing from it, and the table in
docs/authorization.md is the one generated from it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.time import now
from app.experts import service as experts
from app.flows import request as flows
from app.intake import records as intake
from app.models import Assignment, AssignmentStatus, IntakeRequest, Role, User
from app.scheduling import service as scheduling
from tests import authz_matrix as matrix
from tests.authz_table import DOC, render
from tests.factories import (
    at,
    create_expert,
    create_user,
    day_in,
    expert_with_hours,
    login,
    submit,
    tiny_pdf,
)

LONDON = "Europe/London"

DOCS = Path(__file__).resolve().parents[2] / DOC


def api_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route in the OpenAPI schema (the API), HEAD and
    OPTIONS aside. Routes of included routers are read through FastAPI's route contexts."""

    def walk(routes: list[Any]) -> Iterator[Any]:
        for r in routes:
            contexts = getattr(r, "effective_route_contexts", None)
            if contexts is not None:
                yield from contexts()
            else:
                yield r

    for r in walk(list(app.routes)):
        if not getattr(r, "include_in_schema", False):
            continue  # web pages and /docs: see tests/authz_matrix.py
        for method in sorted(getattr(r, "methods", None) or ()):
            if method not in ("HEAD", "OPTIONS"):
                yield method, r.path


def _accept(db: Session, req: IntakeRequest, expert: User) -> Assignment:
    a = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.offered
        )
    )
    assert a is not None and a.expert_id == expert.id, "routing did not offer it as expected"
    return flows.answer_offer(db, a.id, expert, accept=True)


@pytest.fixture
def world(db: Session, client: object) -> dict[str, Any]:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    admin = create_user(db, role=Role.admin)
    expert = expert_with_hours(db, countries=("KG",))
    other = create_expert(db, countries=["AM"], languages=["ru"])
    cv = experts.set_cv(db, expert.id, data=tiny_pdf(), filename="cv.pdf", by=admin)
    req_a = submit(db, country_of_origin="KG")
    req_b = submit(db, country_of_origin="AM")
    assignment = _accept(db, req_a, expert)
    _accept(db, req_b, other)
    booked = scheduling.book(
        db,
        req_a,
        start=at(day_in(LONDON, 2), "09:00", LONDON),
        zone=LONDON,
        caller=scheduling.Caller("requester"),
    )
    token_a, token_b = intake.reveal_token(req_a), intake.reveal_token(req_b)
    assert token_a and token_b
    db.flush()
    headers = {
        "anonymous": {},
        "requester": {"Authorization": f"Bearer {token_a}"},
        "other_requester": {"Authorization": f"Bearer {token_b}"},
        "expert_assigned": login(c, expert),
        "expert_other": login(c, other),
        "staff": login(c, staff),
        "admin": login(c, admin),
    }
    values = {
        "@reference": req_a.reference,
        "@expert_id": str(expert.id),
        "@assignment_id": str(assignment.id),
        "@staff_id": str(staff.id),
        "@region_code": req_a.region_code or "",
        "@reference_b": req_b.reference,
        "@consultation_id": str(booked.id),
        "@document_id": str(cv.id),
    }
    return {"headers": headers, "values": values}


def _path(template: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in matrix.PATH_VALUES:
            raise AssertionError(f"add a value for path parameter {{{name}}} to PATH_VALUES")
        value = matrix.PATH_VALUES[name]
        return values[value] if value.startswith("@") else value

    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", one, template)


def _body(value: Any, values: dict[str, str]) -> Any:
    """The row's body with ``@name`` placeholders filled in (``@now``: the current time)."""
    if isinstance(value, dict):
        return {k: _body(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_body(v, values) for v in value]
    if value == "@now":
        return now().isoformat()
    if isinstance(value, str) and value.startswith("@"):
        return values[value]
    return value


def _call(c: Any, db: Session, method: str, url: str, headers: dict[str, str], body: Any) -> int:
    """One call inside a savepoint of the test's connection, rolled back afterwards."""
    connection = db.connection()
    savepoint = connection.begin_nested()
    try:
        kwargs: dict[str, Any] = {"headers": headers}
        if method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = {} if body is None else body
        status: int = c.request(method, url, **kwargs).status_code
    finally:
        savepoint.rollback()
        db.expire_all()
    return status


def test_every_api_route_is_in_the_matrix(client: object) -> None:
    from app.main import create_app

    routes = set(api_routes(create_app()))
    missing = sorted(routes - set(matrix.MATRIX))
    stale = sorted(set(matrix.MATRIX) - routes)
    assert not missing, (
        "routes without a row in tests/authz_matrix.py::MATRIX (add one per route, then run "
        "`python -m tests.authz_table`):\n" + "\n".join(f"  {m} {p}" for m, p in missing)
    )
    assert not stale, "rows for routes that no longer exist:\n" + "\n".join(
        f"  {m} {p}" for m, p in stale
    )


def test_every_cell_answers_its_expected_status(
    db: Session, client: object, world: dict[str, Any], mail_dir: Path
) -> None:
    from app.main import create_app

    c: Any = client
    record = os.environ.get("AUTHZ_RECORD") == "1"
    routes = sorted(set(api_routes(create_app())) | set(matrix.MATRIX), key=lambda r: (r[1], r[0]))
    wrong: list[str] = []
    seen: dict[str, list[int]] = {}
    for method, template in routes:
        r = matrix.MATRIX.get((method, template))
        values = world["values"]
        url = _path(template, values)
        got = [
            _call(c, db, method, url, world["headers"][role], _body(r.body if r else None, values))
            for role in matrix.ROLES
        ]
        seen[f"{method} {template}"] = got
        if r is not None and tuple(got) != r.statuses:
            wrong.append(f"  {method} {template}: expected {list(r.statuses)}, got {got}")
    if record:
        Path(os.environ.get("AUTHZ_RECORD_FILE", "authz_observed.json")).write_text(
            json.dumps(seen, indent=1)
        )
    assert not wrong, f"statuses per role {list(matrix.ROLES)}:\n" + "\n".join(wrong)
    assert all(500 not in v for v in seen.values())


def test_the_docs_table_is_generated_from_the_matrix() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert render(text) == text, "docs are stale: run `python -m tests.authz_table`"
