"""Expert profiles (admin, staff, the expert, other experts), absences, assignments."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.core.validation import SafeDateTime, normalise_email
from app.intake.schemas import ReportTopic, Want
from app.models import AbsenceKind, Assignment, AssignmentStatus, CaseStage
from app.reference.service import valid_country_code

_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be a time zone name like 'Europe/Berlin' or 'Asia/Bishkek'")
    return value


def _languages(values: list[str]) -> list[str]:
    out: list[str] = []
    for raw in values:
        tag = raw.strip()
        if not _BCP47.match(tag) or len(tag) > 35:
            raise ValueError(f"'{raw}' is not a language tag like 'en', 'ru' or 'pt-BR'")
        tag = tag.split("-")[0].lower() + tag[len(tag.split("-")[0]) :]
        if tag not in out:
            out.append(tag)
    return out


def _countries(values: list[str]) -> list[str]:
    out: list[str] = []
    for raw in values:
        code = raw.strip().upper()
        if not valid_country_code(code):
            raise ValueError(f"'{raw}' is not a country code (ISO 3166-1 alpha-2, XK for Kosovo)")
        if code not in out:
            out.append(code)
    return out


def _meeting_link(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not value.startswith("https://"):
        raise ValueError("must be an https:// link")
    return value.strip()


def _phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number; write it with the country code (+44 ...)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


TimeZone = Annotated[str, AfterValidator(_timezone)]
Languages = Annotated[list[str], Field(max_length=20), AfterValidator(_languages)]
Countries = Annotated[list[str], Field(max_length=300), AfterValidator(_countries)]
Topics = Annotated[list[ReportTopic], AfterValidator(_unique)]
Regions = Annotated[list[str], Field(max_length=50), AfterValidator(_unique)]
MeetingLink = Annotated[str | None, Field(max_length=500), AfterValidator(_meeting_link)]
Email = Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
Phone = Annotated[str | None, Field(max_length=40), AfterValidator(_phone)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpertIn(StrictModel):
    user_id: uuid.UUID = Field(description="an existing user account of role expert")
    public_name: str = Field(min_length=1, max_length=200)
    email: Email
    phone: Phone = None
    timezone: TimeZone
    languages: Languages = Field(default_factory=list)
    regions: Regions = Field(default_factory=list, description="region codes covered")
    countries: Countries = Field(default_factory=list, description="countries covered by name")
    topics: Topics = Field(default_factory=list)
    max_open_assignments: int = Field(10, ge=0, le=10_000)
    zoom_user: str | None = Field(None, min_length=1, max_length=320, description="e-mail or id")
    personal_meeting_link: MeetingLink = None
    bio: str | None = Field(None, max_length=5000)


class ExpertUpdate(StrictModel):
    public_name: str | None = Field(None, min_length=1, max_length=200)
    email: Email | None = None
    phone: Phone = None
    timezone: TimeZone | None = None
    languages: Languages | None = None
    regions: Regions | None = None
    countries: Countries | None = None
    topics: Topics | None = None
    max_open_assignments: int | None = Field(None, ge=0, le=10_000)
    zoom_user: str | None = Field(None, max_length=320)
    personal_meeting_link: MeetingLink = None
    bio: str | None = Field(None, max_length=5000)


class ExpertPublicOut(BaseModel):
    """What anyone signed in (other experts too) sees of an expert."""

    id: uuid.UUID
    public_name: str
    languages: list[str]
    regions: list[str]
    countries: list[str]
    topics: list[str]
    has_cv: bool


class ExpertOut(ExpertPublicOut):
    """Admins, staff and the expert themselves."""

    email: str
    phone: str | None
    timezone: str
    max_open_assignments: int
    open_assignments: int
    zoom_user: str | None
    personal_meeting_link: str | None
    cv_document_id: uuid.UUID | None
    bio: str | None
    is_active: bool
    available_now: bool
    last_assigned_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AbsenceIn(StrictModel):
    starts_at: SafeDateTime = Field(description="with a time zone offset")
    ends_at: SafeDateTime
    kind: AbsenceKind
    note: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> AbsenceIn:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a time zone offset, e.g. ...T09:00Z")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class AbsenceOut(BaseModel):
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    kind: AbsenceKind
    note: str | None


class RegionLeadIn(StrictModel):
    expert_id: uuid.UUID | None = Field(description="null removes the lead")


class RegionLeadOut(BaseModel):
    region_code: str
    name: str
    lead_expert_id: uuid.UUID | None
    lead_public_name: str | None


# Assignments --------------------------------------------------------------------------------


class CaseLimited(BaseModel):
    """What an offered expert sees before accepting."""

    reference: str
    country_of_origin: str | None
    country_name: str
    case_stage: CaseStage
    wants: list[Want]
    deadline: dt.date | None


class CaseContact(BaseModel):
    full_name: str | None
    contact_name: str | None
    law_firm_name: str | None
    email: str | None
    phone: str | None
    whatsapp: str | None
    preferred_channel: str


class CaseForExpert(CaseLimited):
    assignment_id: int
    assignment_status: AssignmentStatus
    respond_by: dt.datetime | None
    topics: list[ReportTopic] | None = Field(None, description="after accepting")
    language: str | None = Field(None, description="after accepting")
    contact: CaseContact | None = Field(None, description="after accepting")
    case_summary: str | None = Field(None, description="after accepting")


class AssignmentOut(BaseModel):
    id: int
    request_reference: str
    expert_id: uuid.UUID
    status: AssignmentStatus
    offered_at: dt.datetime
    respond_by: dt.datetime
    responded_at: dt.datetime | None
    reason: str | None


class DeclineIn(StrictModel):
    reason: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[a-z_]+$",
        description="a short code such as 'conflict_of_interest' or 'no_capacity'",
    )


class NotificationOut(BaseModel):
    id: int
    kind: str
    request_reference: str | None
    assignment_id: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None


def assignment_out(a: Assignment, reference: str) -> AssignmentOut:
    return AssignmentOut(
        id=a.id,
        request_reference=reference,
        expert_id=a.expert_id,
        status=a.status,
        offered_at=a.offered_at,
        respond_by=a.respond_by,
        responded_at=a.responded_at,
        reason=a.reason,
    )
