"""The audit trail: what is recorded, who may search it, the append-only table, and
``asylum-intake audit verify`` finding an altered, removed or inserted row (a real CLI process
on a database whose commits are real)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from sqlalchemy import Column, select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.database import commit
from app.models import AuditEvent, Role
from tests.factories import (
    MARKER,
    app_client,
    bearer,
    create_expert,
    create_user,
    login,
    real_database,
    submit,
)
from tests.processes import run_cli


def _rows(db: Session, **where: Any) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.seq)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, name) == value)
    return list(db.scalars(stmt).all())


def test_every_access_to_a_case_is_recorded_with_who_where_and_the_outcome(
    db: Session, client: object
) -> None:
    c: Any = client
    staff = create_user(db, role=Role.staff)
    stranger = create_expert(db, countries=["AM"], languages=["ru"])
    req = submit(db, country_of_origin="KG")
    commit(db)
    url = f"/api/v1/cases/{req.reference}"
    ua = {"User-Agent": "audit-test/1.0"}
    assert c.get(url, headers={**login(c, staff), **ua}).status_code == 200
    assert c.get(url, headers={**login(c, stranger), **ua}).status_code == 404
    assert c.get(url, headers=ua).status_code == 401
    assert c.get("/api/v1/cases/not-a-ref!", headers=login(c, staff)).status_code == 404

    rows = _rows(db, action="GET /api/v1/cases/{reference}", target=req.reference)
    got = [(r.actor, r.actor_role, r.outcome, r.status_code) for r in rows]
    assert got == [
        (str(staff.id), "staff", "ok", 200),
        (str(stranger.id), "expert", "not_found", 404),
        ("anonymous", None, "denied", 401),
    ]
    assert all(r.user_agent == "audit-test/1.0" and r.address for r in rows)
    assert _rows(db, action="GET /api/v1/cases/{reference}", target="(invalid)")
    # Never a name, a summary or a token in the trail.
    dumped = json.dumps([audit.csv_row(r) for r in _rows(db)])
    assert MARKER not in dumped and "ut_" not in dumped and "rl_" not in dumped


def test_the_requester_reading_and_withdrawing_is_recorded(db: Session, client: object) -> None:
    c: Any = client
    reply = submit(c)
    ref = reply["reference"]
    assert (
        c.get(f"/api/v1/requests/{ref}", headers=bearer(reply["access_token"])).status_code == 200
    )
    assert c.get(f"/api/v1/requests/{ref}", headers=bearer("rl_nope")).status_code == 404
    withdraw = c.post(f"/api/v1/requests/{ref}/withdraw", headers=bearer(reply["access_token"]))
    assert withdraw.status_code == 200
    got = [(r.action, r.actor, r.outcome) for r in _rows(db, target=ref)]
    assert got == [
        ("GET /api/v1/requests/{reference}", "requester", "ok"),
        ("GET /api/v1/requests/{reference}", "anonymous", "not_found"),
        ("POST /api/v1/requests/{reference}/withdraw", "requester", "ok"),
    ]


def test_sign_in_role_change_and_deactivation_are_recorded(db: Session, client: object) -> None:
    c: Any = client
    admin = create_user(db, role=Role.admin)
    user = create_user(db, role=Role.staff)
    as_admin = login(c, admin)
    bad = c.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong password!"})
    assert bad.status_code == 401
    unknown = c.post(
        "/api/v1/auth/login", json={"email": "nobody@example.org", "password": "wrong password!"}
    )
    assert unknown.status_code == 401
    login(c, user)
    assert (
        c.patch(
            f"/api/v1/admin/users/{user.id}", json={"role": "expert"}, headers=as_admin
        ).status_code
        == 200
    )
    assert c.post(f"/api/v1/admin/users/{user.id}/deactivate", headers=as_admin).status_code == 200

    logins = [(r.actor, r.outcome) for r in _rows(db, action="auth.login")]
    assert logins == [
        (str(admin.id), "ok"),
        (str(user.id), "denied"),
        ("anonymous", "denied"),
        (str(user.id), "ok"),
    ]
    [role] = _rows(db, action="users.role_changed")
    assert (role.actor, role.target, role.details) == (
        str(admin.id),
        str(user.id),
        {"from": "staff", "to": "expert"},
    )
    [off] = _rows(db, action="users.deactivated")
    assert (off.actor, off.target) == (str(admin.id), str(user.id))
    # The admin endpoints themselves (settings of the service) are recorded generically.
    changes = [r.action for r in _rows(db, actor=str(admin.id)) if r.action.startswith("P")]
    assert changes == [
        "PATCH /api/v1/admin/users/{user_id}",
        "POST /api/v1/admin/users/{user_id}/deactivate",
    ]


def test_admins_search_by_actor_case_action_and_time_in_keyset_pages_and_as_csv(
    db: Session, client: object
) -> None:
    c: Any = client
    admin = create_user(db, role=Role.admin)
    staff = create_user(db, role=Role.staff)
    req = submit(db)
    commit(db)
    as_admin, as_staff = login(c, admin), login(c, staff)
    for _ in range(5):
        assert c.get(f"/api/v1/cases/{req.reference}", headers=as_staff).status_code == 200

    assert c.get("/api/v1/admin/audit", headers=as_staff).status_code == 403
    assert c.get("/api/v1/admin/audit").status_code == 401
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"reference": req.reference, "actor": str(staff.id), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/api/v1/admin/audit", params=params, headers=as_admin)
        assert page.status_code == 200, page.text
        seen += [item["seq"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    by_email = c.get(
        "/api/v1/admin/audit",
        params={"actor": staff.email.upper(), "reference": req.reference.lower()},
        headers=as_admin,
    )
    assert [item["seq"] for item in by_email.json()["items"]] == seen
    nobody = c.get("/api/v1/admin/audit", params={"actor": "x@example.org"}, headers=as_admin)
    assert nobody.json()["items"] == []

    first = _rows(db, target=req.reference)[0]
    window = c.get(
        "/api/v1/admin/audit",
        params={"action": "/cases/", "since": first.at.isoformat(), "until": first.at.isoformat()},
        headers=as_admin,
    )
    assert window.json()["items"] == []  # until is exclusive
    none = c.get("/api/v1/admin/audit", params={"action": "no-such-action"}, headers=as_admin)
    assert none.json() == {"items": [], "next_cursor": None}
    assert c.get("/api/v1/admin/audit", params={"limit": 0}, headers=as_admin).status_code == 422
    naive = c.get("/api/v1/admin/audit", params={"since": "2026-11-23T10:00:00"}, headers=as_admin)
    assert naive.status_code == 422 and naive.json()["error"]["fields"][0]["field"].endswith(
        "since"
    )

    exported = c.get(
        "/api/v1/admin/audit.csv", params={"reference": req.reference}, headers=as_admin
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0] == list(audit.CSV_COLUMNS) and len(table) == 6
    # Reading the trail is recorded too.
    reads = [r.action for r in _rows(db, actor=str(admin.id)) if "/audit" in r.action]
    assert "GET /api/v1/admin/audit.csv" in reads and "GET /api/v1/admin/audit" in reads


@pytest.mark.parametrize(
    "database", ["postgresql", pytest.param("sqlite", marks=pytest.mark.sqlite)]
)
def test_the_table_refuses_update_and_delete(db: Session, database: str) -> None:
    audit.record(db, action="test.append", actor="system")
    for statement in (
        "UPDATE audit_events SET actor = 'someone-else'",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(DatabaseError, match="append-only"), db.begin_nested():
            db.execute(text(statement))
    assert audit.verify(db).ok


def test_the_chain_links_each_row_to_the_previous_one(db: Session) -> None:
    rows = [audit.record(db, action=f"test.{i}", actor="system") for i in range(3)]
    assert [r.seq for r in rows] == [rows[0].seq, rows[0].seq + 1, rows[0].seq + 2]
    assert rows[1].prev_hash == rows[0].row_hash and rows[2].prev_hash == rows[1].row_hash
    assert all(r.row_hash == audit.compute_hash(r) for r in rows)
    with pytest.raises(ValueError, match="outcome"):
        audit.record(db, action="test.bad", actor="system", outcome="maybe")


AUDIT_COLUMNS = [column.name for column in AuditEvent.__table__.columns]


def _tampered(column: Column[Any], value: Any) -> Any:
    """Another value of the column's type, of the same length (so the database takes it)."""
    kind = type(value) if value is not None else column.type.python_type
    if kind is dict:
        return {**(value or {}), "tampered": True}
    if kind is int:
        return (value or 0) + (1000 if column.primary_key else 1)
    if kind is dt.datetime:
        return value + dt.timedelta(microseconds=1)
    if kind is str:
        return "x" if not value else ("y" if value[0] != "y" else "z") + value[1:]
    raise AssertionError(f"no altered value for {column.name} ({column.type}): add one here")


@pytest.mark.parametrize("column", AUDIT_COLUMNS)
def test_a_row_altered_in_any_column_fails_verification(db: Session, column: str) -> None:
    """Every column of the table, read from the model: a column added later is covered, and a
    column left out of the hash (``target`` say) fails here."""
    rows = [
        audit.record(
            db,
            action=f"test.column.{i}",
            actor="system",
            actor_role="system",
            target=f"REF{i}",
            address="192.0.2.1",
            user_agent="pytest",
            status_code=200,
            details={"i": i},
        )
        for i in range(3)
    ]
    assert audit.verify(db).ok
    middle = rows[1]
    table = AuditEvent.__table__
    value = _tampered(table.c[column], getattr(middle, column))
    # Behind the service's back: the append-only trigger does not fire for a replica.
    db.execute(text("SET LOCAL session_replication_role = replica"))
    db.execute(table.update().where(table.c.seq == middle.seq).values({column: value}))
    db.expire_all()
    report = audit.verify(db)
    assert not report.ok, f"{column} changed and the chain still verifies"
    # The altered row itself, or (its seq changed) the row after the gap it left.
    assert report.bad_seq in (middle.seq, rows[2].seq), report


def _verify(tmp_path: Path, url: str) -> Any:
    return run_cli(["audit", "verify"], cwd=tmp_path, env={"INTAKE_DATABASE_URL": url})


@pytest.mark.slow
def test_verify_finds_an_altered_a_removed_and_an_inserted_row_on_postgresql(
    tmp_path: Path,
) -> None:
    with real_database("postgresql", tmp_path) as db, app_client() as c:
        with db.session() as s:
            admin = create_user(s, role=Role.admin)
            commit(s)
        headers = login(c, admin)
        for _ in range(3):
            assert c.get("/api/v1/admin/audit", headers=headers).status_code == 200
        with db.session() as s:
            seqs = s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        assert len(seqs) >= 4
        url, libpq = db.url, db.libpq_url

        ok = _verify(tmp_path, url)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"{len(seqs)} rows" in ok.stdout

        def superuser(sql: LiteralString, *params: Any) -> None:
            with psycopg.connect(libpq, autocommit=True) as conn:
                conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
                conn.execute(sql, params)
                conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")

        # The trigger refuses the service's own role... and this test's, until it is disabled.
        with psycopg.connect(libpq, autocommit=True) as conn, pytest.raises(psycopg.Error):
            conn.execute("DELETE FROM audit_events")

        # Altered: one row's action changed behind the service's back.
        superuser("UPDATE audit_events SET action = 'forged' WHERE seq = %s", seqs[1])
        bad = _verify(tmp_path, url)
        assert bad.returncode == 1
        assert f"row {seqs[1]}" in bad.stderr and "altered" in bad.stderr

        # Removed: the row after the gap is named.
        superuser("DELETE FROM audit_events WHERE seq = %s", seqs[1])
        gone = _verify(tmp_path, url)
        assert gone.returncode == 1 and f"row {seqs[2]}" in gone.stderr, gone.stderr


@pytest.mark.slow
def test_verify_finds_a_forged_row_on_sqlite(tmp_path: Path) -> None:
    with real_database("sqlite", tmp_path) as db:
        with db.session() as s:
            for i in range(3):
                audit.record(s, action=f"test.{i}", actor="system")
            commit(s)
        url = db.url
        assert _verify(tmp_path, url).returncode == 0
        with db.engine.connect() as conn:
            # Appended with a made-up hash, as someone editing the file would.
            conn.exec_driver_sql(
                "INSERT INTO audit_events (seq, at, actor, action, outcome, details, prev_hash, "
                "row_hash) VALUES (4, '2026-11-23 10:00:00.000000', 'system', 'forged', 'ok', "
                "'{}', 'x', 'y')"
            )
            conn.commit()
        forged = _verify(tmp_path, url)
        assert forged.returncode == 1 and "row 4" in forged.stderr, forged.stderr
        with db.engine.connect() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
            conn.exec_driver_sql("DELETE FROM audit_events WHERE seq = 4")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("UPDATE audit_events SET actor = 'admin' WHERE seq = 2")
            conn.commit()
        altered = _verify(tmp_path, url)
        assert altered.returncode == 1 and "row 2" in altered.stderr, altered.stderr


def test_pages_are_recorded_too_with_the_signed_in_user_or_the_requester(
    db: Session, client: object
) -> None:
    from app.web.auth import SESSION_COOKIE

    c: Any = client
    staff = create_user(db, role=Role.staff)
    reply = submit(c)
    ref = reply["reference"]
    token = login(c, staff)["Authorization"].removeprefix("Bearer ")
    c.cookies.set(SESSION_COOKIE, token)
    assert c.get(f"/staff/cases/{ref}").status_code == 200
    c.cookies.clear()
    c.get(f"/r/{ref}")  # no link: whatever the page answers, it is recorded
    got = [(r.action, r.actor) for r in _rows(db, target=ref)]
    assert ("GET /staff/cases/{reference}", str(staff.id)) in got
    assert ("GET /r/{reference}", "anonymous") in got


def test_an_access_that_cannot_be_recorded_is_refused(
    db: Session, client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.audit import middleware

    c: Any = client
    staff = create_user(db, role=Role.staff)
    req = submit(db)
    commit(db)
    headers = login(c, staff)

    def broken(*_: Any, **__: Any) -> AuditEvent:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(middleware.service, "record", broken)
    resp = c.get(f"/api/v1/cases/{req.reference}", headers=headers)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "audit_unavailable"
    assert MARKER not in resp.text
    # Routes that are not audited are unaffected.
    assert c.get("/healthz").status_code == 200


@pytest.mark.slow
def test_concurrent_appends_keep_one_linear_chain_on_postgresql(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.core.database import session_scope

    def append(i: int) -> None:
        for j in range(10):
            with session_scope() as s:
                audit.record(s, action=f"test.thread{i}.{j}", actor="system")

    with real_database("postgresql", tmp_path) as db:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(append, range(6)))
        with db.session() as s:
            report = audit.verify(s)
        assert report.ok and report.rows == 60, report


def test_a_sign_in_refused_for_too_many_failures_is_recorded(db: Session, client: object) -> None:
    from app.core.settings import get_settings

    c: Any = client
    user = create_user(db, role=Role.staff)
    body = {"email": user.email, "password": "wrong password here"}
    for _ in range(get_settings().login_slow_after_failures):
        assert c.post("/api/v1/auth/login", json=body).status_code == 401
    assert c.post("/api/v1/auth/login", json=body).status_code == 429
    [refused] = _rows(db, status_code=429)
    assert (refused.action, refused.actor, refused.outcome) == (
        "POST /api/v1/auth/login",
        "anonymous",
        "denied",
    )
    denied = _rows(db, action="auth.login", actor=str(user.id), outcome="denied")
    assert len(denied) == get_settings().login_slow_after_failures
