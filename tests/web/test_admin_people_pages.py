"""The admin console's People page: the list with role and state, invite, change role,
deactivate, reactivate, resend an invite, reset a second factor. Each action goes through the
API's service and is audited with the API's action names; a form without its CSRF token
changes nothing; staff and experts get 403; the last active admin stays one."""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from concurrent.futures import Future
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core import database
from app.core.errors import BadRequest
from app.main import create_app
from app.models import AccountToken, AuditEvent, Role, User, UserSession
from app.web import people as people_page
from tests.conftest import create_migrated_pg_database, drop_pg_database
from tests.factories import (
    backend_pid,
    create_user,
    csrf,
    field_error,
    login,
    sign_in,
    signed_in,
    wait_until_blocked,
)

PATH = people_page.PATH


@pytest.fixture
def admin(db: Session) -> User:
    return create_user(db, role=Role.admin, display_name="Ada Admin")


def audited(db: Session, action: str, target: uuid.UUID | str) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target == str(target))
        )
    )


def page_audited(db: Session, route: str, user_id: uuid.UUID) -> list[AuditEvent]:
    """The audit middleware's row for a page form, as it writes one for the API's routes."""
    return audited(db, f"POST {PATH}/{{user_id}}/{route}", f"user_id={user_id}")


def users_audited(db: Session) -> int:
    db.expire_all()
    return len(db.scalars(select(AuditEvent).where(AuditEvent.action.like("users.%"))).all())


def post(web: TestClient, url: str, **data: str) -> Any:
    return web.post(url, data={**csrf(web, PATH), **data}, follow_redirects=False)


def live_sessions(db: Session, user: User) -> int:
    db.expire_all()
    return len(
        db.scalars(
            select(UserSession).where(
                UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
            )
        ).all()
    )


# Who may open it ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_and_comes_back(web: TestClient, db: Session) -> None:
    resp = web.get(PATH + "?role=staff", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/staff/sign-in?next=/admin/people%3Frole%3Dstaff"


@pytest.mark.parametrize("role", [Role.staff, Role.expert])
def test_staff_and_experts_get_403_for_the_page_and_every_action(
    web: TestClient, db: Session, role: Role
) -> None:
    other = create_user(db, role=Role.staff)
    signed_in(web, create_user(db, role=role))
    assert web.get(PATH).status_code == 403
    token = {"csrf_token": csrf(web, "/my-account")["csrf_token"]}
    for action in ("deactivate", "reactivate", "resend-invite", "reset-second-factor", "role"):
        resp = web.post(f"{PATH}/{other.id}/{action}", data={**token, "role": "admin"})
        assert resp.status_code == 403, action
    resp = web.post(
        f"{PATH}/invite",
        data={**token, "display_name": "X", "email": "x@example.org", "role": "admin"},
    )
    assert resp.status_code == 403
    db.expire_all()
    assert other.role == Role.staff and other.is_active
    assert accounts.get_user_by_email(db, "x@example.org") is None


def test_the_navigation_offers_people_to_admins_only(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, create_user(db, role=Role.staff))
    assert 'id="nav-people"' not in web.get("/staff/queue").text
    web.cookies.clear()
    signed_in(web, admin)
    assert 'id="nav-people"' in web.get("/my-account").text


# The list ----------------------------------------------------------------------------------


def test_the_list_shows_role_state_and_second_factor_and_filters(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff, display_name="Sam Staff")
    invited = accounts.invite_user(
        db, email="ivy@example.org", display_name="Ivy Invited", role=Role.expert
    )
    gone = create_user(db, role=Role.staff, display_name="Gus Gone")
    gone.is_active = False
    staff.totp_enabled = True
    db.flush()
    signed_in(web, admin)
    html = web.get(PATH).text
    for person, state, second in (
        (staff, "Active", "On"),
        (invited, "Invited, no password yet", "Off"),
        (gone, "Deactivated", "Off"),
    ):
        row = _row(html, person)
        assert f'<td data-label="State" class="person-state">{state}</td>' in row
        assert f'class="person-second-factor">{second}</td>' in row
    assert 'class="person-role">Expert</td>' in _row(html, invited)
    only_invited = web.get(PATH + "?state=invited").text
    assert listed(only_invited) == {invited.id}
    only_staff = web.get(PATH + "?role=staff").text
    assert listed(only_staff) == {staff.id, gone.id}
    assert listed(web.get(PATH + "?role=staff&state=deactivated").text) == {gone.id}
    assert listed(web.get(PATH + "?state=active").text) == {staff.id, admin.id}


def listed(html: str) -> set[uuid.UUID]:
    return {uuid.UUID(m) for m in re.findall(r'<tr id="person-([0-9a-f-]{36})"', html)}


def test_a_name_with_a_right_to_left_override_is_isolated_and_shown(
    web: TestClient, db: Session, admin: User
) -> None:
    create_user(db, role=Role.staff, display_name="Eve\u202egnp.exe", email="eve\u202e@example.org")
    signed_in(web, admin)
    html = web.get(PATH).text
    assert "\u202e" not in html
    assert "<bdi>Eve[U+202E]gnp.exe</bdi>" in html
    assert '<bdi dir="ltr">eve[U+202E]@example.org</bdi>' in html


def test_odd_filters_are_bounded_and_unknown_ones_show_everyone(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    assert web.get(PATH + "?role=" + "x" * 21).status_code == 422
    assert web.get(PATH + "?state=%00").status_code in (400, 422)
    assert admin.id in listed(web.get(PATH + "?role=nobody&state=nothing").text)


# Invite --------------------------------------------------------------------------------------


def test_invite_creates_the_account_sends_the_link_and_is_audited(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(
        web,
        f"{PATH}/invite",
        display_name="Nadia Expert",
        email=" Nadia@Example.org ",
        role="expert",
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{PATH}?done=invited"
    assert "The invitation is sent." in web.get(resp.headers["location"]).text
    user = accounts.get_user_by_email(db, "nadia@example.org")
    assert user is not None and user.role == Role.expert and user.password_hash is None
    assert db.scalars(select(AccountToken).where(AccountToken.user_id == user.id)).one()
    [row] = audited(db, "users.invited", user.id)
    assert (row.actor, row.actor_role) == (str(admin.id), "admin")
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == f"POST {PATH}/invite")).one()


def test_the_api_invite_is_audited_with_the_same_name(
    client: TestClient, db: Session, admin: User
) -> None:
    resp = client.post(
        "/api/v1/admin/users",
        json={"email": "olga@example.org", "display_name": "Olga", "role": "staff"},
        headers=login(client, admin),
    )
    assert resp.status_code == 201
    [row] = audited(db, "users.invited", resp.json()["id"])
    assert row.actor == str(admin.id)


def test_invite_errors_sit_by_their_fields_with_a_summary_on_top(
    web: TestClient, db: Session, admin: User
) -> None:
    taken = create_user(db, role=Role.staff)
    signed_in(web, admin)
    resp = post(web, f"{PATH}/invite", display_name="", email="not an address", role="owner")
    assert resp.status_code == 422
    assert 'id="error-summary"' in resp.text
    assert "Enter their name" in field_error(resp.text, "display_name")
    assert "e-mail address" in field_error(resp.text, "email")
    assert "staff, expert or admin" in field_error(resp.text, "role")
    assert 'value="not an address"' in resp.text  # what was typed is kept
    again = post(web, f"{PATH}/invite", display_name="Twin", email=taken.email, role="staff")
    assert again.status_code == 422
    assert "already" in field_error(again.text, "email")
    assert accounts.get_user_by_email(db, "not an address") is None


# Actions on a person ---------------------------------------------------------------------------


def test_change_role_through_the_page_signs_them_out_and_is_audited(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff)
    sign_in(TestClient(create_app(), base_url="https://testserver"), staff)
    assert live_sessions(db, staff) == 1
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{staff.id}/role", role="expert")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?done=role#person-{staff.id}"
    db.expire_all()
    assert staff.role == Role.expert and live_sessions(db, staff) == 0
    [row] = audited(db, "users.role_changed", staff.id)
    assert row.actor == str(admin.id) and row.details == {"from": "staff", "to": "expert"}
    assert page_audited(db, "role", staff.id)[0].outcome == "ok"


def test_an_unknown_role_is_refused_by_the_person(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff)
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{staff.id}/role", role="owner")
    assert resp.status_code == 422
    assert "staff, expert or admin" in field_error(resp.text, f"person-{staff.id}")
    db.expire_all()
    assert staff.role == Role.staff


def test_deactivate_and_reactivate_through_the_page_are_audited(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff)
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{staff.id}/deactivate")
    assert resp.status_code == 303
    assert "The account is deactivated" in web.get(resp.headers["location"]).text
    db.expire_all()
    assert not staff.is_active
    [row] = audited(db, "users.deactivated", staff.id)
    assert row.actor == str(admin.id) and row.actor_role == "admin"
    assert page_audited(db, "deactivate", staff.id)
    resp = post(web, f"{PATH}/{staff.id}/reactivate")
    assert resp.status_code == 303
    db.expire_all()
    assert staff.is_active
    [row] = audited(db, "users.reactivated", staff.id)
    assert row.actor == str(admin.id)
    assert page_audited(db, "reactivate", staff.id)


def test_resend_invite_replaces_the_link_and_is_audited(
    web: TestClient, db: Session, admin: User
) -> None:
    invited = accounts.invite_user(db, email="ivo@example.org", display_name="Ivo", role=Role.staff)
    first = db.scalars(select(AccountToken).where(AccountToken.user_id == invited.id)).one()
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{invited.id}/resend-invite")
    assert resp.status_code == 303
    db.expire_all()
    tokens = db.scalars(select(AccountToken).where(AccountToken.user_id == invited.id)).all()
    assert len(tokens) == 2 and first.expires_at <= max(t.expires_at for t in tokens)
    [row] = audited(db, "users.invite_resent", invited.id)
    assert row.actor == str(admin.id)
    assert page_audited(db, "resend-invite", invited.id)


def test_resend_invite_to_someone_with_a_password_is_refused_beside_them(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff)
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{staff.id}/resend-invite")
    assert resp.status_code == 400
    assert 'id="error-summary"' in resp.text
    assert "set a password already" in field_error(resp.text, f"person-{staff.id}")
    assert audited(db, "users.invite_resent", staff.id) == []


def test_reset_second_factor_through_the_page_is_audited(
    web: TestClient, db: Session, admin: User
) -> None:
    staff = create_user(db, role=Role.staff)
    accounts.totp_setup(db, staff)
    staff.totp_enabled = True
    db.flush()
    signed_in(web, admin)
    assert f'action="{PATH}/{staff.id}/reset-second-factor"' in web.get(PATH).text
    resp = post(web, f"{PATH}/{staff.id}/reset-second-factor")
    assert resp.status_code == 303
    db.expire_all()
    assert not staff.totp_enabled and staff.totp_secret_enc is None
    [row] = audited(db, "users.second_factor_reset", staff.id)
    assert row.actor == str(admin.id)
    assert page_audited(db, "reset-second-factor", staff.id)


def test_an_unknown_person_is_not_found(web: TestClient, db: Session, admin: User) -> None:
    signed_in(web, admin)
    assert post(web, f"{PATH}/{uuid.uuid4()}/deactivate").status_code == 404


# CSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["deactivate", "role", "resend-invite", "reset-second-factor", "invite"]
)
def test_a_form_without_its_csrf_token_changes_nothing(
    web: TestClient, db: Session, admin: User, action: str
) -> None:
    invited = accounts.invite_user(db, email="kim@example.org", display_name="Kim", role=Role.staff)
    invited.totp_enabled = True
    db.flush()
    signed_in(web, admin)
    before = users_audited(db)
    url = f"{PATH}/invite" if action == "invite" else f"{PATH}/{invited.id}/{action}"
    data = {"role": "admin", "display_name": "Mallory", "email": "m@example.org"}
    for token in ({}, {"csrf_token": "forged"}):
        resp = web.post(url, data={**data, **token}, follow_redirects=False)
        assert resp.status_code == 403
    db.expire_all()
    assert invited.is_active and invited.role == Role.staff and invited.totp_enabled
    assert accounts.get_user_by_email(db, "m@example.org") is None
    assert (
        len(db.scalars(select(AccountToken).where(AccountToken.user_id == invited.id)).all()) == 1
    )
    assert users_audited(db) == before


def test_a_reactivate_without_its_csrf_token_changes_nothing(
    web: TestClient, db: Session, admin: User
) -> None:
    gone = create_user(db, role=Role.staff)
    gone.is_active = False
    db.flush()
    signed_in(web, admin)
    assert web.post(f"{PATH}/{gone.id}/reactivate", data={}).status_code == 403
    db.expire_all()
    assert not gone.is_active


# The last admin --------------------------------------------------------------------------------


def test_the_last_admin_cannot_demote_themselves_on_the_page(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    resp = post(web, f"{PATH}/{admin.id}/role", role="staff")
    assert resp.status_code == 400
    assert "last active admin" in field_error(resp.text, f"person-{admin.id}")
    db.expire_all()
    assert admin.role == Role.admin
    assert audited(db, "users.role_changed", admin.id) == []
    # With a second active admin, the demotion goes through.
    create_user(db, role=Role.admin)
    assert post(web, f"{PATH}/{admin.id}/role", role="staff").status_code == 303
    db.expire_all()
    assert db.scalar(select(User.role).where(User.id == admin.id)) == Role.staff


def test_the_page_does_not_offer_deactivating_oneself_and_refuses_it(
    web: TestClient, db: Session, admin: User
) -> None:
    signed_in(web, admin)
    assert f'action="{PATH}/{admin.id}/deactivate"' not in web.get(PATH).text
    resp = post(web, f"{PATH}/{admin.id}/deactivate")
    assert resp.status_code == 400
    assert "your own account" in field_error(resp.text, f"person-{admin.id}")


def test_the_service_keeps_one_active_admin(db: Session) -> None:
    only = create_user(db, role=Role.admin)
    other = create_user(db, role=Role.staff)
    with pytest.raises(BadRequest, match="last active admin"):
        accounts.deactivate_user(db, only.id, by=other)
    with pytest.raises(BadRequest, match="last active admin"):
        accounts.update_user(db, only.id, display_name=None, role=Role.expert, by=only)
    assert only.is_active and only.role == Role.admin
    # A deactivated admin does not count as one.
    second = create_user(db, role=Role.admin)
    second.is_active = False
    db.flush()
    with pytest.raises(BadRequest, match="last active admin"):
        accounts.deactivate_user(db, only.id, by=other)
    second.is_active = True
    db.flush()
    accounts.deactivate_user(db, only.id, by=second)
    assert not only.is_active
    # Changing a deactivated admin's role, or making the last admin admin again, is fine.
    accounts.update_user(db, only.id, display_name=None, role=Role.staff, by=second)
    accounts.update_user(db, second.id, display_name=None, role=Role.admin, by=second)


def test_the_api_refuses_demoting_the_last_admin(
    client: TestClient, db: Session, admin: User
) -> None:
    resp = client.patch(
        f"/api/v1/admin/users/{admin.id}", json={"role": "staff"}, headers=login(client, admin)
    )
    assert resp.status_code == 400 and "last active admin" in resp.text


def _row(html: str, person: User) -> str:
    found = re.search(rf'<tr id="person-{person.id}".*?</tr>', html, re.S)
    assert found is not None, f"no row for {person.display_name}"
    return found.group(0)


def test_two_admins_deactivating_each_other_at_once_leave_one_active(pg_engine: object) -> None:
    """The second deactivation counts the active admins while the first one's is uncommitted:
    it waits for the first one's row locks (seen in pg_locks), then finds itself the last
    admin and is refused. Without the lock both would pass and no admin would be left."""
    name = f"intake_admins_{secrets.token_hex(3)}"
    url = create_migrated_pg_database(name)
    engine = None
    try:
        engine = database.build_engine(url, for_tests=True)
        with Session(engine) as s:
            first_id = create_user(s, role=Role.admin).id
            second_id = create_user(s, role=Role.admin).id
            s.commit()
        pid: Future[int] = Future()
        done = threading.Event()
        outcome: list[object] = []

        def second() -> None:
            try:
                with Session(engine) as s2:
                    pid.set_result(backend_pid(s2))
                    by = s2.get(User, second_id)
                    assert by is not None
                    accounts.deactivate_user(s2, first_id, by=by)
                    s2.commit()
                    outcome.append("deactivated")
            except BadRequest as exc:
                outcome.append(exc.message)
            except BaseException as exc:  # reported below
                outcome.append(exc)
                if not pid.done():
                    pid.set_exception(exc)
            finally:
                done.set()

        with Session(engine) as s1:
            holder = backend_pid(s1)
            by = s1.get(User, first_id)
            assert by is not None
            accounts.deactivate_user(s1, second_id, by=by)  # uncommitted, rows locked
            racer = threading.Thread(target=second)
            racer.start()
            waited = wait_until_blocked(engine, pid.result(30), holder, finished=done.is_set)
            s1.commit()
        racer.join(60)
        assert not racer.is_alive()
        assert waited, "the second deactivation never waited for the first one's locks"
        assert len(outcome) == 1 and "last active admin" in str(outcome[0])
        with Session(engine) as s:
            active = s.scalars(
                select(User.id).where(User.role == Role.admin, User.is_active.is_(True))
            ).all()
            assert active == [first_id]
    finally:
        if engine is not None:
            engine.dispose()
        drop_pg_database(name)
