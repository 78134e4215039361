"""A request's life is explicit orchestration (``app/flows/request.py``), not hooks that other
modules fill when they happen to be imported: a process that imported only what the command
line imports still cancels the booked consultation of a request that ends."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import database
from app.intake.status import FINAL
from app.models import Consultation, ConsultationStatus, IntakeRequest, RequestStatus
from app.scheduling import service as scheduling
from tests.conftest import child_env, create_migrated_sqlite
from tests.factories import at, day_in, expert_with_hours, make_request

ROOT = Path(__file__).resolve().parents[2]
LONDON = "Europe/London"

# The child: the modules the command line imports, then the flow a new command would call.
# Nothing else (no app.main, no pages, no scheduling import of its own).
CHILD = """
import sys, uuid
import app.cli
from app.core.database import session_scope
from app.flows import request as flows
from app.models import IntakeRequest, RequestStatus

with session_scope() as session:
    req = session.get(IntakeRequest, uuid.UUID(sys.argv[1]))
    if sys.argv[2] == "withdraw":
        flows.withdraw(session, req)
    else:
        flows.change_status(session, req, RequestStatus(sys.argv[2]), actor="system")
loaded = {m for m in sys.modules if m == "app.main" or m.startswith("app.web")}
assert not loaded, loaded
"""


@pytest.fixture
def sqlite_file() -> Iterator[str]:
    # A committed database the child process can read (the ``db`` fixture never commits).
    with tempfile.TemporaryDirectory(prefix="intake-flows-") as folder:
        url = create_migrated_sqlite(Path(folder) / "flows.sqlite3")
        yield url


def _booked_request(url: str) -> uuid.UUID:
    engine = database.build_engine(url)
    try:
        with Session(engine) as s:
            expert = expert_with_hours(s)
            req = make_request(s)
            req.assigned_expert_id = expert.id
            scheduling.book(
                s,
                req,
                start=at(day_in(LONDON, 2), "09:00", LONDON),
                zone=LONDON,
                caller=scheduling.Caller("requester"),
            )
            s.commit()
            return req.id
    finally:
        engine.dispose()


def _consultation(url: str, request_id: uuid.UUID) -> tuple[Consultation, IntakeRequest]:
    engine = database.build_engine(url)
    try:
        with Session(engine) as s:
            c = s.scalar(select(Consultation).where(Consultation.request_id == request_id))
            req = s.get(IntakeRequest, request_id)
            assert c is not None and req is not None
            return c, req
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("how", "status", "reason"),
    [
        ("withdraw", RequestStatus.withdrawn, "request_withdrawn"),
        ("spam", RequestStatus.spam, "request_spam"),
    ],
)
def test_a_command_line_process_that_ends_a_request_cancels_its_consultation(
    sqlite_file: str, how: str, status: RequestStatus, reason: str
) -> None:
    request_id = _booked_request(sqlite_file)
    booked, _ = _consultation(sqlite_file, request_id)
    assert booked.status == ConsultationStatus.booked

    env = child_env(
        INTAKE_DATABASE_URL=sqlite_file,
        INTAKE_DATA_DIR=os.environ["INTAKE_DATA_DIR"],
        INTAKE_BROKER_URL="memory://",
    )
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(request_id), how],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    c, req = _consultation(sqlite_file, request_id)
    assert req.status == status
    assert c.status == ConsultationStatus.cancelled
    assert c.cancel_reason == reason


def test_no_hook_lists_remain_to_be_filled_by_imports() -> None:
    """What a reassignment or an ended request does is called in order by the flow; no module
    keeps a list of callbacks that another module appends to when imported."""
    import app.routing.assignments as assignments

    assert not hasattr(assignments, "REASSIGNMENT_HOOKS")
    assert not (ROOT / "app" / "experts" / "flows.py").exists()
    lists = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.endswith("HOOKS"):
                    lists.append(f"{path.relative_to(ROOT)}: {target.id}")
    assert lists == []


def test_outside_the_flows_a_status_move_names_a_status_that_does_not_end_the_request() -> None:
    """A move to a final status frees the expert and cancels the consultation only through
    ``app.flows.request.change_status``; anywhere else, ``change_status`` is called with an
    open status spelled out (booking, its cancellation, a meeting held), so a new caller that
    could end a request is caught here."""
    final = {s.name for s in FINAL}
    found = []
    for path in sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]):
        if path.parent.name == "flows":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "change_status":
                continue
            callee = node.func.value
            if isinstance(callee, ast.Name) and callee.id == "flows":
                continue  # the edges call the flow with any status
            target = node.args[2] if len(node.args) > 2 else None
            named = (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "RequestStatus"
                and target.attr not in final
            )
            if not named:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
