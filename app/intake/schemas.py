"""The public form and the requester's views.

Field order matters: cross-field rules (the law firm's name, the preferred channel's contact,
the phone's country hint, the deadline in the requester's zone) are field validators that read
fields validated before them, so every problem is reported on its own field in one answer.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import zoneinfo
from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.core.time import now
from app.core.validation import SafeDate, normalise_email
from app.intake.sla import SlaState
from app.models import CaseStage, ContactChannel, RequesterType, RequestStatus
from app.reference.service import valid_country_code


class Want(enum.StrEnum):
    sample_report = "sample_report"
    expert_cv = "expert_cv"
    consultation = "consultation"


class ReportTopic(enum.StrEnum):
    freedom_of_speech = "freedom_of_speech"
    political_repression = "political_repression"
    corruption = "corruption"
    war_crimes = "war_crimes"
    ethnic_persecution = "ethnic_persecution"
    religious_persecution = "religious_persecution"
    social_status_persecution = "social_status_persecution"
    gender_based_violence = "gender_based_violence"
    lgbt_persecution = "lgbt_persecution"
    forced_conscription = "forced_conscription"
    cartel_gang_violence = "cartel_gang_violence"
    statelessness = "statelessness"
    detention_conditions = "detention_conditions"


class NewsletterTopic(enum.StrEnum):
    """What updates a requester may sign up for: the report topics and the organisation's news."""

    freedom_of_speech = "freedom_of_speech"
    political_repression = "political_repression"
    corruption = "corruption"
    war_crimes = "war_crimes"
    ethnic_persecution = "ethnic_persecution"
    religious_persecution = "religious_persecution"
    social_status_persecution = "social_status_persecution"
    gender_based_violence = "gender_based_violence"
    lgbt_persecution = "lgbt_persecution"
    forced_conscription = "forced_conscription"
    cartel_gang_violence = "cartel_gang_violence"
    statelessness = "statelessness"
    detention_conditions = "detention_conditions"
    organisation_news = "organisation_news"


_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _country(value: str) -> str:
    code = value.strip().upper()
    if not valid_country_code(code):
        raise ValueError(
            "is not a known country code; use the two-letter ISO code, e.g. 'SY' for Syria "
            "('XK' for Kosovo)"
        )
    return code


def _language(value: str) -> str:
    tag = value.strip()
    if not _BCP47.match(tag) or len(tag) > 35:
        raise ValueError("must be a language tag like 'en', 'ru' or 'pt-BR'")
    parts = tag.split("-")
    out = [parts[0].lower()]
    for p in parts[1:]:
        out.append(p.upper() if len(p) == 2 else (p.title() if len(p) == 4 else p.lower()))
    return "-".join(out)


def _timezone(value: str) -> str:
    name = value.strip()
    if name not in _zones():
        raise ValueError("must be a time zone name like 'Europe/London' or 'Asia/Bishkek'")
    return name


def _phone(value: str | None, hint: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else hint)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        example = "e.g. +44 20 7946 0958"
        raise ValueError(
            f"is not a valid phone number; write it with the country code ({example})"
            if field == "whatsapp" or hint is None
            else f"is not a valid phone number for your country of residence; "
            f"add the country code if it is from another country ({example})"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _name(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("is required; write the name")
    return text


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_name)]
CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitIn(StrictModel):
    requester_type: RequesterType
    law_firm_name: str | None = Field(
        None, max_length=200, validate_default=True, description="required with law_firm"
    )
    full_name: Name = Field(description="the applicant (with law_firm: the client)")
    contact_name: str | None = Field(
        None, max_length=200, description="with law_firm: the lawyer, whose contact follows"
    )
    preferred_channel: ContactChannel
    country_of_residence: CountryCode
    email: Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]
    phone: str | None = Field(
        None,
        max_length=40,
        validate_default=True,
        description="stored as E.164; a national number is read for country_of_residence",
    )
    whatsapp: str | None = Field(None, max_length=40, validate_default=True)
    language: Annotated[str, AfterValidator(_language)] = Field("en", description="BCP 47")
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(description="IANA name")
    country_of_origin: CountryCode = Field(description="the country the person fears return to")
    case_stage: CaseStage
    deadline: SafeDate | None = Field(None, description="not in the past")
    topics: list[ReportTopic] = Field(default_factory=list, max_length=len(ReportTopic))
    case_summary: str | None = Field(None, max_length=5000)
    wants: list[Want] = Field(description="at least one of sample_report, expert_cv, consultation")
    discreet: bool = Field(False, description="neutral e-mail subjects and sender name")
    consent_data_processing: bool = Field(description="must be true")
    consent_updates: list[NewsletterTopic] = Field(default_factory=list, max_length=32)

    @field_validator("law_firm_name")
    @classmethod
    def _law_firm(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = v.strip() if v else None
        kind = info.data.get("requester_type")
        if kind == RequesterType.law_firm and not v:
            raise ValueError("is required when the request comes from a law firm")
        if kind == RequesterType.applicant and v:
            raise ValueError("is only for requests from a law firm; leave it out")
        return v

    @field_validator("contact_name")
    @classmethod
    def _contact_name(cls, v: str | None) -> str | None:
        return v.strip() or None if v else None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        return v

    @field_validator("phone", "whatsapp")
    @classmethod
    def _phones(cls, v: str | None, info: ValidationInfo) -> str | None:
        field = info.field_name or "phone"
        parsed = _phone(v, info.data.get("country_of_residence"), field)
        if parsed is None and info.data.get("preferred_channel") == ContactChannel(field):
            raise ValueError(f"is required when the preferred channel is {field}")
        return parsed

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        if v is None:
            return v
        zone = info.data.get("timezone")
        today = now().astimezone(zoneinfo.ZoneInfo(zone) if zone else dt.UTC).date()
        if v < today:
            raise ValueError("is in the past; give today's date or a later one")
        return v

    @field_validator("wants")
    @classmethod
    def _wants(cls, v: list[Want]) -> list[Want]:
        unique = list(dict.fromkeys(v))
        if not unique:
            raise ValueError("choose at least one of: sample_report, expert_cv, consultation")
        return unique

    @field_validator("topics")
    @classmethod
    def _topics(cls, v: list[ReportTopic]) -> list[ReportTopic]:
        return list(dict.fromkeys(v))

    @field_validator("consent_data_processing")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        if v is not True:
            raise ValueError(
                "must be true: we can only handle your request with your consent to process "
                "its data as the privacy notice describes"
            )
        return v


class Links(BaseModel):
    status_page: str = Field(description="the requester's page (the token is kept in a cookie)")
    status_api: str
    booking_page: str | None = Field(description="set when a consultation was asked for")


class SubmitOut(BaseModel):
    reference: str = Field(description="8 characters, Crockford base32; quote it in e-mails")
    status: RequestStatus
    received_at: dt.datetime
    first_response_due_at: dt.datetime
    access_token: str = Field(
        description="the requester's link token (prefix `rl_`), shown only in this reply; "
        "send it as `Authorization: Bearer <access_token>`"
    )
    links: Links


class RecoverIn(StrictModel):
    reference: str = Field(min_length=4, max_length=20)
    email: Annotated[str, Field(max_length=320), AfterValidator(normalise_email)]


class Accepted(BaseModel):
    detail: str


class SlaOut(BaseModel):
    """The first-response clock (the one-hour promise); computed, never stored."""

    state: SlaState = Field(
        description="awaiting (on track), due_soon (less than the due-soon margin left), met "
        "(first response at or before the deadline), breached (first response after it, or none "
        "and the deadline has passed, also when the request ended at or after it), ended (the "
        "request ended before its deadline without a response: no outcome, counted apart)"
    )
    first_response_due_at: dt.datetime = Field(description="the deadline, stored at arrival")
    first_responded_at: dt.datetime | None = Field(
        description="the first contact with the requester that counts; null: none yet"
    )
    ended_at: dt.datetime | None = Field(
        default=None,
        description="when the request ended (final status, or merged into another); null: open",
    )


class ExpertOut(BaseModel):
    public_name: str


class RequestView(BaseModel):
    """What a requester sees of their own request: nothing personal beyond what they asked."""

    reference: str
    status: RequestStatus
    received_at: dt.datetime
    wants: list[Want]
    topics: list[ReportTopic]
    case_stage: CaseStage
    deadline: dt.date | None
    sla: SlaOut
    expert: ExpertOut | None
    consultation: None = Field(
        None, description="the booked consultation, once booking exists (a later issue)"
    )
