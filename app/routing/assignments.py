"""Routing a request to an expert, and the life of the offer: accept, decline, no answer,
reassignment by staff, release when the request ends.

Every step writes a history row of the request (non-personal details only), and every routing
run stores a ``RoutingDecision`` with its reasons. E-mails are outbox rows holding ids; the
handlers render them at send time with the reference, country, what was asked, the deadline and
the link, never a name, a contact detail or the summary.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import (
    JSON,
    Select,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.core.settings import get_settings
from app.core.time import now
from app.experts.errors import AssignmentNotFound, ExpertNotFound
from app.intake import records
from app.intake.status import FINAL
from app.models import (
    LIVE_ASSIGNMENT,
    Assignment,
    AssignmentStatus,
    ExpertNotification,
    ExpertProfile,
    IntakeRequest,
    Role,
    RoutingDecision,
    RoutingRule,
    User,
)
from app.models.base import UTCDateTime
from app.outbox import service as outbox
from app.roster import service as roster
from app.routing import repository
from app.routing.decision import TIER_COUNTRY, TIER_REGION, Candidate, decide
from app.routing.errors import ExpertCannotTake, OfferClosed

log = structlog.get_logger(__name__)

# The kinds keep the names they had before routing left app/experts: queued rows carry them.
OFFER_KIND = "experts.offer"
TRIAGE_ALERT_KIND = "experts.triage_alert"


def actor_of(user: User | None) -> str:
    return f"user:{user.id}" if user is not None else "system"


# Rows nobody reads back in the same transaction are written with prebuilt Core statements:
# routing runs inside every submission, and the ORM's unit of work costs more than the insert.
_notification_table = cast(Table, ExpertNotification.__table__)
_decision_table = cast(Table, RoutingDecision.__table__)
_assignment_table = cast(Table, Assignment.__table__)
_INSERT_NOTIFICATION = _notification_table.insert()
_INSERT_DECISION = _decision_table.insert().returning(_decision_table.c.id)
_INSERT_ASSIGNMENT = _assignment_table.insert().returning(_assignment_table.c.id)


def _notify(
    session: Session,
    expert_id: uuid.UUID,
    kind: str,
    req: IntakeRequest,
    assignment: Assignment | int | None,
    at: dt.datetime,
) -> None:
    assignment_id = assignment.id if isinstance(assignment, Assignment) else assignment
    session.execute(
        _INSERT_NOTIFICATION,
        {
            "expert_id": expert_id,
            "request_id": req.id,
            "assignment_id": assignment_id,
            "kind": kind,
            "created_at": at,
            "read_at": None,
        },
    )


@dataclass(frozen=True)
class DecisionRef:
    id: int
    rule: RoutingRule
    trigger: str


@dataclass(frozen=True)
class DecisionDraft:
    """A routing decision not yet written."""

    at: dt.datetime
    trigger: str
    rule: RoutingRule
    chosen: uuid.UUID | None
    report: list[dict[str, Any]]
    actor: str


def _store_decision(session: Session, req: IntakeRequest, draft: DecisionDraft) -> DecisionRef:
    decision_id = session.execute(
        _INSERT_DECISION,
        {
            "request_id": req.id,
            "at": draft.at,
            "trigger": draft.trigger,
            "rule": draft.rule,
            "chosen_expert_id": draft.chosen,
            "candidates": draft.report,
            "actor": draft.actor,
        },
    ).scalar_one()
    return DecisionRef(id=decision_id, rule=draft.rule, trigger=draft.trigger)


# On PostgreSQL an offer's rows (decision, assignment, notification, history, the request's
# expert, the offer e-mail's outbox row) are written by one statement: routing runs inside
# every submission, and round trips are its main cost. The history and outbox parts come from
# those modules' own builders. Other databases run the same inserts one by one (``_try_offer``).
def _offer_statement() -> Select[int, int]:
    request_id = bindparam("request_id", type_=Uuid())
    expert_id = bindparam("expert_id", type_=Uuid())
    at = bindparam("at", type_=UTCDateTime())
    respond_by = bindparam("respond_by", type_=UTCDateTime())
    trigger = bindparam("trigger", type_=String())
    rule = bindparam("rule", type_=String())
    actor = bindparam("actor", type_=String())
    profiles = cast(Table, ExpertProfile.__table__)
    taken = (
        update(profiles)
        .where(
            profiles.c.user_id == expert_id,
            profiles.c.is_active,
            profiles.c.open_assignments < profiles.c.max_open_assignments,
        )
        # updated_at as it was: taking capacity is not an edit of the profile.
        .values(
            open_assignments=profiles.c.open_assignments + 1,
            last_assigned_at=at,
            updated_at=profiles.c.updated_at,
        )
        .returning(profiles.c.user_id)
        .cte("t")
    )
    decision = (
        _decision_table.insert()
        .from_select(
            ["request_id", "at", "trigger", "rule", "chosen_expert_id", "candidates", "actor"],
            select(
                request_id,
                at,
                trigger,
                rule,
                taken.c.user_id,
                bindparam("candidates", type_=JSON()),
                actor,
            ).select_from(taken),
        )
        .returning(_decision_table.c.id)
        .cte("d")
    )
    offer = (
        _assignment_table.insert()
        .from_select(
            ["request_id", "expert_id", "status", "offered_at", "respond_by", "decision_id"],
            select(
                request_id,
                expert_id,
                literal(AssignmentStatus.offered.value),
                at,
                respond_by,
                decision.c.id,
            ).select_from(decision),
        )
        .returning(_assignment_table.c.id, _assignment_table.c.decision_id)
        .cte("a")
    )
    notified = (
        _notification_table.insert()
        .from_select(
            ["expert_id", "request_id", "assignment_id", "kind", "created_at"],
            select(
                expert_id, request_id, offer.c.id, literal("assignment_offered"), at
            ).select_from(offer),
        )
        .cte("n")
    )
    logged = records.insert_history_from(
        offer,
        request_id=request_id,
        at=at,
        actor=actor,
        action="assignment_offered",
        details={
            "assignment_id": offer.c.id,
            "expert_id": sql_cast(expert_id, Text()),
            "decision_id": offer.c.decision_id,
            "rule": rule,
            "trigger": trigger,
            "respond_by": bindparam("respond_by_iso", type_=String()),
        },
    ).cte("h")
    requests = cast(Table, IntakeRequest.__table__)
    assigned = (
        update(requests)
        .where(requests.c.id == request_id, exists(select(1).select_from(offer)))
        .values(assigned_expert_id=expert_id, updated_at=at)
        .cte("r")
    )
    mailed = outbox.insert_from(offer, OFFER_KIND, {"assignment_id": offer.c.id}, at=at).cte("o")
    return select(offer.c.id, offer.c.decision_id).add_cte(notified, logged, assigned, mailed)


_OFFER_POSTGRESQL = _offer_statement()


# Routing -------------------------------------------------------------------------------------


def route(
    session: Session,
    req: IntakeRequest,
    *,
    trigger: str,
    actor: str = "system",
    exclude: Iterable[uuid.UUID] = (),
) -> Assignment | None:
    """Offer the request to the best eligible expert, or leave it in triage and alert on-duty
    staff. Does nothing for a request that has a live assignment or has ended."""
    if req.status in FINAL:
        return None
    if req.assigned_expert_id is not None:
        # Kept in step with the live assignment (the unique index catches a disagreement).
        live = repository.live_assignment(session, req.id)
        if live is not None:
            return live
        req.assigned_expert_id = None
    current = now()
    skipped = {expert_id: "excluded" for expert_id in exclude}

    def tier(name: str) -> list[Candidate]:
        return repository.candidates(
            session,
            country=req.country_of_origin or "",
            region=req.region_code,
            current=current,
            tier=name,
            request_id=req.id,
        )

    found = tier(TIER_COUNTRY)
    region_read = False
    while True:
        decision = decide(found, language=req.language, topics=req.topics, passed_over=skipped)
        if decision.rule != RoutingRule.country and not region_read and req.region_code:
            # Nobody eligible covers the country by name: the region's experts are asked.
            found += tier(TIER_REGION)
            region_read = True
            continue
        chosen: Candidate | None = None
        offered: Assignment | None = None
        for candidate in decision.ranked:
            # The ranking read a snapshot; the offer takes a unit of capacity with a
            # conditional UPDATE that re-checks it against the committed row.
            draft = DecisionDraft(
                at=current,
                trigger=trigger,
                rule=decision.rule,
                chosen=candidate.expert_id,
                report=_final_report(decision.report, candidate.expert_id, skipped),
                actor=actor,
            )
            offered = _try_offer(session, req, draft)
            if offered is not None:
                chosen = candidate
                break
            skipped[candidate.expert_id] = "at_capacity_on_commit"
        if chosen is None and decision.ranked:
            continue  # every ranked expert filled up meanwhile: decide again without them
        break
    log.info(
        "routing_decided",
        reference=req.reference,
        rule=decision.rule.value if chosen else _no_one(decision.rule).value,
        candidates=len(decision.report),
        chosen=str(chosen.expert_id) if chosen else None,
    )
    if offered is not None:
        return offered
    draft = DecisionDraft(
        at=current,
        trigger=trigger,
        rule=_no_one(decision.rule),
        chosen=None,
        report=_final_report(decision.report, None, skipped),
        actor=actor,
    )
    _to_triage(session, req, _store_decision(session, req, draft), current, actor=actor)
    return None


def _final_report(
    report: list[dict[str, Any]], chosen: uuid.UUID | None, skipped: dict[uuid.UUID, str]
) -> list[dict[str, Any]]:
    """The candidates as stored: the chosen one marked, and those ranked above it that filled
    up before their capacity could be taken marked as dropped."""
    out = []
    for entry in report:
        expert_id = uuid.UUID(entry["expert_id"])
        if expert_id == chosen:
            entry = {**entry, "outcome": "chosen"}
        elif entry["outcome"] == "ranked" and expert_id in skipped:
            entry = {**entry, "outcome": "dropped", "reason": skipped[expert_id], "rank": None}
        out.append(entry)
    return out


def _no_one(rule: RoutingRule) -> RoutingRule:
    return rule if rule in (RoutingRule.general, RoutingRule.none) else RoutingRule.none


def _try_offer(session: Session, req: IntakeRequest, draft: DecisionDraft) -> Assignment | None:
    """Offer the request to ``draft.chosen`` if a unit of their capacity can be taken; None
    (and nothing written) if they are full or inactive by now."""
    expert_id = draft.chosen
    assert expert_id is not None
    current = draft.at
    respond_by = current + dt.timedelta(minutes=get_settings().offer_response_minutes)
    # The partial unique index refuses a second live assignment of the request here.
    if session.get_bind().dialect.name == "postgresql":
        # One statement: capacity, decision, assignment, notification, history, request and
        # the offer e-mail's outbox row.
        row = session.execute(
            _OFFER_POSTGRESQL,
            {
                "request_id": req.id,
                "expert_id": expert_id,
                "at": current,
                "respond_by": respond_by,
                "respond_by_iso": respond_by.isoformat(),
                "trigger": draft.trigger,
                "rule": draft.rule.value,
                "candidates": draft.report,
                "actor": draft.actor,
            }
            | outbox.insert_from_values(),
        ).first()
        if row is None:
            return None
        assignment_id, decision_id = row
        # The statement also wrote the offer e-mail's outbox row (due now): nudge the worker.
        outbox.nudge_after_commit(session)
        # Written by the statement: tell the session, so it does not write them again.
        set_committed_value(req, "assigned_expert_id", expert_id)
        set_committed_value(req, "updated_at", current)
    else:
        if not repository.take_capacity(session, expert_id, current):
            return None
        decision_id = _store_decision(session, req, draft).id
        assignment_id = session.execute(
            _INSERT_ASSIGNMENT,
            {
                "request_id": req.id,
                "expert_id": expert_id,
                "status": AssignmentStatus.offered,
                "offered_at": current,
                "respond_by": respond_by,
                "responded_at": None,
                "reason": None,
                "decision_id": decision_id,
            },
        ).scalar_one()
        _notify(session, expert_id, "assignment_offered", req, assignment_id, current)
        records.insert_history(
            session,
            req,
            "assignment_offered",
            actor=draft.actor,
            details={
                "assignment_id": assignment_id,
                "expert_id": str(expert_id),
                "decision_id": decision_id,
                "rule": draft.rule.value,
                "trigger": draft.trigger,
                "respond_by": respond_by.isoformat(),
            },
            at=current,
        )
        req.assigned_expert_id = expert_id
    # The row as the session's object, without reading it back.
    assignment = Assignment(
        id=assignment_id,
        request_id=req.id,
        expert_id=expert_id,
        status=AssignmentStatus.offered,
        offered_at=current,
        respond_by=respond_by,
        responded_at=None,
        reason=None,
        decision_id=decision_id,
    )
    make_transient_to_detached(assignment)
    session.add(assignment)
    if session.get_bind().dialect.name != "postgresql":
        # A new assignment id: no earlier message can exist, so no de-duplication look-up.
        outbox.enqueue(session, OFFER_KIND, {"assignment_id": assignment_id})
    return assignment


def on_duty_staff(session: Session) -> Sequence[User]:
    """Staff on duty now, from the duty roster (an empty roster: every active staff user;
    see ``app/roster/service.py``)."""
    return roster.on_duty_staff(session, now())


def _to_triage(
    session: Session,
    req: IntakeRequest,
    decision: DecisionRef,
    current: dt.datetime,
    *,
    actor: str,
) -> None:
    req.assigned_expert_id = None
    staff = on_duty_staff(session)
    records.insert_history(
        session,
        req,
        "routing_no_candidate",
        actor=actor,
        details={
            "decision_id": decision.id,
            "rule": decision.rule.value,
            "trigger": decision.trigger,
            "staff_alerted": len(staff),
        },
        at=current,
    )
    for user in staff:
        outbox.enqueue(
            session,
            TRIAGE_ALERT_KIND,
            {"request_id": str(req.id), "user_id": str(user.id), "decision_id": decision.id},
            dedup_key=f"{TRIAGE_ALERT_KIND}:{decision.id}:{user.id}",
        )
    if not staff:
        log.error("routing_no_staff_to_alert", reference=req.reference)
    session.flush()


def route_safely(
    session: Session, req: IntakeRequest, *, trigger: str, actor: str = "system"
) -> Assignment | None:
    """``route`` inside a savepoint: if a concurrent routing of the same request won the race
    (unique live assignment), its assignment is returned instead of failing the caller."""
    try:
        with session.begin_nested():
            return route(session, req, trigger=trigger, actor=actor)
    except IntegrityError:
        return repository.live_assignment(session, req.id)


# The expert's answer -------------------------------------------------------------------------


def _assignment_for_update(session: Session, assignment_id: int) -> Assignment | None:
    return session.get(Assignment, assignment_id, with_for_update=True, populate_existing=True)


def respond(
    session: Session,
    assignment_id: int,
    expert: User,
    *,
    accept: bool,
    reason: str | None = None,
    via: str = "api",
) -> Assignment:
    a = _assignment_for_update(session, assignment_id)
    if a is None or a.expert_id != expert.id:
        raise AssignmentNotFound("No such assignment of yours.")
    current = now()
    if a.status != AssignmentStatus.offered:
        raise OfferClosed(
            f"This offer is {a.status.value}: it can no longer be answered.",
            details={"status": a.status.value},
        )
    if current > a.respond_by:
        raise OfferClosed(
            "The time to answer this offer has run out; it is passed on to another expert.",
            details={"status": "expired"},
        )
    req = session.get(IntakeRequest, a.request_id, with_for_update=True)
    assert req is not None
    a.responded_at = current
    actor = actor_of(expert)
    if accept:
        a.status = AssignmentStatus.accepted
        records.insert_history(
            session,
            req,
            "assignment_accepted",
            actor=actor,
            details={"assignment_id": a.id, "expert_id": str(expert.id), "via": via},
            at=current,
        )
        session.flush()
        log.info("assignment_accepted", reference=req.reference, assignment_id=a.id)
        return a
    a.status = AssignmentStatus.declined
    a.reason = reason or "declined_by_expert"
    repository.release_capacity(session, a.expert_id)
    req.assigned_expert_id = None
    records.insert_history(
        session,
        req,
        "assignment_declined",
        actor=actor,
        details={
            "assignment_id": a.id,
            "expert_id": str(expert.id),
            "reason": a.reason,
            "via": via,
        },
        at=current,
    )
    session.flush()
    log.info("assignment_declined", reference=req.reference, assignment_id=a.id)
    route(session, req, trigger="declined")
    return a


def expire_offers(session: Session, *, limit: int = 200) -> int:
    """Offers not answered in time go to the next candidate. Returns how many expired."""
    current = now()
    stmt = (
        select(Assignment)
        .where(Assignment.status == AssignmentStatus.offered, Assignment.respond_by < current)
        .order_by(Assignment.respond_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    expired = 0
    for a in session.scalars(stmt).all():
        req = session.get(IntakeRequest, a.request_id, with_for_update=True)
        assert req is not None
        a.status = AssignmentStatus.expired
        a.reason = "no_answer"
        repository.release_capacity(session, a.expert_id)
        req.assigned_expert_id = None
        _notify(session, a.expert_id, "offer_expired", req, a.id, current)
        records.insert_history(
            session,
            req,
            "assignment_expired",
            actor="system",
            details={"assignment_id": a.id, "expert_id": str(a.expert_id)},
            at=current,
        )
        session.flush()
        route(session, req, trigger="expired")
        expired += 1
    if expired:
        log.info("offers_expired", count=expired)
    return expired


# Staff ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reassigned:
    """What a reassignment did: the new live assignment (None: in triage) and the expert the
    request left (None: it had none, or stays with the one named)."""

    assignment: Assignment | None
    from_expert: uuid.UUID | None


def reassign(
    session: Session,
    req: IntakeRequest,
    *,
    by: User,
    expert_id: uuid.UUID | None,
    reason: str | None,
) -> Reassigned:
    """Take the request from its current expert (if any) and offer it to ``expert_id`` or to
    the next candidate. Staff may do this at any time of an open request. What follows for a
    booked consultation is ``app.flows.request.reassign``'s part."""
    if req.status in FINAL:
        raise OfferClosed(f"The request is {req.status.value}: it cannot be reassigned.")
    current = now()
    actor = actor_of(by)
    if expert_id is not None:
        target = _check_target(session, req, expert_id, current)
    live = repository.live_assignment(session, req.id, for_update=True)
    previous = live.expert_id if live is not None else None
    if live is not None:
        if expert_id is not None and live.expert_id == expert_id:
            return Reassigned(live, from_expert=None)
        live.status = AssignmentStatus.reassigned
        live.reason = reason or "staff_reassigned"
        live.responded_at = live.responded_at or current
        repository.release_capacity(session, live.expert_id)
        req.assigned_expert_id = None
        _notify(session, live.expert_id, "assignment_withdrawn", req, live.id, current)
        records.insert_history(
            session,
            req,
            "assignment_reassigned",
            actor=actor,
            details={
                "assignment_id": live.id,
                "expert_id": str(live.expert_id),
                "reason": live.reason,
            },
            at=current,
        )
        session.flush()
    if expert_id is None:
        result = route(session, req, trigger="staff_reassign", actor=actor)
    else:
        result = _offer_chosen_by_staff(session, req, target, current, actor=actor)
    return Reassigned(result, from_expert=previous)


def _check_target(
    session: Session, req: IntakeRequest, expert_id: uuid.UUID, current: dt.datetime
) -> ExpertProfile:
    profile = session.get(ExpertProfile, expert_id, populate_existing=True)
    user = session.get(User, expert_id)
    if profile is None or user is None or user.role != Role.expert:
        raise ExpertNotFound("No expert with this id.")
    if not profile.is_active or not user.is_active:
        raise ExpertCannotTake("This expert is deactivated.")
    if repository.is_away(session, expert_id, current):
        raise ExpertCannotTake("This expert is away now (an unavailable period).")
    return profile


def _offer_chosen_by_staff(
    session: Session,
    req: IntakeRequest,
    profile: ExpertProfile,
    current: dt.datetime,
    *,
    actor: str,
) -> Assignment:
    draft = DecisionDraft(
        at=current,
        trigger="staff_reassign",
        rule=RoutingRule.staff,
        chosen=profile.user_id,
        report=[
            {
                "expert_id": str(profile.user_id),
                "tier": "staff",
                "outcome": "chosen",
                "reason": "chosen_by_staff",
                "rank": 1,
                "language_match": False,
                "topic_match": False,
                "open_assignments": profile.open_assignments,
                "max_open_assignments": profile.max_open_assignments,
                "last_assigned_at": None,
            }
        ],
        actor=actor,
    )
    offered = _try_offer(session, req, draft)
    if offered is None:
        raise ExpertCannotTake(
            "This expert has reached their maximum of open assignments.",
            details={"max_open_assignments": profile.max_open_assignments},
        )
    return offered


def release(session: Session, req: IntakeRequest, *, reason: str) -> None:
    """The request ended (closed, declined, spam, withdrawn): its assignment is no longer open."""
    live = repository.live_assignment(session, req.id, for_update=True)
    if live is None:
        return
    current = now()
    live.status = AssignmentStatus.cancelled
    live.reason = reason
    repository.release_capacity(session, live.expert_id)
    records.insert_history(
        session,
        req,
        "assignment_released",
        actor="system",
        details={"assignment_id": live.id, "expert_id": str(live.expert_id), "reason": reason},
        at=current,
    )
    session.flush()


def withdraw_offers_of(session: Session, expert_id: uuid.UUID, *, reason: str) -> int:
    """A deactivated expert's pending offers go to the next candidate (accepted ones stay for
    staff to reassign)."""
    offers = session.scalars(
        select(Assignment)
        .where(Assignment.expert_id == expert_id, Assignment.status == AssignmentStatus.offered)
        .with_for_update()
    ).all()
    current = now()
    for a in offers:
        req = session.get(IntakeRequest, a.request_id, with_for_update=True)
        assert req is not None
        a.status = AssignmentStatus.reassigned
        a.reason = reason
        repository.release_capacity(session, a.expert_id)
        req.assigned_expert_id = None
        records.insert_history(
            session,
            req,
            "assignment_reassigned",
            actor="system",
            details={"assignment_id": a.id, "expert_id": str(a.expert_id), "reason": reason},
            at=current,
        )
        session.flush()
        route(session, req, trigger="expert_deactivated")
    return len(offers)


def recount_open_assignments(session: Session) -> None:
    """Set every counter from the assignments themselves (repair tool; tests compare)."""
    counts = (
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.expert_id == ExpertProfile.user_id,
            Assignment.status.in_(LIVE_ASSIGNMENT),
        )
        .scalar_subquery()
    )
    session.execute(
        update(ExpertProfile)
        .values(open_assignments=counts)
        .execution_options(synchronize_session=False)
    )
