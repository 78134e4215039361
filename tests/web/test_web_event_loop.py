"""No endpoint blocks the event loop.

One blocking call on the loop (a database round trip, argon2) stalls every other request of the
process, ``/healthz`` included. Two checks:

- Statically, every ``async def`` endpoint or dependency of every route is on ``ASYNC_ALLOWED``
  (each one only reads the body or awaits; the runtime test runs each of them): a new
  ``async def`` handler that calls the database fails here until it is made plain ``def``.
- At run time, the pages are exercised in-process (sign-in with argon2, the queue, a case and
  each of its actions, the expert's pages and forms, the public form, the submit API, the
  webhooks) while a guard watches the thread that runs the event loop: any SQL statement or
  argon2 hash there is a failure, wherever it comes from, and so is any single step of the loop
  that takes more than ``MAX_STEP_CPU_SECONDS`` of CPU. CPU time rather than wall-clock time,
  so a busy shared machine does not make the test fail, and the call-site check does not depend
  on argon2's cost (cheap in tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import argon2
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session
from starlette.routing import Mount

from app import main
from app.core import security
from app.core.deps import SessionDep
from app.core.security import hash_password, verify_password
from app.core.settings import get_settings
from app.main import build_routes, create_app
from app.models import Assignment, ExpertNotification, Role, UnavailablePeriod
from tests.factories import (
    create_expert,
    create_user,
    csrf,
    hidden_fields,
    login,
    post_form,
    sign_in,
    signed_in,
    submission,
    submit,
)

# Each async callable that routes may use, and why it does not block.
ASYNC_ALLOWED = {
    "app.web.auth.require_csrf": "reads the form body; the CSRF check is one HMAC",
    "app.web.public.form_data": "reads the form body up to the size limit",
    "app.core.webhook_body.LimitedBody": "reads a signed webhook's body up to its limit",
    "app.inbound.router._raw_body": "reads the e-mail body up to its limit",
    "app.intake.throttle.limit_submissions": "counts in Redis with the async client; the "
    "database fallback runs in a worker thread",
    "fastapi.security.http.HTTPBearer": "reads the Authorization header",
    "app.health.router.healthz": "answers a constant (a liveness probe never waits for a thread)",
    "app.core.input_guard.reject_control_characters": "string checks of the path, the query and "
    "the body FastAPI has already read and parsed; reads nothing more",
}
MAX_STEP_CPU_SECONDS = 0.05


def _is_async(call: Any) -> bool:
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _name(call: Any) -> str:
    return f"{call.__module__}.{getattr(call, '__qualname__', type(call).__qualname__)}"


def _routes(app: FastAPI) -> Iterator[Any]:
    """Every route, those of included routers through FastAPI's route contexts (which carry
    the router's own dependencies too)."""
    for r in app.routes:
        contexts = getattr(r, "effective_route_contexts", None)
        if contexts is not None:
            yield from contexts()
        else:
            yield r


def test_every_async_endpoint_and_dependency_is_one_known_not_to_block() -> None:
    app = create_app()
    found: dict[str, set[str]] = {}
    checked = 0
    for route in _routes(app):
        if isinstance(route, Mount):
            continue  # static files: Starlette reads them in worker threads
        dependant = getattr(route, "dependant", None)
        calls = list(_calls(dependant)) if dependant is not None else [route.endpoint]
        checked += 1
        for call in calls:
            if _is_async(call):
                found.setdefault(_name(call), set()).add(f"{sorted(route.methods)} {route.path}")
    assert checked > 150
    unknown = {name: sorted(paths) for name, paths in found.items() if name not in ASYNC_ALLOWED}
    assert not unknown, (
        "async endpoints or dependencies run on the event loop; make them plain def (FastAPI "
        f"runs those in its thread pool) or prove them non-blocking: {unknown}"
    )
    assert set(found) == set(ASYNC_ALLOWED), "an allowed entry is no longer used: remove it"


# The runtime guard ---------------------------------------------------------------------------


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _where() -> str:
    frames = [f for f in traceback.extract_stack()[:-2] if "/app/" in f.filename]
    if not frames:
        return "(outside app/)"
    f = frames[-1]
    return f"{f.filename.split('/app/', 1)[1]}:{f.lineno} in {f.name}"


@dataclass
class LoopGuard:
    """What ran on an event-loop thread while it was installed."""

    blocking: list[str] = field(default_factory=list)
    slowest_step: tuple[float, str] = (0.0, "")
    steps: int = 0

    def check(self, kind: str) -> None:
        if _on_event_loop():
            self.blocking.append(f"{kind} at {_where()}")

    def assert_never_blocked(self) -> None:
        assert self.steps > 0, "the guard saw no step of the event loop"
        assert not self.blocking, "blocking work on the event loop:\n" + "\n".join(
            sorted(set(self.blocking))
        )
        seconds, step = self.slowest_step
        assert seconds < MAX_STEP_CPU_SECONDS, (
            f"one step of the event loop took {seconds * 1000:.0f} ms of CPU: {step}"
        )


@pytest.fixture
def loop_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopGuard]:
    guard = LoopGuard()

    def on_sql(*_args: Any) -> None:
        guard.check("SQL")

    event.listen(Engine, "before_cursor_execute", on_sql)
    for method in ("hash", "verify"):
        original = getattr(argon2.PasswordHasher, method)

        def checked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            guard.check("argon2")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(argon2.PasswordHasher, method, checked)

    run = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        started = time.thread_time()
        try:
            run(handle)
        finally:
            spent = time.thread_time() - started
            guard.steps += 1
            if spent > guard.slowest_step[0]:
                guard.slowest_step = (spent, repr(handle)[:300])

    monkeypatch.setattr(asyncio.events.Handle, "_run", timed_run)
    try:
        yield guard
    finally:
        event.remove(Engine, "before_cursor_execute", on_sql)


def test_the_guard_catches_database_work_and_argon2_in_an_async_endpoint(
    db: Session, loop_guard: LoopGuard
) -> None:
    """The guard is not blind: the same work in an ``async def`` endpoint is caught, in a
    plain ``def`` one it is not."""
    app = FastAPI()

    @app.get("/blocking")
    async def blocking(session: SessionDep) -> dict[str, int]:
        hash_password("a password")
        return {"one": int(session.execute(text("SELECT 1")).scalar_one())}

    @app.get("/threaded")
    def threaded(session: SessionDep) -> dict[str, int]:
        hash_password("a password")
        return {"one": int(session.execute(text("SELECT 1")).scalar_one())}

    with TestClient(app) as c:
        assert c.get("/threaded").json() == {"one": 1}
        assert loop_guard.blocking == []
        assert c.get("/blocking").json() == {"one": 1}
    assert {entry.split(" at ")[0] for entry in loop_guard.blocking} == {"SQL", "argon2"}
    assert all("test_web_event_loop" not in entry for entry in loop_guard.blocking)


@pytest.fixture
def web(db: Session) -> Iterator[TestClient]:
    app = create_app()
    build_routes(app)  # what the lifespan does before serving outside tests
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        yield c


def test_outside_tests_every_route_is_built_before_the_first_request(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI builds an included router's routes on the first request that reaches it (over
    100 ms of CPU, on the event loop); the app's lifespan builds them first, in a thread.
    Routers are included once per process (``app.main._included``): start from none."""
    monkeypatch.setattr(main, "_INCLUDED", {})
    app = create_app()
    included = [r for r in app.routes if hasattr(r, "effective_route_contexts")]
    assert included and all(r._effective_candidates_version is None for r in included)
    development = get_settings().model_copy(update={"env": "development"})
    monkeypatch.setattr(main, "get_settings", lambda: development)
    with TestClient(app):
        assert all(r._effective_candidates_version is not None for r in included)


def _staff_pages(web: TestClient, db: Session) -> None:
    staff = create_user(db, role=Role.staff)
    expert = create_expert(db, countries=["KG"], name="Dr Loop Expert")
    req = submit(db)
    assert sign_in(web, staff, password="not the password").status_code == 401
    signed_in(web, staff)
    assert web.get("/staff/queue", params={"assigned": "yes"}).status_code == 200
    assert web.get("/staff/queue/live").status_code == 200
    case = f"/staff/cases/{req.reference}"
    assert web.get(case).status_code == 200
    posts: list[tuple[str, dict[str, str]]] = [
        ("presence", {"activity": "replying"}),
        ("contact", {"channel": "phone", "note": "Called back"}),
        ("contact", {"channel": "phone", "contacted_at": "yesterday"}),  # refused: re-render
        ("notes", {"body": "An internal note"}),
        ("reply", {"subject": "Your request", "body": "We will call you."}),
        ("assign", {"expert_id": str(expert.id), "reason": "fits"}),
        ("status", {"status": "in_progress"}),
        ("status", {"status": "new"}),  # not allowed: 409 next to the field
    ]
    for action, data in posts:
        resp = web.post(f"{case}/{action}", data={**csrf(web, case), **data})
        assert resp.status_code < 500, (action, resp.status_code)
    assert web.post(f"{case}/notes", data={"body": "no token"}).status_code == 403
    assert web.get("/staff/reports").status_code == 200
    assert web.post("/staff/sign-out", data=csrf(web, "/staff/queue")).status_code < 500


def _expert_pages(web: TestClient, db: Session) -> None:
    expert = create_expert(db, countries=["KG"], name="Dr Loop Own")
    req = submit(db)
    offer = db.scalar(
        select(Assignment).where(Assignment.request_id == req.id, Assignment.expert_id == expert.id)
    )
    assert offer is not None
    signed_in(web, expert)
    accepted = web.post(
        f"/expert/assignments/{offer.id}/accept", data=csrf(web, "/expert/assignments")
    )
    assert accepted.status_code == 200
    case = f"/expert/cases/{req.reference}"
    for action, data in (("contact", {"channel": "whatsapp"}), ("notes", {"body": "Calm."})):
        assert web.post(f"{case}/{action}", data={**csrf(web, case), **data}).status_code == 200
    for url in ("/expert/consultations", "/expert/notifications", "/expert/availability"):
        assert web.get(url).status_code == 200
    hours = {"timezone": "Europe/London", "day0": "09:00-12:00", "slot_minutes": "45"}
    page = "/expert/availability"
    assert web.post(page, data={**csrf(web, page), **hours}).status_code == 200
    absence = {"starts_at": "2031-01-05T09:00", "ends_at": "2031-01-06T09:00", "kind": "leave"}
    assert web.post(f"{page}/absences", data={**csrf(web, page), **absence}).status_code == 200
    period = db.scalar(select(UnavailablePeriod).where(UnavailablePeriod.expert_id == expert.id))
    assert period is not None
    removed = web.post(f"{page}/absences/{period.id}/delete", data=csrf(web, page))
    assert removed.status_code == 200
    note = db.scalar(select(ExpertNotification).where(ExpertNotification.expert_id == expert.id))
    read = note.id if note is not None else 10**6
    marked = web.post(f"/expert/notifications/{read}/read", data=csrf(web, page))
    assert marked.status_code in (200, 404)


def _public_pages_and_api(web: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    staff = create_user(db, role=Role.staff)
    assert web.get("/apply").status_code == 200
    monkeypatch.setattr(get_settings(), "form_min_fill_seconds", 0.0)
    assert post_form(web).status_code == 200
    body = submission().model_dump(mode="json", exclude_none=True)
    assert web.post("/api/v1/requests", json=body).status_code == 201, web.cookies
    me = web.get("/api/v1/auth/me", headers=login(web, staff))
    assert me.status_code == 200
    raw = b'{"event": "meeting.ended", "payload": {"object": {"id": 1}}}'
    stamp = str(int(time.time()))
    mac = hmac.new(b"wrong", b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256)
    zoom = web.post(
        "/webhooks/zoom",
        content=raw,
        headers={"x-zm-request-timestamp": stamp, "x-zm-signature": "v0=" + mac.hexdigest()},
    )
    assert zoom.status_code == 401
    inbound = web.post(
        "/webhooks/inbound-email",
        content=b"From: a@example.org\r\nSubject: hi\r\n\r\nHello",
        headers={"X-Inbound-Secret": "wrong"},
    )
    assert inbound.status_code == 401
    assert hidden_fields(web.get("/staff/sign-in").text)


def test_pages_sign_in_forms_and_webhooks_never_block_the_event_loop(
    web: TestClient, db: Session, loop_guard: LoopGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    _staff_pages(web, db)
    web.cookies.clear()
    _expert_pages(web, db)
    web.cookies.clear()
    _public_pages_and_api(web, db, monkeypatch)
    loop_guard.assert_never_blocked()


def test_no_more_password_hashes_run_at_once_than_the_cores_can_take() -> None:
    assert security.hashes_at_once(cores=2, lanes=4) == 1  # production's default lanes here
    assert security.hashes_at_once(cores=8, lanes=4) == 2
    assert security.hashes_at_once(cores=2, lanes=1) == 2
    assert security.hashes_at_once(cores=1, lanes=1) == 1


def test_password_hashes_beyond_the_limit_wait_so_a_burst_of_sign_ins_does_not_starve_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With room for one hash, three sign-ins at once hash one after the other (measured by
    benchmarks/pages.py: /healthz waited up to 180 ms behind 20 parallel hashes on two cores,
    under 80 ms behind them in turn)."""
    stored = hash_password("a password")
    attempts = 0
    active = most = 0
    counter = threading.Lock()
    release = threading.Event()

    class Recorded:
        """The module's limit, counting who reached it."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __enter__(self) -> None:
            nonlocal attempts
            with counter:
                attempts += 1
            self.inner.acquire()

        def __exit__(self, *_exc: object) -> None:
            self.inner.release()

    original = argon2.PasswordHasher.verify

    def held(self: Any, *args: Any) -> Any:
        nonlocal active, most
        with counter:
            active += 1
            most = max(most, active)
        assert release.wait(10)
        with counter:
            active -= 1
        return original(self, *args)

    limit = Recorded(threading.BoundedSemaphore(1))
    monkeypatch.setattr(security, "_hashing", lambda: limit)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", held)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(verify_password(stored, "a password")))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while (attempts < 3 or active < 1) and time.monotonic() < deadline:
        time.sleep(0.005)  # polls the threads' state; no ordering rests on it
    assert attempts == 3 and active == 1, (attempts, active)
    release.set()
    for t in threads:
        t.join(10)
    assert results == [True, True, True]
    assert most == 1
