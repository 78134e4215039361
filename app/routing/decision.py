"""The routing decision itself, pure: given the candidates (as the repository read them) and
the request's language and topics, which rule matched, who is eligible in what order, and a
report of every candidate with why it was ranked or dropped.

1. Tiers: experts covering the request's country by name; if none of them is eligible, those
   covering its region; if none, no one (staff triage: the general pool).
2. Dropped: away now (an unavailable period), at capacity, or already passed over for this
   request (declined it, let the offer expire, or was reassigned away from it).
3. Order among the eligible of the matched tier: a shared language first, then a topic match
   (soft preferences: they order, never exclude), then fewest open assignments, then longest
   since the last assignment (never assigned counts as longest), then the expert id, so equal
   experts are always ordered the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.models import RoutingRule

TIER_COUNTRY = "country"
TIER_REGION = "region"

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Candidate:
    expert_id: uuid.UUID
    tier: str  # "country" or "region"
    languages: Sequence[str]
    topics: Sequence[str]
    open_assignments: int
    max_open_assignments: int
    last_assigned_at: dt.datetime | None
    away: bool
    # Why this expert is not offered this request again (declined it before, ...), if so.
    passed_over: str | None = None


@dataclass
class Decision:
    rule: RoutingRule
    # Eligible experts of the matched tier, best first.
    ranked: list[Candidate] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)


def primary_language(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def language_match(candidate: Candidate, language: str | None) -> bool:
    if not language:
        return False
    wanted = primary_language(language)
    return any(primary_language(lang) == wanted for lang in candidate.languages)


def topic_match(candidate: Candidate, topics: Iterable[str]) -> bool:
    return bool(set(candidate.topics) & set(topics))


def drop_reason(candidate: Candidate, passed_over: Mapping[uuid.UUID, str]) -> str | None:
    if candidate.passed_over is not None:
        return candidate.passed_over
    if candidate.expert_id in passed_over:
        return passed_over[candidate.expert_id]
    if candidate.away:
        return "unavailable"
    if candidate.open_assignments >= candidate.max_open_assignments:
        return "at_capacity"
    return None


def decide(
    candidates: Sequence[Candidate],
    *,
    language: str | None,
    topics: Sequence[str],
    passed_over: Mapping[uuid.UUID, str],
) -> Decision:
    wanted_topics = set(topics)
    # (candidate, language match, topic match), each computed once.
    scored = [
        (c, language_match(c, language), bool(wanted_topics.intersection(c.topics)))
        for c in candidates
    ]

    def key(item: tuple[Candidate, bool, bool]) -> tuple[bool, bool, int, dt.datetime, str]:
        c, lang, topic = item
        return (
            not lang,
            not topic,
            c.open_assignments,
            c.last_assigned_at or EPOCH,
            str(c.expert_id),
        )

    def entry(
        item: tuple[Candidate, bool, bool], outcome: str, reason: str | None, rank: int | None
    ) -> dict[str, Any]:
        c, lang, topic = item
        return {
            "expert_id": str(c.expert_id),
            "tier": c.tier,
            "outcome": outcome,
            "reason": reason,
            "rank": rank,
            "language_match": lang,
            "topic_match": topic,
            "open_assignments": c.open_assignments,
            "max_open_assignments": c.max_open_assignments,
            "last_assigned_at": c.last_assigned_at.isoformat() if c.last_assigned_at else None,
        }

    decision = Decision(rule=RoutingRule.general if not candidates else RoutingRule.none)
    for tier, rule in ((TIER_COUNTRY, RoutingRule.country), (TIER_REGION, RoutingRule.region)):
        members = sorted((item for item in scored if item[0].tier == tier), key=key)
        if decision.ranked:
            # A tier above matched: these were not needed.
            decision.report += [
                entry(item, "not_needed", f"{decision.rule}_matched", None) for item in members
            ]
            continue
        eligible = []
        for item in members:
            reason = drop_reason(item[0], passed_over)
            if reason is None:
                eligible.append(item)
            else:
                decision.report.append(entry(item, "dropped", reason, None))
        if eligible:
            decision.rule = rule
            decision.ranked = [item[0] for item in eligible]
            decision.report += [
                entry(item, "ranked", None, i + 1) for i, item in enumerate(eligible)
            ]
    return decision
