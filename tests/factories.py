"""The tests' one factories module: plain functions that make users, experts, requests, roster
shifts and consultation hours, submit the request form, and run the outbox in-process.
Reading the e-mails sent is ``tests/mail_reader.py``; starting real processes is
``tests/processes.py``."""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import io
import re
import secrets
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from pypdf import PdfWriter
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core import database
from app.core.database import build_engine, commit, session_scope
from app.core.time import now
from app.experts import service as experts
from app.experts.schemas import ExpertIn
from app.intake import records
from app.intake import service as intake
from app.intake.schemas import SubmitIn
from app.models import (
    AbsenceKind,
    Assignment,
    AssignmentStatus,
    CaseStage,
    Consultation,
    ConsultationStatus,
    ContactChannel,
    Document,
    DutyLevel,
    ExpertProfile,
    IntakeRequest,
    OutboxMessage,
    OverrideKind,
    RequesterType,
    RequestHistory,
    RequestSource,
    RequestStatus,
    Role,
    RosterOverride,
    RosterShift,
    UnavailablePeriod,
    User,
)
from app.outbox import service as outbox
from app.scheduling import service as scheduling
from app.scheduling.schemas import AvailabilityIn
from app.sendouts import service as sendouts

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.conftest import Clock

# Users and signing in ----------------------------------------------------------------------------

DEFAULT_PASSWORD = "correct horse battery staple"


def create_user(
    session: Session,
    *,
    role: Role = Role.staff,
    email: str | None = None,
    display_name: str = "Test User",
    password: str | None = DEFAULT_PASSWORD,
) -> User:
    return accounts.create_user(
        session,
        email=email or f"{role.value}-{secrets.token_hex(4)}@example.org",
        display_name=display_name,
        role=role,
        password=password,
    )


def login(client: object, user: User, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
    """Sign in through the API; returns the Authorization header."""
    resp = client.post(  # type: ignore[attr-defined]
        "/api/v1/auth/login", json={"email": user.email, "password": password}
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['user_token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def field_problems(resp: Any) -> dict[str, str]:
    """The 4xx error body's fields: {field: message}."""
    body = resp.json()
    return {f["field"]: f["message"] for f in body["error"]["fields"]}


# The request form --------------------------------------------------------------------------------

MARKER = "Zqxmarker"  # in a case's personal data, so a test can search for where it leaks


def form(**overrides: Any) -> dict[str, Any]:
    """The one request form: a valid applicant's answers as the API takes them (JSON). An
    override of ``...`` leaves the field out."""
    body: dict[str, Any] = {
        "requester_type": "applicant",
        "full_name": "Aigerim Test",
        "email": f"applicant-{secrets.token_hex(4)}@example.org",
        "preferred_channel": "email",
        "language": "en",
        "timezone": "Europe/London",
        "country_of_origin": "KG",
        "country_of_residence": "GB",
        "case_stage": "filed_pending",
        "wants": ["consultation", "sample_report"],
        "consent_data_processing": True,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def case_form(**overrides: Any) -> dict[str, Any]:
    """``form`` for a case routing can match (Kyrgyzstan, Russian, political repression, an
    appeal with a deadline) whose name and summary carry ``MARKER``."""
    case: dict[str, Any] = {
        "full_name": f"Aigul {MARKER} Applicant",
        "email": f"applicant-{secrets.token_hex(3)}@example.org",
        "phone": "+996 555 123 456",
        "language": "ru",
        "timezone": "Asia/Bishkek",
        "country_of_residence": "DE",
        "case_stage": "refused_appeal",
        "topics": ["political_repression"],
        "case_summary": f"Summary with {MARKER} inside it.",
        "wants": ["consultation", "expert_cv"],
        "deadline": (now() + dt.timedelta(days=30)).date().isoformat(),
    }
    return form(**(case | overrides))


def submission(**overrides: Any) -> SubmitIn:
    """``case_form`` as the intake service takes it."""
    return SubmitIn.model_validate(case_form(**overrides))


def page_answers(**overrides: Any) -> dict[str, Any]:
    """``form`` as the /apply page sends it (a ticked checkbox is "on", lists repeat)."""
    return {k: "on" if v is True else v for k, v in form(**overrides).items()}


@overload
def submit(via: Session, *, process: bool = True, **overrides: Any) -> IntakeRequest: ...
@overload
def submit(via: TestClient, *, process: bool = True, **overrides: Any) -> dict[str, Any]: ...
def submit(
    via: Session | TestClient, *, process: bool = True, **overrides: Any
) -> IntakeRequest | dict[str, Any]:
    """Submit a request, then (``process``) do what the worker does within seconds of it: the
    ``intake.submitted`` outbox row (routing, reminders, documents' timer), nothing else.

    ``via`` a TestClient: ``form`` POSTed to the API; returns the 201 reply (reference,
    access_token). ``via`` a Session: ``case_form`` through the intake service in that session;
    returns the stored request."""
    if isinstance(via, Session):
        reply = intake.submit(via, submission(**overrides))
        if process:
            process_submissions(via)
        req = records.get_by_reference(via, reply["reference"])
        assert req is not None
        return req
    resp = via.post("/api/v1/requests", json=form(**overrides))
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    if process:
        with session_scope() as session:
            process_submissions(session)
    return data


# The public pages --------------------------------------------------------------------------------

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def hidden_fields(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


def title_of(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    assert found is not None
    return found.group(1).strip()


def form_page(url: str) -> str:
    """The page whose form posts to ``url``: ``POST /apply`` is the one-page form's, which is
    shown at ``/apply/all`` (``/apply`` itself asks in steps)."""
    if url == "/apply" or url.startswith("/apply?"):
        return "/apply/all" + url[len("/apply") :]
    return url


def open_form(client: TestClient, url: str = "/apply") -> dict[str, str]:
    """The hidden fields (and cookies) of the form that posts to ``url``."""
    resp = client.get(form_page(url))
    assert resp.status_code == 200, resp.text
    return hidden_fields(resp.text)


def post_form(client: TestClient, url: str = "/apply", **overrides: Any) -> Any:
    """Open the form (cookie + hidden fields), then send the answers with them."""
    hidden = open_form(client, url)
    return client.post(url, data={**hidden, **page_answers(**overrides)})


# Staff and expert pages: signing in and the CSRF token -------------------------------------------


def sign_in(web: TestClient, user: User, password: str = DEFAULT_PASSWORD, **extra: str) -> Any:
    hidden = hidden_fields(web.get("/staff/sign-in").text)
    return web.post(
        "/staff/sign-in",
        data={**hidden, "email": user.email, "password": password, **extra},
        follow_redirects=False,
    )


def signed_in(web: TestClient, user: User) -> TestClient:
    resp = sign_in(web, user)
    assert resp.status_code == 303, resp.text
    return web


def csrf(web: TestClient, url: str) -> dict[str, str]:
    resp = web.get(url)
    assert resp.status_code == 200, resp.text
    return {"csrf_token": hidden_fields(resp.text)["csrf_token"]}


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', html, re.S)
    assert found is not None, f"no error next to {name}"
    return found.group(1)


# Requests, experts, documents --------------------------------------------------------------------


def make_request(
    session: Session,
    *,
    country: str = "KG",
    region: str | None = "eastern_europe_post_soviet",
    language: str = "ru",
    topics: Sequence[str] = ("political_repression",),
    wants: Sequence[str] = ("consultation",),
    deadline: dt.date | None = None,
    flush: bool = True,
    reference: str | None = None,
) -> IntakeRequest:
    """A bare request row (no personal data), for routing tests that need many."""
    current = now()
    req = IntakeRequest(
        id=uuid.uuid4(),
        reference=reference or secrets.token_hex(4).upper(),
        status=RequestStatus.new,
        source=RequestSource.form,
        requester_type=RequesterType.applicant,
        preferred_channel=ContactChannel.email,
        country_of_origin=country,
        country_of_residence="DE",
        region_code=region,
        case_stage=CaseStage.not_filed,
        deadline=deadline,
        topics=list(topics),
        wants=list(wants),
        consent_updates=[],
        language=language,
        timezone="Europe/Berlin",
        discreet=False,
        privacy_notice_version="2026-11",
        consent_given_at=current,
        received_at=current,
        sla_minutes=60,
        first_response_due_at=current + dt.timedelta(hours=1),
    )
    session.add(req)
    if flush:
        session.flush()
    return req


def create_expert(
    session: Session,
    *,
    countries: Sequence[str] = (),
    regions: Sequence[str] = (),
    languages: Sequence[str] = ("en",),
    topics: Sequence[str] = (),
    max_open: int = 10,
    name: str | None = None,
) -> User:
    user = create_user(session, role=Role.expert, display_name=name or "Expert Person")
    experts.create(
        session,
        ExpertIn(
            user_id=user.id,
            public_name=name or f"Dr Expert {secrets.token_hex(2)}",
            email=user.email,
            phone="+44 20 7946 0000",
            timezone="Europe/London",
            languages=list(languages),
            regions=list(regions),
            countries=list(countries),
            topics=list(topics),
            max_open_assignments=max_open,
            zoom_user=user.email,
        ),
    )
    return user


def profile(session: Session, user: User) -> ExpertProfile:
    p = session.get(ExpertProfile, user.id, populate_existing=True)
    assert p is not None
    return p


def add_absence(
    session: Session,
    user: User,
    *,
    starts: dt.datetime | None = None,
    hours: float = 24,
    kind: AbsenceKind = AbsenceKind.leave,
) -> UnavailablePeriod:
    start = starts or now() - dt.timedelta(hours=1)
    period = UnavailablePeriod(
        expert_id=user.id,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=hours),
        kind=kind,
        created_at=now(),
    )
    session.add(period)
    session.flush()
    return period


def assignment(
    session: Session,
    expert: User,
    req: IntakeRequest,
    *,
    status: AssignmentStatus = AssignmentStatus.offered,
) -> Assignment:
    """An assignment row of ``req`` to ``expert`` as routing leaves it (no counter, no e-mail):
    offered now, or accepted ten minutes after the offer."""
    offered = now() - dt.timedelta(minutes=30)
    a = Assignment(
        request_id=req.id,
        expert_id=expert.id,
        status=status,
        offered_at=offered,
        respond_by=offered + dt.timedelta(minutes=15),
        responded_at=offered + dt.timedelta(minutes=10)
        if status != AssignmentStatus.offered
        else None,
    )
    session.add(a)
    session.flush()
    return a


def booked_consultation(
    session: Session, req: IntakeRequest, expert: User, *, hours: int = 3, minutes: int = 60
) -> Consultation:
    """A booked consultation row starting ``hours`` from now (no meeting, no invites)."""
    start = now() + dt.timedelta(hours=hours)
    c = Consultation(
        request_id=req.id,
        expert_id=expert.id,
        start_at=start,
        end_at=start + dt.timedelta(minutes=minutes),
        blocked_from=start,
        blocked_until=start + dt.timedelta(minutes=minutes),
        status=ConsultationStatus.booked,
        ical_uid=f"{secrets.token_hex(8)}@test",
        created_by="requester",
    )
    session.add(c)
    session.flush()
    return c


def tiny_pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=72, height=72)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def sample_report(
    session: Session,
    by: User,
    *,
    country: str | None = None,
    region: str | None = None,
    filename: str = "report.pdf",
    pages: int = 1,
) -> Document:
    """A sample report stored as the admins' upload stores it: tagged with a country, a region,
    or neither (general)."""
    return sendouts.upload_sample_report(
        session,
        data=tiny_pdf(pages),
        filename=filename,
        uploaded_by=by.id,
        country_code=country,
        region_code=region,
    )


# Consultation hours and times --------------------------------------------------------------------

EVERY_DAY = list(range(7))


def hours(
    start: str = "09:00", end: str = "12:00", days: list[int] | None = None
) -> list[dict[str, Any]]:
    return [{"weekday": d, "start": start, "end": end} for d in (days or EVERY_DAY)]


def expert_with_hours(
    session: Session,
    *,
    countries: tuple[str, ...] = ("KG",),
    regions: tuple[str, ...] = (),
    zone: str = "Europe/London",
    link: str | None = None,
    name: str | None = None,
    max_open: int = 100,
    **availability: Any,
) -> User:
    """An expert with a personal meeting link and stored availability (default: every day
    09:00-12:00 in ``zone``, 60-minute consultations)."""
    user = create_expert(
        session, countries=countries, regions=regions, name=name, max_open=max_open
    )
    p = session.get(ExpertProfile, user.id)
    assert p is not None
    p.personal_meeting_link = link or f"https://meet.example.org/{secrets.token_hex(4)}"
    p.timezone = zone
    user.timezone = zone  # one zone per expert: the account's is the profile's
    body: dict[str, Any] = {"weekly": hours(), "slot_minutes": 60} | availability
    scheduling.put_availability(session, user.id, AvailabilityIn.model_validate(body), actor="test")
    session.flush()
    return user


def day_in(zone: str, days: int = 1) -> dt.date:
    """A local date ``days`` after today in ``zone``."""
    return now().astimezone(zoneinfo.ZoneInfo(zone)).date() + dt.timedelta(days=days)


def at(date: dt.date, hhmm: str, zone: str) -> dt.datetime:
    """A wall-clock time of a date in a zone, as a UTC instant."""
    h, m = (int(x) for x in hhmm.split(":"))
    local = dt.datetime(date.year, date.month, date.day, h, m, tzinfo=zoneinfo.ZoneInfo(zone))
    return local.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def utc_text(value: dt.datetime) -> str:
    """As the API writes ``start_utc``."""
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def named_time(value: dt.datetime, zone: str) -> str:
    """How an English staff or expert e-mail shows an instant, worked out here on its own (not
    with the service's helper): "Sunday 28 March 2027 at 06:30 (Bishkek time)"; in an hour the
    clocks repeat, with its offset: "... at 02:30 (Berlin time, UTC+02:00)"."""
    local = value.astimezone(zoneinfo.ZoneInfo(zone))
    name = "UTC" if zone == "UTC" else f"{zone.rsplit('/', 1)[-1].replace('_', ' ')} time"
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        offset = f"{local:%z}"  # "+0200"
        name += f", UTC{offset[:3]}:{offset[3:]}"
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} ({name})"


def starts(slots_body: dict[str, Any]) -> list[str]:
    return [s["start_utc"] for day in slots_body["days"] for s in day["slots"]]


# The duty roster ---------------------------------------------------------------------------------


def set_time(clock: Clock, when: dt.datetime) -> None:
    """Move the controlled clock so that ``now()`` is ``when`` (plus the test's run time)."""
    clock.at(when)


def shift(
    db: Session,
    user: User,
    weekday: int,
    start: str,
    end: str,
    *,
    tz: str = "UTC",
    level: DutyLevel = DutyLevel.member,
) -> RosterShift:
    row = RosterShift(
        user_id=user.id,
        timezone=tz,
        weekday=weekday,
        starts_local=dt.time.fromisoformat(start),
        ends_local=dt.time.fromisoformat(end),
        level=level,
    )
    db.add(row)
    db.flush()
    return row


def around_the_clock(db: Session, user: User, *, level: DutyLevel = DutyLevel.member) -> None:
    for day in range(7):
        shift(db, user, day, "00:00", "00:00", level=level)


def override(
    db: Session,
    user: User,
    kind: OverrideKind,
    starts: dt.datetime,
    ends: dt.datetime,
    *,
    level: DutyLevel = DutyLevel.member,
) -> RosterOverride:
    row = RosterOverride(
        user_id=user.id,
        kind=kind,
        starts_at=starts,
        ends_at=ends,
        level=level,
        created_at=now(),
    )
    db.add(row)
    db.flush()
    return row


# Inbound e-mail, and a request's history and outbox rows -----------------------------------------

MAIL = Path(__file__).parent / "fixtures" / "mail"  # sample inbound messages
SENDER = "amina.k@example.net"


def fixture(name: str, **replace: str) -> bytes:
    raw = (MAIL / name).read_bytes()
    for key, value in replace.items():
        raw = raw.replace(key.encode(), value.encode())
    return raw


def request_of(db: Session, reference: str | None) -> IntakeRequest:
    assert reference is not None
    req = records.get_by_reference(db, reference)
    assert req is not None
    return req


def history(db: Session, req: IntakeRequest, action: str) -> list[RequestHistory]:
    return list(
        db.scalars(
            select(RequestHistory).where(
                RequestHistory.request_id == req.id, RequestHistory.action == action
            )
        ).all()
    )


def outbox_rows(db: Session, kind: str) -> list[OutboxMessage]:
    return list(db.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)).all())


def plain(
    *, sender: str = SENDER, subject: str = "Please help", body: str = "Hello", **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "requests@example.org"
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(now() - dt.timedelta(minutes=2))
    msg["Message-ID"] = email.utils.make_msgid(domain="mail.example.net")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


# The outbox, in-process (the same service functions the worker task calls) -----------------------

TEST_WORKER = "test-worker"


def drain(session: Session, *, limit: int = 100) -> int:
    """Claim and deliver every due row now; returns how many were delivered."""
    ids = outbox.claim(session, worker=TEST_WORKER, limit=limit)
    for message_id in ids:
        outbox.deliver(session, message_id, worker=TEST_WORKER)
    commit(session)
    return len(ids)


def drain_all(db: Session) -> int:
    """``drain`` until nothing is due (what one delivery queues is delivered too)."""
    total = 0
    for _ in range(10):
        n = drain(db)
        total += n
        if n == 0:
            return total
    raise AssertionError("the outbox never settled")


def process_submissions(session: Session) -> int:
    """Deliver the pending ``intake.submitted`` rows now (routing, reminders, documents' timer),
    as the worker does within seconds of a submission, without sending anything else."""
    from app.intake.service import SUBMITTED_KIND
    from app.models import OutboxStatus

    ids = session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.kind == SUBMITTED_KIND, OutboxMessage.status == OutboxStatus.pending
        )
    ).all()
    if ids:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status=OutboxStatus.claimed, claimed_by=TEST_WORKER)
        )
    for message_id in ids:
        outbox.deliver(session, message_id, worker=TEST_WORKER)
    session.flush()
    return len(ids)


# Waiting on PostgreSQL locks ---------------------------------------------------------------------


def backend_pid(session: Session) -> int:
    """The PostgreSQL backend serving this session's connection (for ``wait_until_blocked``)."""
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def wait_until_blocked(
    engine: Engine,
    waiter: int,
    holder: int,
    *,
    finished: Callable[[], bool] = lambda: False,
    timeout: float = 30.0,
) -> bool:
    """Poll ``pg_blocking_pids`` until backend ``waiter`` waits for a lock that backend
    ``holder`` holds (True), or ``finished()`` says the waiter is done without having waited
    (False). Fails after ``timeout`` seconds: a real signal, not a sleep."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            blockers = conn.execute(
                text("SELECT pg_blocking_pids(:pid)"), {"pid": waiter}
            ).scalar_one()
            conn.rollback()
            if holder in blockers:
                return True
            if finished():
                return False
            time.sleep(0.005)  # the polling interval of a bounded wait
    raise AssertionError(f"backend {waiter} never waited for backend {holder}")


# A database with real commits --------------------------------------------------------------------
# For the audit and privacy tests: a fresh SQLite file or a dedicated PostgreSQL database, so the
# bytes on disk and ``pg_dump`` can be searched and a real CLI process can read what the app wrote.


@dataclass
class RealDb:
    kind: str  # "sqlite" or "postgresql"
    url: str  # SQLAlchemy URL
    engine: Engine
    path: Path | None = None  # the SQLite file
    pg_name: str | None = None

    def session(self) -> Session:
        return database.session_factory()()

    @property
    def libpq_url(self) -> str:
        from tests.conftest import PG_BASE

        assert self.pg_name is not None
        return f"{PG_BASE}/{self.pg_name}"


@contextmanager
def real_database(kind: str, tmp_path: Path) -> Iterator[RealDb]:
    """A migrated database the app (this process) uses with real commits."""
    # Not at the top: the seed scripts of the browser tests import this module in a service's
    # own process, where the test suite's settings must not be applied.
    from tests.conftest import create_migrated_pg_database, create_migrated_sqlite, drop_pg_database

    name: str | None = None
    path: Path | None = None
    if kind == "sqlite":
        path = tmp_path / "real.sqlite3"
        url = create_migrated_sqlite(path)
    else:
        name = f"intake_priv_{secrets.token_hex(4)}"
        url = create_migrated_pg_database(name)
    try:
        engine = build_engine(url, for_tests=True)
        database.set_engine(engine)
        try:
            yield RealDb(kind=kind, url=url, engine=engine, path=path, pg_name=name)
        finally:
            database.set_engine(None)
            engine.dispose()
    finally:
        if name is not None:
            drop_pg_database(name)


@contextmanager
def app_client() -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def form_values(page: str, form_id: str) -> dict[str, str]:
    """The hidden inputs of the form ``id="form_id"`` on a page, unescaped (what a browser
    posts when only its button is pressed)."""
    found = re.search(rf'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>', page, re.S)
    assert found is not None, form_id
    pairs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(1))
    return {name: html.unescape(value) for name, value in pairs}
