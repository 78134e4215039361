"""Factories for the experts, documents and routing tests."""

from __future__ import annotations

import datetime as dt
import email as email_lib
import io
import secrets
import uuid
from collections.abc import Sequence
from email import policy as email_policy
from pathlib import Path
from typing import Any

from pypdf import PdfWriter
from sqlalchemy.orm import Session

from app.core.time import now
from app.experts import service as experts
from app.experts.schemas import ExpertIn
from app.intake import records
from app.intake import service as intake
from app.intake.schemas import SubmitIn
from app.models import (
    AbsenceKind,
    CaseStage,
    ContactChannel,
    ExpertProfile,
    IntakeRequest,
    RequesterType,
    RequestSource,
    RequestStatus,
    Role,
    UnavailablePeriod,
    User,
)
from tests.factories import create_user
from tests.outbox_helpers import process_submissions


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


MARKER = "Zqxmarker"


def submission(**overrides: Any) -> SubmitIn:
    body: dict[str, Any] = {
        "requester_type": "applicant",
        "full_name": f"Aigul {MARKER} Applicant",
        "email": f"applicant-{secrets.token_hex(3)}@example.org",
        "phone": "+996 555 123 456",
        "preferred_channel": "email",
        "language": "ru",
        "timezone": "Asia/Bishkek",
        "country_of_origin": "KG",
        "country_of_residence": "DE",
        "case_stage": "refused_appeal",
        "topics": ["political_repression"],
        "case_summary": f"Summary with {MARKER} inside it.",
        "wants": ["consultation", "expert_cv"],
        "deadline": (now() + dt.timedelta(days=30)).date().isoformat(),
        "consent_data_processing": True,
    }
    body.update(overrides)
    return SubmitIn.model_validate(body)


def submit(session: Session, **overrides: Any) -> IntakeRequest:
    """Through the intake service, then what the worker does within seconds of it (routing,
    reminders, documents' timer: the ``intake.submitted`` outbox row)."""
    reply = intake.submit(session, submission(**overrides))
    process_submissions(session)
    req = records.get_by_reference(session, reply["reference"])
    assert req is not None
    return req


def tiny_pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=72, height=72)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def mails(mail_dir: Path) -> list[tuple[str, str, str]]:
    """(to, subject, decoded text and HTML bodies) of every e-mail written so far."""
    out = []
    for p in sorted(mail_dir.glob("*.eml")):
        msg = email_lib.message_from_bytes(p.read_bytes(), policy=email_policy.default)
        parts = []
        for part in msg.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                parts.append(part.get_content())
        out.append((str(msg["To"]), str(msg["Subject"]), "\n".join(parts)))
    return out
