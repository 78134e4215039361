"""Who is calling, and may they: one dependency per role check, used by every router.

CurrentUser      any signed-in user (admin, staff or expert)
RequireStaff     staff or admin
RequireAdmin     admin only
RequireExpert    expert only (admins act on experts through the admin API)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.accounts import service
from app.core.deps import SessionDep
from app.core.errors import Forbidden, NotAuthenticated
from app.models import Role, User, UserSession

SESSION_COOKIE = "intake_session"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="UserToken",
    description="`user_token` from POST /api/v1/auth/login (prefix `ut_`).",
)


def _token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie
    raise NotAuthenticated("Sign in first: send Authorization: Bearer <user_token>.")


def current_session(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> UserSession:
    user, user_session = service.authenticate(session, _token(request, credentials))
    request.state.user = user
    return user_session


def current_user(
    request: Request, _session: Annotated[UserSession, Depends(current_session)]
) -> User:
    user: User = request.state.user
    return user


def require_roles(*roles: Role) -> Callable[[User], User]:
    allowed = ", ".join(r.value for r in roles)

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles:
            raise Forbidden(f"Your role ({user.role.value}) cannot do this; needs: {allowed}.")
        return user

    return check


CurrentSession = Annotated[UserSession, Depends(current_session)]
CurrentUser = Annotated[User, Depends(current_user)]
RequireAdmin = Annotated[User, Depends(require_roles(Role.admin))]
RequireStaff = Annotated[User, Depends(require_roles(Role.admin, Role.staff))]
RequireExpert = Annotated[User, Depends(require_roles(Role.expert))]
