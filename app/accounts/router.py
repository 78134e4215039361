"""Sign-in (``/api/v1/auth``) and user administration (``/api/v1/admin/users``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.accounts import service
from app.accounts.deps import CurrentSession, CurrentUser, RequireAdmin
from app.accounts.schemas import (
    Accepted,
    AccountSettingsIn,
    ChangePasswordIn,
    InviteIn,
    LoginIn,
    LoginOut,
    PasswordResetIn,
    RecoveryCodesIn,
    RecoveryCodesOut,
    SessionOut,
    SetPasswordIn,
    TotpConfirmIn,
    TotpConfirmOut,
    TotpDisableIn,
    TotpSetupOut,
    UserOut,
    UserUpdate,
)
from app.core.deps import ClientDep, SessionDep
from app.core.errors import error_responses
from app.models import Role, User, UserSession

auth_router = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])
admin_router = APIRouter(prefix="/api/v1/admin/users", tags=["admin: users"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        is_active=user.is_active,
        totp_enabled=user.totp_enabled,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        timezone=user.timezone,
        language=user.language,
    )


@auth_router.post(
    "/login",
    response_model=LoginOut,
    summary="Sign in (staff, experts, admins)",
    description="Returns a bearer `user_token` tied to a revocable session. Repeated failures "
    "from one address are slowed, then locked: `429` with `Retry-After`. Too many failures for "
    "the account from anywhere: `429` with code `account_throttled`, and the password alone is "
    "not checked; send it with `totp_code` (a valid code signs in and lifts that lock), or reset "
    "the password. With the second factor on, a missing `totp_code` answers `401` with code "
    "`second_factor_required`. A code signs in once.",
    responses=error_responses(401, 422, 429),
)
def login(body: LoginIn, session: SessionDep, client: ClientDep) -> LoginOut:
    result = service.login(
        session,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    return LoginOut(
        user_token=result.token, expires_at=result.session.expires_at, user=user_out(result.user)
    )


@auth_router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out: revoke this session",
    responses=error_responses(401),
)
def logout(session: SessionDep, user_session: CurrentSession) -> None:
    service.logout(session, user_session)


@auth_router.get("/me", response_model=UserOut, summary="Who am I", responses=error_responses(401))
def me(user: CurrentUser) -> UserOut:
    return user_out(user)


@auth_router.patch(
    "/me",
    response_model=UserOut,
    summary="Set my time zone and language",
    description="`timezone` (IANA, e.g. `Asia/Bishkek`) is the zone every page and e-mail shows "
    "times in; `language` (`en`, `ru`, `es`, `ar`) the language of the pages. An expert's zone is "
    "their profile's zone too. An unknown zone or language answers `422` naming the field.",
    responses=error_responses(401, 422),
)
def update_me(body: AccountSettingsIn, session: SessionDep, user: CurrentUser) -> UserOut:
    changed = service.update_settings(session, user, timezone=body.timezone, language=body.language)
    return user_out(changed)


@auth_router.post(
    "/password-reset",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for a password-reset link",
    description="Always answers the same, whether or not the address has an account.",
    responses=error_responses(422),
)
def password_reset(body: PasswordResetIn, session: SessionDep) -> Accepted:
    service.request_password_reset(session, body.email)
    return Accepted(detail="If this address has an account, a link is on its way.")


@auth_router.post(
    "/set-password",
    response_model=UserOut,
    summary="Set a password with an invite or reset link",
    description="The token comes from the e-mailed link; it works once. Signs out every "
    "existing session of the account.",
    responses=error_responses(400, 422),
)
def set_password(body: SetPasswordIn, session: SessionDep) -> UserOut:
    return user_out(service.set_password_with_token(session, body.token, body.password))


@auth_router.post(
    "/change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password (signs out all sessions)",
    description="Every session of the account ends, this one too: sign in again with the new "
    "password. A wrong current password answers `401` `invalid_credentials`.",
    responses=error_responses(401, 422),
)
def change_password(body: ChangePasswordIn, session: SessionDep, user: CurrentUser) -> None:
    service.change_password(session, user, current=body.current_password, new=body.new_password)


@auth_router.post(
    "/totp/setup",
    response_model=TotpSetupOut,
    summary="Start turning on the second factor",
    responses=error_responses(400, 401),
)
def totp_setup(session: SessionDep, user: CurrentUser) -> TotpSetupOut:
    secret, uri = service.totp_setup(session, user)
    return TotpSetupOut(secret=secret, provisioning_uri=uri)


@auth_router.post(
    "/totp/confirm",
    response_model=TotpConfirmOut,
    summary="Confirm the second factor with a first code",
    description="Turns the second factor on and answers with ten one-time recovery codes, "
    "shown only here (keep them offline; each signs in once in place of the 6-digit code). "
    "A wrong code answers `400`.",
    responses=error_responses(400, 401, 422),
)
def totp_confirm(body: TotpConfirmIn, session: SessionDep, user: CurrentUser) -> TotpConfirmOut:
    codes = service.totp_confirm(session, user, body.code)
    return TotpConfirmOut(**user_out(user).model_dump(), recovery_codes=codes)


@auth_router.post(
    "/totp/disable",
    response_model=UserOut,
    summary="Turn off my second factor (to reset it: turn it off, then on again)",
    description="Needs the password and a current 6-digit code or a recovery code; the recovery "
    "codes are dropped too. Wrong password or code: `401` `invalid_credentials` (codes are "
    "counted by the sign-in's code throttle). Already off: `400`.",
    responses=error_responses(400, 401, 422),
)
def totp_disable(body: TotpDisableIn, session: SessionDep, user: CurrentUser) -> UserOut:
    service.totp_disable(session, user, password=body.password, code=body.code)
    return user_out(user)


@auth_router.post(
    "/recovery-codes",
    response_model=RecoveryCodesOut,
    summary="Generate new recovery codes (the old ones stop working)",
    description="Needs the current password (`401` `invalid_credentials` when wrong) and the "
    "second factor on (`400` otherwise). The codes are shown only in this answer.",
    responses=error_responses(400, 401, 422),
)
def recovery_codes(
    body: RecoveryCodesIn, session: SessionDep, user: CurrentUser
) -> RecoveryCodesOut:
    return RecoveryCodesOut(
        recovery_codes=service.regenerate_recovery_codes(session, user, password=body.password)
    )


def session_out(row: UserSession, current: UserSession) -> SessionOut:
    return SessionOut(
        id=row.id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        user_agent=row.user_agent,
        ip_address=row.ip_address,
        current=row.id == current.id,
    )


@auth_router.get(
    "/sessions",
    response_model=list[SessionOut],
    summary="My live sessions (newest first)",
    responses=error_responses(401),
)
def sessions(session: SessionDep, user: CurrentUser, current: CurrentSession) -> list[SessionOut]:
    return [session_out(row, current) for row in service.live_sessions(session, user)]


@auth_router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End one of my sessions (its token stops working)",
    description="Another user's session, an ended one or an unknown id: `404` `session_not_found`.",
    responses=error_responses(401, 404, 422),
)
def end_session(
    session_id: uuid.UUID, session: SessionDep, user: CurrentUser, _s: CurrentSession
) -> None:
    service.end_own_session(session, user, session_id)


@auth_router.post(
    "/sessions/end-others",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out everywhere else (every session but this one)",
    responses=error_responses(401),
)
def end_other_sessions(session: SessionDep, user: CurrentUser, current: CurrentSession) -> None:
    service.end_other_sessions(session, user, current)


# Admin ----------------------------------------------------------------------------------------


@admin_router.get(
    "", response_model=list[UserOut], summary="List users", responses=error_responses(401, 403)
)
def list_users(
    session: SessionDep, _admin: RequireAdmin, role: Role | None = None
) -> list[UserOut]:
    return [user_out(u) for u in service.list_users(session, role=role)]


@admin_router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="Invite a user",
    description="Creates the account without a password and e-mails a one-time link to set one.",
    responses=error_responses(401, 403, 409, 422),
)
def invite(body: InviteIn, session: SessionDep, admin: RequireAdmin) -> UserOut:
    return user_out(
        service.invite_user(
            session, email=body.email, display_name=body.display_name, role=body.role, by=admin
        )
    )


@admin_router.patch(
    "/{user_id}",
    response_model=UserOut,
    summary="Change a user's name or role (a role change signs them out)",
    description="The last active admin cannot be made staff or expert: `400`.",
    responses=error_responses(400, 401, 403, 404, 422),
)
def update(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, admin: RequireAdmin
) -> UserOut:
    return user_out(
        service.update_user(
            session, user_id, display_name=body.display_name, role=body.role, by=admin
        )
    )


@admin_router.post(
    "/{user_id}/deactivate",
    response_model=UserOut,
    summary="Deactivate a user and revoke their sessions",
    description="Refused with `400`: one's own account, and the last active admin.",
    responses=error_responses(400, 401, 403, 404),
)
def deactivate(user_id: uuid.UUID, session: SessionDep, admin: RequireAdmin) -> UserOut:
    return user_out(service.deactivate_user(session, user_id, by=admin))


@admin_router.post(
    "/{user_id}/reactivate",
    response_model=UserOut,
    summary="Reactivate a user",
    responses=error_responses(401, 403, 404),
)
def reactivate(user_id: uuid.UUID, session: SessionDep, admin: RequireAdmin) -> UserOut:
    return user_out(service.reactivate_user(session, user_id, by=admin))


@admin_router.post(
    "/{user_id}/reset-second-factor",
    response_model=UserOut,
    summary="Turn off a user's second factor (lost device) and revoke their sessions",
    responses=error_responses(401, 403, 404),
)
def reset_second_factor(user_id: uuid.UUID, session: SessionDep, admin: RequireAdmin) -> UserOut:
    return user_out(service.reset_second_factor(session, user_id, by=admin))


@admin_router.post(
    "/{user_id}/resend-invite",
    response_model=UserOut,
    summary="Send a new invite link (the old one stops working)",
    responses=error_responses(400, 401, 403, 404),
)
def resend_invite(user_id: uuid.UUID, session: SessionDep, admin: RequireAdmin) -> UserOut:
    return user_out(service.resend_invite(session, user_id, by=admin))
