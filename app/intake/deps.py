"""The requester's link token: ``Authorization: Bearer rl_...`` opens one request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.deps import SessionDep
from app.core.validation import SafeStr
from app.intake import service
from app.models import IntakeRequest

requester_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="RequesterLink",
    description="`access_token` from POST /api/v1/requests (prefix `rl_`).",
)


def requester_request(
    reference: SafeStr,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(requester_bearer)],
) -> IntakeRequest:
    token = credentials.credentials if credentials is not None else None
    return service.authenticate_requester(session, reference, token)


RequesterRequest = Annotated[IntakeRequest, Depends(requester_request)]
