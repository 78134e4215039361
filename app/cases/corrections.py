"""Correcting a request's fields from the case (countries, language, time zone, preferred
channel, contact details) and routing it again.

Contact details live in the encrypted ``pii`` blob (the e-mail also in the keyed look-up hash);
countries and language are clear columns (the region follows the country of origin). The history
row names the fields that changed; their old and new values are in its encrypted part only.
Routing runs again when the country of origin or the language changed (or when asked):
``app.flows.request.correct`` asks ``wants_reroute`` and reroutes through the reassignment flow,
so a booked consultation follows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.cases.access import HISTORY_KIND
from app.cases.errors import CaseErased, InvalidCaseInput
from app.core.time import now
from app.core.validation import normalise_email
from app.intake import keys
from app.intake.records import add_history, reveal_pii
from app.intake.schemas import _country, _language, _phone, _timezone
from app.intake.status import FINAL
from app.models import ContactChannel, Country, IntakeRequest, User

#: Clear columns that may be corrected.
COLUMNS = ("country_of_origin", "country_of_residence", "language", "timezone", "preferred_channel")
#: Fields of the encrypted blob that may be corrected.
CONTACTS = ("email", "phone", "whatsapp")
FIELDS = COLUMNS + CONTACTS
REROUTE_ON = ("country_of_origin", "language")


def _clean(field: str, value: Any, hint: str) -> Any:
    if field in CONTACTS and (value is None or str(value).strip() == ""):
        if field == "email":
            raise InvalidCaseInput("email", "is required")
        return None
    if value is None or not isinstance(value, str):
        raise InvalidCaseInput(field, "is required")
    try:
        if field in ("country_of_origin", "country_of_residence"):
            return _country(value)
        if field == "language":
            return _language(value)
        if field == "timezone":
            return _timezone(value)
        if field == "preferred_channel":
            return ContactChannel(value.strip())
        if field == "email":
            return normalise_email(value)
        return _phone(value, hint, field)
    except ValueError as exc:
        message = str(exc) if field != "preferred_channel" else "must be email, phone or whatsapp"
        raise InvalidCaseInput(field, message) from None


def correct(
    session: Session,
    req: IntakeRequest,
    user: User,
    changes: dict[str, Any],
) -> list[str]:
    """Apply ``changes`` (only the fields named in ``FIELDS``; 422 naming an unknown or bad
    field); returns the names of the fields that really changed."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidCaseInput(unknown[0], "cannot be corrected here")
    pii = reveal_pii(req)
    if pii is None:
        raise CaseErased()
    residence = changes.get("country_of_residence", req.country_of_residence)
    hint = _clean("country_of_residence", residence, "") if residence else None
    cleaned = {f: _clean(f, v, hint or "") for f, v in changes.items()}
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in cleaned.items():
        old = getattr(req, field) if field in COLUMNS else pii.get(field)
        if old != value:
            before[field] = old.value if isinstance(old, ContactChannel) else old
            after[field] = value.value if isinstance(value, ContactChannel) else value
    channel = cleaned.get("preferred_channel", req.preferred_channel)
    if channel in (ContactChannel.phone, ContactChannel.whatsapp):
        number = after[channel.value] if channel.value in after else pii.get(channel.value)
        if not number:
            raise InvalidCaseInput(
                channel.value, f"is required when the preferred channel is {channel.value}"
            )
    if not after:
        return []
    dk = keys.data_key(req)
    if dk is None:
        raise CaseErased()
    for field in COLUMNS:
        if field in after:
            setattr(req, field, cleaned[field])
    if "country_of_origin" in after:
        country = session.get(Country, req.country_of_origin)
        req.region_code = country.region_code if country is not None else None
    if any(f in after for f in CONTACTS):
        for field in CONTACTS:
            if field in after:
                pii[field] = after[field]
        req.pii_enc = keys.seal_json(dk, "pii", req.id, pii)
        if "email" in after:
            req.email_lookup = keys.email_lookup(session, after["email"])
    current = now()
    row = add_history(
        session,
        req,
        actor=f"user:{user.id}",
        action="fields_corrected",
        details={"fields": sorted(after)},
        at=current,
    )
    row.data_enc = keys.seal_json(dk, HISTORY_KIND, req.id, {"before": before, "after": after})
    session.flush()
    return sorted(after)


def wants_reroute(req: IntakeRequest, changed: list[str], reroute: bool | None) -> bool:
    """Whether a correction that changed ``changed`` routes the request again: ``reroute``
    None when the country of origin or the language changed, True/False always/never; never
    when nothing changed or the request has ended."""
    if not changed or req.status in FINAL:
        return False
    return reroute if reroute is not None else any(f in changed for f in REROUTE_ON)
