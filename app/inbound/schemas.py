from __future__ import annotations

from pydantic import BaseModel, Field

from app.intake.sla import SlaState


class TakenOut(BaseModel):
    action: str = Field(
        description="created | follow_up | reply | delivery_report | ignored | duplicate"
    )
    reason: str | None = Field(
        None, description="why it was ignored (auto_reply, mailing_list, bounce, own_mail, ...)"
    )


class TriageIn(BaseModel):
    country_of_origin: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    country_of_residence: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    language: str = Field(min_length=2, max_length=35, description="BCP 47 tag, e.g. 'en'")


class TriageOut(BaseModel):
    reference: str
    country_of_origin: str | None
    country_of_residence: str | None
    language: str
    region_code: str | None = Field(description="null: the general pool")
    assigned_expert_id: str | None = Field(description="set when routing found an expert")
    sla_state: SlaState
