from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.models import CivicSpaceRating
from app.reference.service import valid_country_code


def _code(value: str) -> str:
    code = value.strip().upper()
    if not valid_country_code(code):
        raise ValueError("is not an ISO 3166-1 alpha-2 country code (Kosovo: XK)")
    return code


CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_code)]
RegionCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
RatingDate = Annotated[
    str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$", examples=["2023-12"])
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str


class RegionIn(StrictModel):
    code: RegionCode
    name: str = Field(min_length=1, max_length=200)


class RegionUpdate(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=200)


class PublicCountryOut(BaseModel):
    code: str
    name: str
    region: str | None = Field(description="region code; null: the general triage pool")


class CountryProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    region_code: str | None
    civic_space_rating: CivicSpaceRating | None
    rating_date: str | None
    rating_source: str | None
    staff_notes: str | None


class CountryIn(StrictModel):
    code: CountryCode
    name: str = Field(min_length=1, max_length=200)
    region_code: RegionCode | None = None
    civic_space_rating: CivicSpaceRating | None = None
    rating_date: RatingDate | None = None
    rating_source: str | None = Field(None, max_length=200)
    staff_notes: str | None = Field(None, max_length=10_000)


class CountryUpdate(StrictModel):
    """Send only what changes; null clears a field (a null region: the general pool)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    region_code: RegionCode | None = None
    civic_space_rating: CivicSpaceRating | None = None
    rating_date: RatingDate | None = None
    rating_source: str | None = Field(None, max_length=200)
    staff_notes: str | None = Field(None, max_length=10_000)
