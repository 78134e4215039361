"""``/admin/people``: the admin console's people (admins only).

The list of users with their role and state (active, deactivated, invited and not yet signed
up, second factor on or off), filtered by role and state; invite someone; change a role,
deactivate, reactivate, resend an invite, reset a second factor. Every action is a plain POST
form with the CSRF token (no JavaScript) and calls the same service function as the API's
``/api/v1/admin/users`` routes (app/accounts/service.py), which records the same named audit
row (``users.invited``, ``users.role_changed``, ...); the audit middleware records the form's
POST as it records the API's. The service's guards hold here too: no deactivating oneself, and
the last active admin is neither deactivated nor demoted.

A refused action re-renders the list with an error summary on top and the message beside the
person (or the invite form's field); a done one redirects (POST-redirect-GET) to the list with
a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.accounts import service as accounts
from app.accounts.errors import EmailTaken, UserNotFound
from app.accounts.schemas import InviteIn
from app.core.deps import SessionDep
from app.core.errors import BadRequest
from app.core.validation import SafeStr
from app.models import Role, User
from app.web.auth import AdminPageUser, CsrfForm, not_found, page, redirect

router = APIRouter(include_in_schema=False)
PATH = "/admin/people"


def N_(text: str) -> str:
    return text


ROLES: dict[str, str] = {
    Role.staff.value: N_("Staff"),
    Role.expert.value: N_("Expert"),
    Role.admin.value: N_("Admin"),
}
STATES: dict[str, str] = {
    "active": N_("Active"),
    "invited": N_("Invited, no password yet"),
    "deactivated": N_("Deactivated"),
}
DONE: dict[str, str] = {
    "invited": N_("The invitation is sent."),
    "role": N_("The role is changed; their sessions are signed out."),
    "deactivated": N_("The account is deactivated; its sessions are signed out."),
    "reactivated": N_("The account is active again."),
    "resent": N_("A new invitation is sent; the earlier link no longer works."),
    "second_factor": N_(
        "The second factor is reset; they sign in with the password and can turn it on again."
    ),
}


def state_of(user: User) -> str:
    if not user.is_active:
        return "deactivated"
    if user.password_hash is None:
        return "invited"
    return "active"


def _field(form: FormData, name: str, limit: int = 400) -> str:
    return str(form.get(name) or "")[:limit].strip()


def _people(
    request: Request,
    db: SessionDep,
    user: User,
    *,
    role: str = "",
    state: str = "",
    status: int = 200,
    errors: dict[str, str] | None = None,
    invite: dict[str, str] | None = None,
    done_message: str | None = None,
) -> Response:
    people: Sequence[User] = accounts.list_users(db, role=Role(role) if role in ROLES else None)
    if state in STATES:
        people = [p for p in people if state_of(p) == state]
    ctx: dict[str, Any] = {
        "title": N_("People"),
        "people": people,
        "state_of": state_of,
        "roles": ROLES,
        "states": STATES,
        "role": role if role in ROLES else "",
        "state": state if state in STATES else "",
        "errors": errors or {},
        "invite": invite or {"display_name": "", "email": "", "role": Role.staff.value},
        "done_message": done_message,
    }
    return page(request, "staff/people.html", ctx, user=user, status=status)


@router.get(PATH)
def people(
    request: Request,
    db: SessionDep,
    user: AdminPageUser,
    role: Annotated[SafeStr, Query(max_length=20)] = "",
    state: Annotated[SafeStr, Query(max_length=20)] = "",
    done: Annotated[SafeStr, Query(max_length=20)] = "",
) -> Response:
    message = DONE.get(done)
    return _people(request, db, user, role=role, state=state, done_message=message)


@router.post(f"{PATH}/invite")
def invite(request: Request, db: SessionDep, user: AdminPageUser, form: CsrfForm) -> Response:
    answers = {
        "display_name": _field(form, "display_name", 300),
        "email": _field(form, "email", 400),
        "role": _field(form, "role", 20),
    }
    errors: dict[str, str] = {}
    body: InviteIn | None = None
    try:
        body = InviteIn.model_validate(answers)
    except ValidationError as exc:
        errors = _invite_errors(exc)
    if body is not None:
        try:
            accounts.invite_user(
                db, email=body.email, display_name=body.display_name, role=body.role, by=user
            )
        except EmailTaken:
            errors["email"] = N_("Someone has an account with this e-mail address already.")
    if errors:
        return _people(request, db, user, status=422, errors=errors, invite=answers)
    return redirect(f"{PATH}?done=invited")


INVITE_MESSAGES = {
    "display_name": N_("Enter their name (at most 200 characters)."),
    "email": N_("Enter an e-mail address like name@example.org."),
    "role": N_("Choose staff, expert or admin."),
}


def _invite_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in exc.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        errors[name] = INVITE_MESSAGES.get(name, N_("Check this field."))
    return errors


class _RoleIn(BaseModel):
    role: Role


def _act(
    request: Request,
    db: SessionDep,
    user: User,
    user_id: uuid.UUID,
    done: str,
    action: Any,
) -> Response:
    """Run one action on a person: a refusal is shown beside them, a success redirects."""
    try:
        action()
    except UserNotFound:
        return not_found(request, user)
    except BadRequest as exc:
        errors = {f"person-{user_id}": exc.message}
        return _people(request, db, user, status=400, errors=errors)
    return redirect(f"{PATH}?done={done}#person-{user_id}")


@router.post(PATH + "/{user_id}/role")
def change_role(
    request: Request, db: SessionDep, user_id: uuid.UUID, user: AdminPageUser, form: CsrfForm
) -> Response:
    try:
        role = _RoleIn.model_validate({"role": _field(form, "role", 20)}).role
    except ValidationError:
        errors = {f"person-{user_id}": N_("Choose staff, expert or admin.")}
        return _people(request, db, user, status=422, errors=errors)
    return _act(
        request,
        db,
        user,
        user_id,
        "role",
        lambda: accounts.update_user(db, user_id, display_name=None, role=role, by=user),
    )


@router.post(PATH + "/{user_id}/deactivate")
def deactivate(
    request: Request, db: SessionDep, user_id: uuid.UUID, user: AdminPageUser, _f: CsrfForm
) -> Response:
    return _act(
        request,
        db,
        user,
        user_id,
        "deactivated",
        lambda: accounts.deactivate_user(db, user_id, by=user),
    )


@router.post(PATH + "/{user_id}/reactivate")
def reactivate(
    request: Request, db: SessionDep, user_id: uuid.UUID, user: AdminPageUser, _f: CsrfForm
) -> Response:
    return _act(
        request,
        db,
        user,
        user_id,
        "reactivated",
        lambda: accounts.reactivate_user(db, user_id, by=user),
    )


@router.post(PATH + "/{user_id}/resend-invite")
def resend_invite(
    request: Request, db: SessionDep, user_id: uuid.UUID, user: AdminPageUser, _f: CsrfForm
) -> Response:
    return _act(
        request,
        db,
        user,
        user_id,
        "resent",
        lambda: accounts.resend_invite(db, user_id, by=user),
    )


@router.post(PATH + "/{user_id}/reset-second-factor")
def reset_second_factor(
    request: Request, db: SessionDep, user_id: uuid.UUID, user: AdminPageUser, _f: CsrfForm
) -> Response:
    return _act(
        request,
        db,
        user,
        user_id,
        "second_factor",
        lambda: accounts.reset_second_factor(db, user_id, by=user),
    )
