"""Regions and countries: the public lists for forms, and admin editing."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import pycountry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound
from app.models import CivicSpaceRating, Country, Region

# Kosovo has no official ISO code; XK is the widely used user-assigned one.
EXTRA_CODES = {"XK": "Kosovo"}


@lru_cache(maxsize=1)
def iso_countries() -> dict[str, str]:
    out = {c.alpha_2: getattr(c, "common_name", c.name) for c in pycountry.countries}
    out.update(EXTRA_CODES)
    return out


def valid_country_code(code: str) -> bool:
    return code in iso_countries()


def region_of(session: Session, country_code: str) -> str | None:
    """The region a country belongs to; None: the general pool."""
    return session.scalar(select(Country.region_code).where(Country.code == country_code))


# Regions ---------------------------------------------------------------------------------


def list_regions(session: Session) -> Sequence[Region]:
    return session.scalars(select(Region).order_by(Region.name)).all()


def get_region(session: Session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None:
        raise NotFound("No region with this code.")
    return region


def create_region(session: Session, *, code: str, name: str) -> Region:
    if session.get(Region, code) is not None:
        raise Conflict("A region with this code exists already.")
    region = Region(code=code, name=name)
    session.add(region)
    session.flush()
    return region


def update_region(session: Session, code: str, *, name: str | None) -> Region:
    region = get_region(session, code)
    if name is not None:
        region.name = name
    session.flush()
    return region


def delete_region(session: Session, code: str) -> None:
    region = get_region(session, code)
    members = session.scalar(
        select(func.count()).select_from(Country).where(Country.region_code == code)
    )
    if members:
        raise Conflict(
            f"{members} countries belong to this region; move them first.",
            details={"countries": int(members)},
        )
    session.delete(region)
    session.flush()


# Countries -------------------------------------------------------------------------------


def list_countries(session: Session) -> Sequence[Country]:
    return session.scalars(select(Country).order_by(Country.name)).all()


def public_countries(session: Session) -> list[tuple[str, str, str | None]]:
    """Every valid country for the form: the table's (with their region) and all others
    (region None: the general pool)."""
    table = {c.code: (c.name, c.region_code) for c in list_countries(session)}
    rows = [(code, name, region) for code, (name, region) in table.items()]
    rows += [(code, name, None) for code, name in iso_countries().items() if code not in table]
    return sorted(rows, key=lambda r: r[1])


def get_country(session: Session, code: str) -> Country:
    country = session.get(Country, code.upper())
    if country is None:
        raise NotFound("No country with this code in the table.")
    return country


def _check_region(session: Session, region_code: str | None) -> None:
    if region_code is not None and session.get(Region, region_code) is None:
        raise NotFound("No region with this code.")


def create_country(
    session: Session,
    *,
    code: str,
    name: str,
    region_code: str | None,
    civic_space_rating: CivicSpaceRating | None = None,
    rating_date: str | None = None,
    rating_source: str | None = None,
    staff_notes: str | None = None,
) -> Country:
    if session.get(Country, code) is not None:
        raise Conflict("This country is in the table already; edit it instead.")
    _check_region(session, region_code)
    country = Country(
        code=code,
        name=name,
        region_code=region_code,
        civic_space_rating=civic_space_rating,
        rating_date=rating_date,
        rating_source=rating_source,
        staff_notes=staff_notes,
    )
    session.add(country)
    session.flush()
    return country


def update_country(session: Session, code: str, changes: dict[str, object]) -> Country:
    """``changes`` holds only the fields the admin sent (None clears a field)."""
    country = get_country(session, code)
    if "region_code" in changes:
        _check_region(session, changes["region_code"])  # type: ignore[arg-type]
    for field, value in changes.items():
        setattr(country, field, value)
    session.flush()
    return country


def delete_country(session: Session, code: str) -> None:
    """Removes a country from the table: its requests go to the general pool from now on."""
    session.delete(get_country(session, code))
    session.flush()
