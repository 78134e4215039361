"""Every API route x every kind of caller, called for real: each cell answers the status the
matrix (tests/authz_matrix.py) expects, no route is missing from it, and the tables in
docs/authorization.md are the ones generated from it. The pages too: every page route has a row,
and every page behind a sign-in answers each kind of caller as its gate says."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.time import now
from app.experts import service as experts
from app.flows import request as flows
from app.intake import records as intake
from app.models import (
    Assignment,
    AssignmentStatus,
    Base,
    IntakeRequest,
    OverrideKind,
    Role,
    User,
)
from app.scheduling import service as scheduling
from tests import authz_matrix as matrix
from tests.authz_table import DOC, render
from tests.factories import (
    add_absence,
    at,
    create_expert,
    create_user,
    day_in,
    expert_with_hours,
    hidden_fields,
    login,
    override,
    sample_report,
    shift,
    signed_in,
    submit,
    tiny_pdf,
)

pytestmark = pytest.mark.heavy

LONDON = "Europe/London"

DOCS = Path(__file__).resolve().parents[2] / DOC


def _walk(routes: list[Any]) -> Iterator[Any]:
    for r in routes:
        contexts = getattr(r, "effective_route_contexts", None)
        if contexts is not None:
            yield from contexts()
        else:
            yield r


def api_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route in the OpenAPI schema (the API), HEAD and
    OPTIONS aside. Routes of included routers are read through FastAPI's route contexts."""

    for r in _walk(list(app.routes)):
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


# The pages -----------------------------------------------------------------------------------


def page_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route outside the OpenAPI schema: the pages of app/web
    and the API's documentation, HEAD and OPTIONS aside."""
    for r in _walk(list(app.routes)):
        if getattr(r, "include_in_schema", True):
            continue
        for method in sorted(getattr(r, "methods", None) or ()):
            if method not in ("HEAD", "OPTIONS"):
                yield method, r.path


def test_every_page_route_is_in_the_page_matrix() -> None:
    from app.main import create_app

    routes = set(page_routes(create_app()))
    missing = sorted(routes - set(matrix.PAGES), key=lambda r: (r[1], r[0]))
    stale = sorted(set(matrix.PAGES) - routes, key=lambda r: (r[1], r[0]))
    assert not missing, (
        "page routes without a row in tests/authz_matrix.py::PAGES (add one per route with its "
        "gate, then run `python -m tests.authz_table`):\n"
        + "\n".join(f"  {m} {p}" for m, p in missing)
    )
    assert not stale, "page rows for routes that no longer exist:\n" + "\n".join(
        f"  {m} {p}" for m, p in stale
    )
    admin_pages = [k for k, r in matrix.PAGES.items() if r.gate == "admin"]
    assert len(admin_pages) > 40, "the admin console's pages are gated as admin pages"


# A column that moves on any signed-in request, whatever the request does.
VOLATILE = frozenset({("user_sessions", "last_seen_at")})


def _fingerprint_sql() -> str:
    """One query: a hash of every table's rows. The audit trail's record of a refused attempt
    (status 403) is left out: recording it is what the middleware should do."""
    parts = []
    for t in Base.metadata.sorted_tables:
        cols = ", ".join(f'"{c.name}"' for c in t.columns if (t.name, c.name) not in VOLATILE)
        row = f"ROW({cols})::text"
        where = " WHERE status_code IS DISTINCT FROM 403" if t.name == "audit_events" else ""
        digest = f"md5(coalesce(string_agg({row}, '|' ORDER BY {row}), ''))"
        # Names from the ORM's own metadata, no input: nothing to inject.
        parts.append(f"SELECT '{t.name}' AS t, {digest} AS h FROM \"{t.name}\"{where}")  # noqa: S608
    return " UNION ALL ".join(parts)


def _fingerprint(db: Session, sql: str) -> dict[str, str]:
    return {t: h for t, h in db.execute(text(sql))}


@pytest.fixture
def page_world(db: Session) -> Iterator[dict[str, Any]]:
    """One app; a browser per kind of caller, signed in once; things the pages' paths name."""
    from app.main import create_app

    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    someone = create_user(db, role=Role.staff)
    expert = expert_with_hours(db, countries=("KG",))
    req = submit(db, country_of_origin="KG")
    assignment = _accept(db, req, expert)
    token = intake.reveal_token(req)
    assert token
    soon = now() + dt.timedelta(days=1)
    values = {
        "@reference": req.reference,
        "@expert_id": str(expert.id),
        "@user_id": str(someone.id),
        "@region_code": req.region_code or "",
        "@document_id": str(sample_report(db, admin, country="KG").id),
        "@shift_id": str(shift(db, someone, 0, "09:00", "17:00").id),
        "@override_id": str(
            override(db, someone, OverrideKind.extra, soon, soon + dt.timedelta(hours=2)).id
        ),
        "@period_id": str(add_absence(db, expert).id),
        "@assignment_id": str(assignment.id),
    }
    assert values["@region_code"], "request A has a region"
    db.flush()
    app = create_app()
    browsers = {
        role: TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
        for role in matrix.PAGE_ROLES
    }
    for role, user in (("admin", admin), ("staff", staff), ("expert", expert)):
        signed_in(browsers[role], user)
    opened = browsers["requester"].get(f"/r/{req.reference}?token={token}")
    assert opened.status_code == 200 and browsers["requester"].cookies, opened.text
    homes = {
        "anonymous": "/staff/sign-in",
        "requester": "/staff/sign-in",
        "expert": "/expert/assignments",
        "staff": "/staff/queue",
        "admin": "/admin/people",
    }
    tokens = {}
    for role, home in homes.items():
        resp = browsers[role].get(home)
        assert resp.status_code == 200, (role, resp.text)
        tokens[role] = hidden_fields(resp.text)["csrf_token"]
    try:
        yield {"browsers": browsers, "csrf": tokens, "values": values}
    finally:
        for b in browsers.values():
            b.close()


def _page_path(template: str, row: matrix.PageRow, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        value = row.params.get(name, matrix.PAGE_PATH_VALUES.get(name))
        if value is None:
            raise AssertionError(f"add a value for path parameter {{{name}}} to PAGE_PATH_VALUES")
        return values[value] if value.startswith("@") else value

    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", one, template)


def _call_page(
    browser: TestClient, db: Session, method: str, url: str, data: Any, sql: str | None
) -> tuple[Any, dict[str, str] | None]:
    """One page call inside a savepoint rolled back afterwards, with the database's fingerprint
    taken before the rollback (``sql`` given). The browser's cookies are put back as they were
    (signing out clears the session's)."""
    jar = [(c.name, c.value, c.domain, c.path) for c in browser.cookies.jar]
    savepoint = db.connection().begin_nested()
    try:
        resp = browser.request(method, url, data=data, follow_redirects=False)
        after = _fingerprint(db, sql) if sql else None
    finally:
        savepoint.rollback()
        db.expire_all()
        browser.cookies.clear()
        for name, value, domain, path in jar:
            browser.cookies.set(name, value, domain=domain, path=path)
    return resp, after


def _went_to_sign_in(resp: Any) -> bool:
    """The gate's redirect to the sign-in page: GETs come back with ``?next=``, form posts do
    not (signing out lands there too, with ``?signed_out=1``: that is the page's answer)."""
    location = urlsplit(resp.headers.get("location", ""))
    return (
        resp.status_code == 303
        and location.path == "/staff/sign-in"
        and not location.netloc
        and (not location.query or location.query.startswith("next="))
    )


def test_every_signed_in_page_answers_each_caller_as_its_gate_says(
    db: Session, page_world: dict[str, Any]
) -> None:
    """Anonymous callers and requesters are sent to sign in (a form post too, before its CSRF
    token is looked at); a role the gate refuses gets 403 and nothing changes (its POSTs carry
    a valid CSRF token: the refusal is the role check); a role it lets in gets past it. Every
    admin page, GET and POST, is called as staff and as an expert."""
    sql = _fingerprint_sql()
    baseline = _fingerprint(db, sql)
    wrong: list[str] = []
    called = 0
    for (method, template), row in sorted(matrix.PAGES.items(), key=lambda kv: kv[0][::-1]):
        if row.gate not in matrix.SESSION_GATES:
            continue
        url = _page_path(template, row, page_world["values"])
        for role, cell in matrix.page_cells(method, template).items():
            # Posts carry the caller's valid CSRF token, except where the gate asks to sign in:
            # that redirect comes first, whatever the form holds.
            token = {} if cell == "sign-in" else {"csrf_token": page_world["csrf"][role]}
            data = token if method == "POST" else None
            browser = page_world["browsers"][role]
            resp, after = _call_page(browser, db, method, url, data, sql if cell == "403" else None)
            called += 1
            status = resp.status_code
            where = f"  {method} {template} as {role} ({row.gate} page):"
            if cell == "sign-in" and not _went_to_sign_in(resp):
                wrong.append(f"{where} expected the sign-in redirect, got {status}")
            elif cell == "403" and status != 403:
                wrong.append(f"{where} expected 403, got {status}")
            elif cell == "403" and after != baseline:
                changed = sorted(t for t in baseline if (after or {}).get(t) != baseline[t])
                wrong.append(f"{where} refused, yet it changed {changed}")
            elif cell == "yes" and (
                status in (401, 403) or status >= 500 or _went_to_sign_in(resp)
            ):
                wrong.append(f"{where} expected to get past the gate, got {status}")
    assert called > 300
    assert not wrong, "\n".join(wrong)


def test_public_pages_open_without_signing_in(page_world: dict[str, Any]) -> None:
    browser = page_world["browsers"]["anonymous"]
    for (method, template), row in matrix.PAGES.items():
        if row.gate != "public" or method != "GET":
            continue
        resp = browser.get(_page_path(template, row, page_world["values"]), follow_redirects=False)
        assert resp.status_code < 500 and resp.status_code not in (401, 403), template
        assert not _went_to_sign_in(resp), template
