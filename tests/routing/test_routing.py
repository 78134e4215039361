"""Routing: tiers, dropped candidates, soft preferences, fairness, the stored decision, triage."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.logging import request_id_var
from app.flows import request as flows
from app.models import (
    Assignment,
    AssignmentStatus,
    ExpertCountry,
    ExpertNotification,
    ExpertProfile,
    ExpertRegion,
    IntakeRequest,
    OutboxMessage,
    OutboxStatus,
    RequestHistory,
    Role,
    RoutingDecision,
    RoutingRule,
)
from app.routing import assignments
from app.routing.decision import Candidate, decide
from tests.factories import (
    MARKER,
    add_absence,
    create_expert,
    create_user,
    drain,
    login,
    make_request,
    profile,
    submit,
)
from tests.mail_reader import mails

EE = "eastern_europe_post_soviet"


def _route(db: Session, req: object) -> Assignment | None:
    return assignments.route(db, req, trigger="submitted")  # type: ignore[arg-type]


def _decision(db: Session, req_id: uuid.UUID) -> RoutingDecision:
    rows = db.scalars(
        select(RoutingDecision)
        .where(RoutingDecision.request_id == req_id)
        .order_by(RoutingDecision.id)
    ).all()
    return rows[-1]


# The pure decision ---------------------------------------------------------------------------


def _cand(n: int, **kw: object) -> Candidate:
    base: dict[str, object] = {
        "expert_id": uuid.UUID(int=n),
        "tier": "country",
        "languages": ["en"],
        "topics": [],
        "open_assignments": 0,
        "max_open_assignments": 5,
        "last_assigned_at": None,
        "away": False,
    }
    base.update(kw)
    return Candidate(**base)  # type: ignore[arg-type]


def test_ties_are_broken_by_load_then_last_assignment_then_id() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cands = [
        _cand(3, last_assigned_at=t),
        _cand(2, last_assigned_at=t - dt.timedelta(hours=1)),
        _cand(1, open_assignments=1),
        _cand(5),
        _cand(4),
    ]
    d = decide(cands, language="de", topics=[], passed_over={})
    assert [c.expert_id.int for c in d.ranked] == [4, 5, 2, 3, 1]
    # The same input in another order gives the same answer.
    d2 = decide(list(reversed(cands)), language="de", topics=[], passed_over={})
    assert [c.expert_id for c in d2.ranked] == [c.expert_id for c in d.ranked]


def test_language_then_topic_are_preferred_over_load() -> None:
    cands = [
        _cand(1, open_assignments=0),
        _cand(2, open_assignments=3, topics=["war_crimes"]),
        _cand(3, open_assignments=4, languages=["ru-RU"]),
    ]
    d = decide(cands, language="ru", topics=["war_crimes"], passed_over={})
    assert [c.expert_id.int for c in d.ranked] == [3, 2, 1]


def test_country_tier_falls_back_to_region_only_when_no_country_expert_is_eligible() -> None:
    country_away = _cand(1, away=True)
    region = _cand(2, tier="region")
    d = decide([country_away, region], language="en", topics=[], passed_over={})
    assert d.rule == RoutingRule.region and [c.expert_id.int for c in d.ranked] == [2]
    d = decide([_cand(1), region], language="en", topics=[], passed_over={})
    assert d.rule == RoutingRule.country
    assert {e["outcome"] for e in d.report} == {"ranked", "not_needed"}
    assert decide([], language="en", topics=[], passed_over={}).rule == RoutingRule.general
    full = decide([_cand(1, open_assignments=5)], language="en", topics=[], passed_over={})
    assert full.rule == RoutingRule.none and full.report[0]["reason"] == "at_capacity"


# Against the database ------------------------------------------------------------------------


def test_country_expert_is_chosen_over_region_expert(db: Session) -> None:
    region_expert = create_expert(db, regions=[EE], languages=["ru"])
    country_expert = create_expert(db, countries=["KG"], languages=["en"])
    req = make_request(db)
    a = _route(db, req)
    assert a is not None and a.expert_id == country_expert.id
    assert req.assigned_expert_id == country_expert.id
    decision = _decision(db, req.id)
    assert decision.rule == RoutingRule.country
    outcomes = {c["expert_id"]: c for c in decision.candidates}
    assert outcomes[str(country_expert.id)]["outcome"] == "chosen"
    # The region tier is only read when the country tier has nobody eligible.
    assert str(region_expert.id) not in outcomes
    assert profile(db, country_expert).open_assignments == 1


def test_region_expert_when_no_country_expert(db: Session) -> None:
    create_expert(db, regions=["middle_east"])
    region_expert = create_expert(db, regions=[EE])
    a = _route(db, make_request(db))
    assert a is not None and a.expert_id == region_expert.id


@pytest.mark.parametrize("tier", ["country", "region"])
def test_routing_follows_the_requests_country_and_region_whatever_the_ids(
    db: Session, tier: str
) -> None:
    """Two experts differ in what they cover; the one who does not cover the request is made
    better on every other key (the request's language, its topic, a lighter load, never
    assigned, the lower id), so a router blind to the country or region picks them every
    time. Not left to the order of random ids."""
    a, b = create_expert(db), create_expert(db)
    wrong, right = sorted([a, b], key=lambda u: str(u.id))
    if tier == "country":
        db.add_all(
            [
                ExpertCountry(expert_id=wrong.id, country_code="SY"),
                ExpertCountry(expert_id=right.id, country_code="KG"),
            ]
        )
    else:
        db.add_all(
            [
                ExpertRegion(expert_id=wrong.id, region_code="middle_east"),
                ExpertRegion(expert_id=right.id, region_code=EE),
            ]
        )
    better = profile(db, wrong)
    better.languages, better.topics = ["ru"], ["political_repression"]
    worse = profile(db, right)
    worse.languages, worse.topics, worse.open_assignments = ["en"], [], 3
    db.flush()
    for _ in range(3):
        req = make_request(db, country="KG", region=EE, language="ru")
        a = _route(db, req)
        assert a is not None and a.expert_id == right.id
        decision = _decision(db, req.id)
        assert decision.rule == RoutingRule(tier)
        assert str(wrong.id) not in {c["expert_id"] for c in decision.candidates}
    assert profile(db, wrong).open_assignments == 0


def test_unavailable_and_full_experts_are_skipped_with_reasons(db: Session) -> None:
    away = create_expert(db, countries=["KG"])
    add_absence(db, away)
    full = create_expert(db, countries=["KG"], max_open=0)
    ok = create_expert(db, countries=["KG"])
    req = make_request(db)
    a = _route(db, req)
    assert a is not None and a.expert_id == ok.id
    reasons = {c["expert_id"]: c["reason"] for c in _decision(db, req.id).candidates}
    assert reasons[str(away.id)] == "unavailable"
    assert reasons[str(full.id)] == "at_capacity"
    assert reasons[str(ok.id)] is None


def test_absence_in_the_future_or_past_does_not_block(db: Session) -> None:
    e = create_expert(db, countries=["KG"])
    from app.core.time import now

    add_absence(db, e, starts=now() + dt.timedelta(days=2))
    add_absence(db, e, starts=now() - dt.timedelta(days=3), hours=24)
    a = _route(db, make_request(db))
    assert a is not None and a.expert_id == e.id


def test_soft_preferences_never_leave_a_request_unassigned(db: Session) -> None:
    # Nobody speaks the language or knows the topic: the request is still offered.
    e = create_expert(db, countries=["KG"], languages=["fr"], topics=["statelessness"])
    req = make_request(db, language="ru", topics=["war_crimes"])
    a = _route(db, req)
    assert a is not None and a.expert_id == e.id
    chosen = _decision(db, req.id).candidates[0]
    assert chosen["language_match"] is False and chosen["topic_match"] is False


def test_shared_language_wins_over_a_lighter_load(db: Session) -> None:
    create_expert(db, countries=["KG"], languages=["en"])
    speaker = create_expert(db, countries=["KG"], languages=["ru"])
    # The speaker already has two open assignments; the other none.
    for _ in range(2):
        other_req = make_request(db, language="ru")
        assert _route(db, other_req) is not None
    assert profile(db, speaker).open_assignments == 2
    a = _route(db, make_request(db, language="ru"))
    assert a is not None and a.expert_id == speaker.id


def test_ties_in_the_database_are_deterministic(db: Session) -> None:
    experts = [create_expert(db, countries=["KG"]) for _ in range(3)]
    first = _route(db, make_request(db))
    assert first is not None
    assert first.expert_id == min(experts, key=lambda u: str(u.id)).id


def test_inactive_experts_and_accounts_are_not_candidates(db: Session) -> None:
    from app.experts import service as experts_service

    e1 = create_expert(db, countries=["KG"])
    e2 = create_expert(db, countries=["KG"])
    experts_service.set_active(db, e1.id, False)
    e2.is_active = False
    db.flush()
    req = make_request(db)
    assert _route(db, req) is None
    assert _decision(db, req.id).rule == RoutingRule.general


def test_no_candidate_waits_in_triage_and_alerts_every_active_staff_user(
    db: Session, mail_dir: Path
) -> None:
    staff = [create_user(db, role=Role.staff) for _ in range(2)]
    inactive = create_user(db, role=Role.staff)
    inactive.is_active = False
    create_user(db, role=Role.admin)
    create_expert(db, countries=["KG"], max_open=0)
    req = submit(db)  # through intake: routed in the submitting transaction
    assert req.assigned_expert_id is None
    assert _decision(db, req.id).rule == RoutingRule.none
    history = db.scalars(
        select(RequestHistory.action).where(RequestHistory.request_id == req.id)
    ).all()
    assert "routing_no_candidate" in history
    alerts = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == assignments.TRIAGE_ALERT_KIND)
    ).all()
    assert sorted(m.params["user_id"] for m in alerts) == sorted(str(u.id) for u in staff)
    drain(db)
    to_staff = [m for m in mails(mail_dir) if "needs an expert" in m[1]]
    assert sorted(m[0] for m in to_staff) == sorted(u.email for u in staff)
    for _to, subject, text in to_staff:
        assert req.reference in subject
        assert req.reference in text and "Kyrgyzstan" in text and "consultation" in text
        assert MARKER not in text + subject  # neither the name nor the summary
        assert "applicant-" not in text and "+996" not in text


def test_country_outside_the_regions_goes_to_the_general_pool(db: Session) -> None:
    create_user(db, role=Role.staff)
    create_expert(db, regions=[EE])
    req = submit(db, country_of_origin="FR")
    assert req.region_code is None and req.assigned_expert_id is None
    assert _decision(db, req.id).rule == RoutingRule.general


def test_submission_offers_the_request_and_the_mail_has_no_personal_data(
    db: Session, mail_dir: Path
) -> None:
    expert = create_expert(db, countries=["KG"], languages=["ru"])
    req = submit(db)
    assert req.assigned_expert_id == expert.id
    a = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert a is not None and a.status == AssignmentStatus.offered
    assert (a.respond_by - a.offered_at) == dt.timedelta(minutes=15)
    notes = db.scalars(
        select(ExpertNotification).where(ExpertNotification.expert_id == expert.id)
    ).all()
    assert [n.kind for n in notes] == ["assignment_offered"]
    drain(db)
    offers = [m for m in mails(mail_dir) if m[0] == expert.email]
    assert len(offers) == 1
    _to, subject, text = offers[0]
    assert req.reference in text and "Kyrgyzstan" in text and "consultation" in text
    d = req.deadline
    assert d is not None and f"{d:%A} {d.day} {d:%B %Y}" in text  # the date in words
    assert d.isoformat() not in text
    assert "/experts/offers/" in text
    assert MARKER not in text + subject
    assert "applicant-" not in text and "+996" not in text


def test_staff_see_the_decision_with_its_reasons(db: Session, client: object) -> None:
    staff = create_user(db, role=Role.staff)
    away = create_expert(db, countries=["KG"], name="Dr Away")
    add_absence(db, away)
    chosen = create_expert(db, regions=[EE], name="Dr Region")
    req = make_request(db)
    _route(db, req)
    resp = client.get(  # type: ignore[attr-defined]
        f"/api/v1/requests/{req.reference}/routing", headers=login(client, staff)
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["assigned_expert_id"] == str(chosen.id)
    decision = body["decisions"][0]
    assert decision["rule"] == "region" and decision["trigger"] == "submitted"
    by_name = {c["public_name"]: c for c in decision["candidates"]}
    assert by_name["Dr Away"]["outcome"] == "dropped"
    assert by_name["Dr Away"]["reason"] == "unavailable"
    assert by_name["Dr Region"]["outcome"] == "chosen"
    # Experts may not read it.
    resp = client.get(  # type: ignore[attr-defined]
        f"/api/v1/requests/{req.reference}/routing", headers=login(client, chosen)
    )
    assert resp.status_code == 403


def test_fairness_1000_requests_five_equal_experts(db: Session) -> None:
    experts = [create_expert(db, regions=[EE], max_open=1000) for _ in range(5)]
    requests = [make_request(db, flush=False) for _ in range(1000)]
    db.flush()
    for req in requests:
        assert _route(db, req) is not None
    counts = [profile(db, e).open_assignments for e in experts]
    assert sum(counts) == 1000
    assert max(counts) - min(counts) <= 1, counts


def test_a_live_request_is_not_routed_twice(db: Session) -> None:
    create_expert(db, countries=["KG"])
    create_expert(db, countries=["KG"])
    req = make_request(db)
    first = _route(db, req)
    again = _route(db, req)
    assert first is not None and again is not None and first.id == again.id
    live = db.scalars(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.offered
        )
    ).all()
    assert len(live) == 1


def test_a_second_live_assignment_of_a_request_is_refused_by_the_database(db: Session) -> None:
    from sqlalchemy.exc import IntegrityError

    from app.core.time import now

    e1 = create_expert(db, countries=["KG"])
    e2 = create_expert(db, countries=["KG"])
    req = make_request(db)
    first = _route(db, req)
    assert first is not None and first.expert_id == min(e1.id, e2.id, key=str)
    other = e2.id if first.expert_id == e1.id else e1.id
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(
            Assignment(
                request_id=req.id,
                expert_id=other,
                status=AssignmentStatus.offered,
                offered_at=now(),
                respond_by=now(),
            )
        )
        db.flush()


@pytest.mark.sqlite
def test_routing_accept_and_expiry_on_sqlite(db: Session, clock: object) -> None:
    first = create_expert(db, countries=["KG"], languages=["ru"])
    second = create_expert(db, countries=["KG"], languages=["en"])
    req = submit(db)
    a = db.scalar(select(Assignment).where(Assignment.request_id == req.id))
    assert a is not None and a.expert_id == first.id
    clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert assignments.expire_offers(db) == 1
    live = db.scalar(
        select(Assignment).where(
            Assignment.request_id == req.id, Assignment.status == AssignmentStatus.offered
        )
    )
    assert live is not None and live.expert_id == second.id
    flows.answer_offer(db, live.id, second, accept=True)
    assert profile(db, first).open_assignments == 0
    assert profile(db, second).open_assignments == 1


def _offer_rows_are_complete(db: Session, req_id: uuid.UUID, expert_id: uuid.UUID) -> None:
    a = db.scalar(select(Assignment).where(Assignment.request_id == req_id))
    assert a is not None and a.decision_id is not None
    decision = db.get(RoutingDecision, a.decision_id)
    assert decision is not None and decision.chosen_expert_id == expert_id
    assert decision.candidates[0]["outcome"] == "chosen"
    row = db.scalar(
        select(RequestHistory).where(
            RequestHistory.request_id == req_id, RequestHistory.action == "assignment_offered"
        )
    )
    assert row is not None and row.actor == "system"
    assert row.details == {
        "assignment_id": a.id,
        "expert_id": str(expert_id),
        "decision_id": decision.id,
        "rule": "country",
        "trigger": "submitted",
        "respond_by": a.respond_by.isoformat(),
    }
    note = db.scalar(select(ExpertNotification).where(ExpertNotification.assignment_id == a.id))
    assert note is not None and note.expert_id == expert_id and note.request_id == req_id
    message = db.scalar(select(OutboxMessage).where(OutboxMessage.kind == assignments.OFFER_KIND))
    assert message is not None and message.params == {"assignment_id": a.id}
    # The row ``enqueue`` writes: pending, due at once, never tried, no dedup key, and tied to
    # the id of the request that caused it (the worker's log lines carry it).
    assert (message.status, message.attempts, message.dedup_key) == (OutboxStatus.pending, 0, None)
    assert message.due_at == message.created_at == message.updated_at
    assert dt.timedelta(0) <= message.due_at - a.offered_at < dt.timedelta(seconds=1)
    assert message.correlation_id == CORRELATION
    # What the database holds (not what the session's objects say).
    db.expire_all()
    stored = db.execute(
        select(IntakeRequest.assigned_expert_id).where(IntakeRequest.id == req_id)
    ).scalar_one()
    assert stored == expert_id
    load = db.execute(
        select(ExpertProfile.open_assignments, ExpertProfile.last_assigned_at).where(
            ExpertProfile.user_id == expert_id
        )
    ).one()
    assert load.open_assignments == 1 and load.last_assigned_at == a.offered_at


CORRELATION = "req-routing-offer"


def _route_in_a_request(db: Session, req: IntakeRequest) -> None:
    token = request_id_var.set(CORRELATION)
    try:
        _route(db, req)
    finally:
        request_id_var.reset(token)


def test_an_offer_writes_decision_assignment_notification_history_and_mail(db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    req = make_request(db)
    _route_in_a_request(db, req)
    _offer_rows_are_complete(db, req.id, expert.id)


@pytest.mark.sqlite
def test_an_offer_writes_the_same_rows_on_sqlite(db: Session) -> None:
    expert = create_expert(db, countries=["KG"])
    req = make_request(db)
    _route_in_a_request(db, req)
    _offer_rows_are_complete(db, req.id, expert.id)
