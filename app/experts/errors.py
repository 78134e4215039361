from __future__ import annotations

from app.core.errors import Conflict, NotFound


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
