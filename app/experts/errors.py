from __future__ import annotations

from app.core.errors import AppError, Conflict, NotFound


class ExpertNotFound(NotFound):
    code = "expert_not_found"


class AssignmentNotFound(NotFound):
    code = "assignment_not_found"


class CaseNotFound(NotFound):
    """A request the caller is not assigned to: 404, exactly as if it did not exist."""

    code = "request_not_found"


class NotAnExpertAccount(Conflict):
    code = "not_an_expert_account"


class ProfileExists(Conflict):
    code = "expert_profile_exists"


class OfferClosed(Conflict):
    code = "offer_closed"


class ExpertCannotTake(Conflict):
    code = "expert_cannot_take"


class InvalidOfferLink(AppError):
    status_code = 400
    code = "invalid_offer_link"
