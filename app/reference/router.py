"""Regions and countries: public lists for forms, profiles for signed-in users, admin editing."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.accounts.deps import CurrentUser, RequireAdmin
from app.core.deps import SessionDep
from app.core.errors import BadRequest, error_responses
from app.core.validation import SafeStr
from app.reference import service
from app.reference.schemas import (
    CountryIn,
    CountryProfile,
    CountryUpdate,
    PublicCountryOut,
    RegionIn,
    RegionOut,
    RegionUpdate,
)

public_router = APIRouter(prefix="/api/v1", tags=["reference (public)"])
admin_router = APIRouter(prefix="/api/v1/admin", tags=["admin: reference data"])


@public_router.get("/regions", response_model=list[RegionOut], summary="Regions of expertise")
def regions(session: SessionDep) -> list[RegionOut]:
    return [RegionOut.model_validate(r) for r in service.list_regions(session)]


@public_router.get(
    "/countries",
    response_model=list[PublicCountryOut],
    summary="Countries for the form",
    description="Every valid country (ISO 3166-1 alpha-2, Kosovo `XK`). `region` is null for "
    "a country outside the table: its requests go to the general triage pool.",
)
def countries(session: SessionDep) -> list[PublicCountryOut]:
    return [
        PublicCountryOut(code=code, name=name, region=region)
        for code, name, region in service.public_countries(session)
    ]


@public_router.get(
    "/countries/{code}/profile",
    response_model=CountryProfile,
    summary="A country's profile (staff, experts, admins)",
    responses=error_responses(401, 404),
)
def country_profile(code: SafeStr, session: SessionDep, _user: CurrentUser) -> CountryProfile:
    return CountryProfile.model_validate(service.get_country(session, code))


# Admin -------------------------------------------------------------------------------------


@admin_router.get("/regions", response_model=list[RegionOut], responses=error_responses(401, 403))
def admin_regions(session: SessionDep, _admin: RequireAdmin) -> list[RegionOut]:
    return [RegionOut.model_validate(r) for r in service.list_regions(session)]


@admin_router.post(
    "/regions",
    response_model=RegionOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 422),
)
def create_region(body: RegionIn, session: SessionDep, _admin: RequireAdmin) -> RegionOut:
    return RegionOut.model_validate(service.create_region(session, code=body.code, name=body.name))


@admin_router.patch(
    "/regions/{code}", response_model=RegionOut, responses=error_responses(401, 403, 404, 422)
)
def update_region(
    code: SafeStr, body: RegionUpdate, session: SessionDep, _admin: RequireAdmin
) -> RegionOut:
    return RegionOut.model_validate(service.update_region(session, code, name=body.name))


@admin_router.delete(
    "/regions/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a region that no country belongs to",
    responses=error_responses(401, 403, 404, 409),
)
def delete_region(code: SafeStr, session: SessionDep, _admin: RequireAdmin) -> None:
    service.delete_region(session, code)


@admin_router.get(
    "/countries", response_model=list[CountryProfile], responses=error_responses(401, 403)
)
def admin_countries(session: SessionDep, _admin: RequireAdmin) -> list[CountryProfile]:
    return [CountryProfile.model_validate(c) for c in service.list_countries(session)]


@admin_router.post(
    "/countries",
    response_model=CountryProfile,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 422),
)
def create_country(body: CountryIn, session: SessionDep, _admin: RequireAdmin) -> CountryProfile:
    return CountryProfile.model_validate(service.create_country(session, **body.model_dump()))


@admin_router.patch(
    "/countries/{code}",
    response_model=CountryProfile,
    summary="Edit a country's profile: region, civic-space rating, date, source, notes",
    responses=error_responses(400, 401, 403, 404, 422),
)
def update_country(
    code: SafeStr, body: CountryUpdate, session: SessionDep, _admin: RequireAdmin
) -> CountryProfile:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise BadRequest("A country's name cannot be empty.")
    return CountryProfile.model_validate(service.update_country(session, code, changes))


@admin_router.delete(
    "/countries/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a country from the table (its requests go to the general pool)",
    responses=error_responses(401, 403, 404),
)
def delete_country(code: SafeStr, session: SessionDep, _admin: RequireAdmin) -> None:
    service.delete_country(session, code)
