"""Errors of routing: an offer that can no longer be answered, an expert who cannot take a
request, an offer link that is not valid."""

from __future__ import annotations

from app.core.errors import AppError, Conflict


class OfferClosed(Conflict):
    code = "offer_closed"


class ExpertCannotTake(Conflict):
    code = "expert_cannot_take"


class InvalidOfferLink(AppError):
    status_code = 400
    code = "invalid_offer_link"
