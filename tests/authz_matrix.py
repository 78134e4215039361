"""The authorisation matrix: every API route x every kind of caller, with the status each gets.

``tests/system/test_authz_matrix.py`` calls every cell for real (each call inside a savepoint
that is rolled back, so one cell's effects never reach the next) and checks the status; a route
of the app that has no row here fails that test, naming it. ``python -m tests.authz_table`` writes
the role x action table of ``docs/authorization.md`` from this file (the test checks it is current).

Adding a route: add a row to ``MATRIX`` keyed ``(METHOD, path template)`` with the action in
words, the seven statuses in ``ROLES`` order, and (for POST/PUT/PATCH) the JSON body to send;
add a value to ``PATH_VALUES`` if it uses a new path parameter; then run
``python -m tests.authz_table``. ``AUTHZ_RECORD=1 pytest tests/system/test_authz_matrix.py``
prints the statuses observed for every route (a starting point; read each one before you copy it).

The callers (``ROLES``): nobody signed in; the requester of request A (their link token); the
requester of request B; the expert who accepted A; an expert who accepted B (not A); staff;
admin. Path parameters name request A, A's accepted expert, A's assignment, its booked consultation
and the expert's CV (the ``{document_id}``); other ids do not
exist (so "may do it" shows as 404/422 past the role check, and the role check as 401/403).
A body of ``{}`` is sent where none is given: callers who pass the gate get 422 from it.

Web pages (``include_in_schema=False``: the HTML and form routes of app/web, ``/docs``) are not
in this matrix: they sign in through a cookie and answer redirects and pages; their access
rules are tested with the pages (tests/web/test_web_*.py) and they call the same service functions
as the API routes below.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ROLES = (
    "anonymous",
    "requester",
    "other_requester",
    "expert_assigned",
    "expert_other",
    "staff",
    "admin",
)
ROLE_TITLES = (
    "anonymous",
    "requester (this request)",
    "requester (another)",
    "expert (assigned)",
    "expert (not assigned)",
    "staff",
    "admin",
)

#: Values of path parameters (``{name}`` -> a key of the world, or a literal).
PATH_VALUES: dict[str, str] = {
    "reference": "@reference",
    "expert_id": "@expert_id",
    "assignment_id": "@assignment_id",
    "user_id": "@staff_id",
    "code": "KG",
    "region_code": "@region_code",
    "document_id": "@document_id",
    "consultation_id": "@consultation_id",
    "period_id": "999999",
    "notification_id": "999999",
    "message_id": "999999",
    "override_id": "999999",
    "shift_id": "999999",
    "token": "not-a-token",
    "set_aside_id": "00000000-0000-4000-8000-000000000000",
    "session_id": "00000000-0000-4000-8000-000000000000",
}


@dataclass(frozen=True)
class Row:
    action: str
    statuses: tuple[int, ...]
    body: Any = None


def row(action: str, statuses: str, body: Any = None) -> Row:
    codes = tuple(int(x) for x in statuses.split())
    assert len(codes) == len(ROLES), f"{action}: {len(codes)} statuses for {len(ROLES)} roles"
    return Row(action, codes, body)


MATRIX: dict[tuple[str, str], Row] = {
    ("GET", "/api/v1/admin/audit"): row(
        "Search the audit trail (newest first, keyset pages)",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/audit.csv"): row(
        "The same search as CSV (at most 100,000 rows, newest first)",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/countries"): row(
        "Countries (all fields)",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/countries"): row(
        "Add a country",
        "401 401 401 403 403 403 422",
    ),
    ("DELETE", "/api/v1/admin/countries/{code}"): row(
        "Remove a country from the table (its requests go to the general pool)",
        "401 401 401 403 403 403 204",
    ),
    ("PATCH", "/api/v1/admin/countries/{code}"): row(
        "Edit a country's profile: region, civic-space rating, date, source, notes",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/documents"): row(
        "Upload a document (PDF only, checked by content)",
        "401 401 401 403 403 403 422",
    ),
    ("GET", "/api/v1/admin/experts"): row(
        "List experts",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/experts"): row(
        "Create an expert profile for a user account of role expert",
        "401 401 401 403 403 403 422",
    ),
    ("GET", "/api/v1/admin/experts/region-leads"): row(
        "Each region's lead expert (fallback for documents and escalations)",
        "401 401 401 403 403 403 200",
    ),
    ("PUT", "/api/v1/admin/experts/region-leads/{region_code}"): row(
        "Name (or remove) a region's lead expert",
        "401 401 401 403 403 403 422",
    ),
    ("GET", "/api/v1/admin/experts/{expert_id}"): row(
        "One expert",
        "401 401 401 403 403 403 200",
    ),
    ("PATCH", "/api/v1/admin/experts/{expert_id}"): row(
        "Update an expert (lists given replace the old ones)",
        "401 401 401 403 403 403 200",
    ),
    ("PUT", "/api/v1/admin/experts/{expert_id}/cv"): row(
        "Upload the expert's CV (PDF only, checked by content, size-limited)",
        "401 401 401 403 403 403 422",
    ),
    ("POST", "/api/v1/admin/experts/{expert_id}/deactivate"): row(
        "Deactivate: no new offers; pending offers go to the next expert",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/experts/{expert_id}/reactivate"): row(
        "Reactivate an expert",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/experts/{expert_id}/unavailable"): row(
        "An expert's unavailable periods (leave, days off)",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/experts/{expert_id}/unavailable"): row(
        "Add an unavailable period",
        "401 401 401 403 403 403 422",
    ),
    ("DELETE", "/api/v1/admin/experts/{expert_id}/unavailable/{period_id}"): row(
        "Remove an unavailable period",
        "401 401 401 403 403 403 404",
    ),
    ("POST", "/api/v1/admin/mail/test"): row(
        "Send a test e-mail",
        "401 401 401 403 403 403 202",
    ),
    ("GET", "/api/v1/admin/regions"): row(
        "Regions (all fields)",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/regions"): row(
        "Add a region",
        "401 401 401 403 403 403 422",
    ),
    ("DELETE", "/api/v1/admin/regions/{code}"): row(
        "Delete a region that no country belongs to",
        "401 401 401 403 403 403 404",
    ),
    ("PATCH", "/api/v1/admin/regions/{code}"): row(
        "Edit a region",
        "401 401 401 403 403 403 404",
    ),
    ("POST", "/api/v1/admin/requests/{reference}/erase"): row(
        "Erase a request's personal data",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/requests/{reference}/export"): row(
        "Export everything held about a request (JSON download, decrypted)",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/roster/gaps"): row(
        "Periods with no staff on duty, or a region with no expert nor lead on duty",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/roster/on-duty"): row(
        "Who is on duty at an instant (default: now)",
        "401 401 401 403 403 403 200",
    ),
    ("GET", "/api/v1/admin/roster/overrides"): row(
        "Roster overrides",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/roster/overrides"): row(
        "Add a one-off change: an extra shift or a cancelled period",
        "401 401 401 403 403 403 422",
    ),
    ("DELETE", "/api/v1/admin/roster/overrides/{override_id}"): row(
        "Remove a roster override",
        "401 401 401 403 403 403 404",
    ),
    ("GET", "/api/v1/admin/roster/shifts"): row(
        "Roster shifts",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/roster/shifts"): row(
        "Add a weekly shift (local wall-clock times in the person's zone)",
        "401 401 401 403 403 403 422",
    ),
    ("DELETE", "/api/v1/admin/roster/shifts/{shift_id}"): row(
        "Remove a roster shift",
        "401 401 401 403 403 403 404",
    ),
    ("PATCH", "/api/v1/admin/roster/shifts/{shift_id}"): row(
        "Edit a roster shift",
        "401 401 401 403 403 403 404",
    ),
    ("GET", "/api/v1/admin/sample-reports"): row(
        "Every sample report, by tag",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/sample-reports"): row(
        "Upload a sample report (PDF, checked by content)",
        "401 401 401 403 403 403 422",
    ),
    ("DELETE", "/api/v1/admin/sample-reports/{document_id}"): row(
        "Delete a sample report",
        "401 401 401 403 403 403 404",
    ),
    ("GET", "/api/v1/admin/users"): row(
        "List users",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/users"): row(
        "Invite a user",
        "401 401 401 403 403 403 422",
    ),
    ("PATCH", "/api/v1/admin/users/{user_id}"): row(
        "Change a user's name or role (a role change signs them out)",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/users/{user_id}/deactivate"): row(
        "Deactivate a user and revoke their sessions",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/users/{user_id}/reactivate"): row(
        "Reactivate a user",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/admin/users/{user_id}/resend-invite"): row(
        "Send a new invite link (the old one stops working)",
        "401 401 401 403 403 403 400",
    ),
    ("POST", "/api/v1/admin/users/{user_id}/reset-second-factor"): row(
        "Turn off a user's second factor (lost device) and revoke their sessions",
        "401 401 401 403 403 403 200",
    ),
    ("POST", "/api/v1/auth/change-password"): row(
        "Change my password (signs out all sessions)",
        "401 401 401 422 422 422 422",
    ),
    ("POST", "/api/v1/auth/login"): row(
        "Sign in (staff, experts, admins)",
        "422 422 422 422 422 422 422",
    ),
    ("POST", "/api/v1/auth/logout"): row(
        "Sign out: revoke this session",
        "401 401 401 204 204 204 204",
    ),
    ("GET", "/api/v1/auth/me"): row(
        "Who am I",
        "401 401 401 200 200 200 200",
    ),
    ("PATCH", "/api/v1/auth/me"): row(
        "Set my time zone and language",
        "401 401 401 200 200 200 200",
        {"timezone": "Asia/Bishkek", "language": "ru"},
    ),
    ("POST", "/api/v1/auth/password-reset"): row(
        "Ask for a password-reset link",
        "422 422 422 422 422 422 422",
    ),
    ("POST", "/api/v1/auth/recovery-codes"): row(
        "Generate new recovery codes (the old ones stop working)",
        "401 401 401 422 422 422 422",
    ),
    ("GET", "/api/v1/auth/sessions"): row(
        "My live sessions (newest first)",
        "401 401 401 200 200 200 200",
    ),
    ("POST", "/api/v1/auth/sessions/end-others"): row(
        "Sign out everywhere else (every session but this one)",
        "401 401 401 204 204 204 204",
    ),
    ("DELETE", "/api/v1/auth/sessions/{session_id}"): row(
        "End one of my sessions (its token stops working)",
        "401 401 401 404 404 404 404",
    ),
    ("POST", "/api/v1/auth/set-password"): row(
        "Set a password with an invite or reset link",
        "422 422 422 422 422 422 422",
    ),
    ("POST", "/api/v1/auth/totp/confirm"): row(
        "Confirm the second factor with a first code",
        "401 401 401 422 422 422 422",
    ),
    ("POST", "/api/v1/auth/totp/disable"): row(
        "Turn off my second factor (to reset it: turn it off, then on again)",
        "401 401 401 422 422 422 422",
    ),
    ("POST", "/api/v1/auth/totp/setup"): row(
        "Start turning on the second factor",
        "401 401 401 200 200 200 200",
    ),
    ("GET", "/api/v1/cases/{reference}"): row(
        "One case: request, SLA, routing, consultation, contacts, messages, notes, history",
        "401 401 401 200 404 200 200",
    ),
    ("PATCH", "/api/v1/cases/{reference}"): row(
        "Correct the request's fields (countries, language, zone, contact) and re-route",
        "401 401 401 403 404 200 200",
    ),
    ("POST", "/api/v1/cases/{reference}/assign"): row(
        "Assign or reassign: to a named expert, or (expert_id null) to the next candidate",
        "401 401 401 403 404 200 200",
    ),
    ("GET", "/api/v1/cases/{reference}/contacts"): row(
        "Contacts with the requester, and the first-response state",
        "401 401 401 200 404 200 200",
    ),
    ("GET", "/api/v1/cases/{reference}/attachments/{document_id}"): row(
        "An attachment that arrived by e-mail (the case's; no such document here)",
        "401 401 401 404 404 404 404",
    ),
    ("POST", "/api/v1/cases/{reference}/contacts"): row(
        "Record a contact with the requester (the first one stops the clock)",
        "401 401 401 201 404 201 201",
        {"channel": "phone", "contacted_at": "@now"},
    ),
    ("POST", "/api/v1/cases/{reference}/escalation/ack"): row(
        "Acknowledge the case's escalation: the chain stops climbing",
        "401 401 401 403 403 404 404",
    ),
    ("DELETE", "/api/v1/cases/{reference}/merge"): row(
        "Unlink a merged request: it stands on its own again",
        "401 401 401 403 404 409 409",
    ),
    ("POST", "/api/v1/cases/{reference}/merge"): row(
        "Merge this request (a duplicate) into another one; it leaves the open queue",
        "401 401 401 403 404 200 200",
        {"into": "@reference_b"},
    ),
    ("POST", "/api/v1/cases/{reference}/notes"): row(
        "Add an internal note (never shown to the requester; kept encrypted)",
        "401 401 401 201 404 201 201",
        {"body": "A note"},
    ),
    ("GET", "/api/v1/cases/{reference}/presence"): row(
        "Who else has this case open now (names and activity only)",
        "401 401 401 200 404 200 200",
    ),
    ("POST", "/api/v1/cases/{reference}/presence"): row(
        "I have this case open (viewing or replying): a heartbeat; answers who else has",
        "401 401 401 200 404 200 200",
        {"activity": "viewing"},
    ),
    ("POST", "/api/v1/cases/{reference}/replies"): row(
        "Reply to the requester by e-mail (threaded, in their language; a first response)",
        "401 401 401 201 404 201 201",
        {"body": "Hello"},
    ),
    ("POST", "/api/v1/cases/{reference}/sample-report/resend"): row(
        "Send the best-matching sample report to the requester again",
        "401 401 401 403 404 409 409",
    ),
    ("POST", "/api/v1/cases/{reference}/status"): row(
        "Change the status (an illegal move is 409 naming the allowed ones)",
        "401 401 401 403 404 200 200",
        {"status": "in_progress"},
    ),
    ("PATCH", "/api/v1/cases/{reference}/triage"): row(
        "Complete an e-mailed request's countries and language; it is routed then",
        "401 401 401 403 403 422 422",
    ),
    ("GET", "/api/v1/countries"): row(
        "Countries for the form",
        "200 200 200 200 200 200 200",
    ),
    ("GET", "/api/v1/countries/{code}/profile"): row(
        "A country's profile (staff, experts, admins)",
        "401 401 401 200 200 200 200",
    ),
    ("GET", "/api/v1/documents/{document_id}"): row(
        "Download a document",
        "401 401 401 200 404 200 200",
    ),
    ("GET", "/api/v1/documents/{document_id}/info"): row(
        "A document's description",
        "401 401 401 200 404 200 200",
    ),
    ("GET", "/api/v1/expert/assignments"): row(
        "My assignments (open ones; all=true for the past too)",
        "401 401 401 200 200 403 403",
    ),
    ("POST", "/api/v1/expert/assignments/{assignment_id}/accept"): row(
        "Accept an offered request",
        "401 401 401 409 404 403 403",
    ),
    ("POST", "/api/v1/expert/assignments/{assignment_id}/decline"): row(
        "Decline an offered request (it goes to the next expert)",
        "401 401 401 409 404 403 403",
    ),
    ("GET", "/api/v1/expert/consultations"): row(
        "My consultations (booked and not yet over; all=true for past and cancelled too)",
        "401 401 401 200 200 403 403",
    ),
    ("GET", "/api/v1/expert/consultations/{consultation_id}/host-link"): row(
        "A fresh link to start my consultation's meeting as host",
        "401 401 401 200 404 403 403",
    ),
    ("GET", "/api/v1/expert/me"): row(
        "My profile",
        "401 401 401 200 200 403 403",
    ),
    ("GET", "/api/v1/expert/notifications"): row(
        "My notifications, newest first",
        "401 401 401 200 200 403 403",
    ),
    ("POST", "/api/v1/expert/notifications/{notification_id}/read"): row(
        "Mark a notification read",
        "401 401 401 404 404 403 403",
    ),
    ("GET", "/api/v1/expert/requests/{reference}"): row(
        "A request offered to or accepted by me",
        "401 401 401 200 404 403 403",
    ),
    ("GET", "/api/v1/expert/unavailable"): row(
        "My unavailable periods",
        "401 401 401 200 200 403 403",
    ),
    ("POST", "/api/v1/expert/unavailable"): row(
        "Add leave or a day off (no offers and no consultation slots then)",
        "401 401 401 422 422 403 403",
    ),
    ("DELETE", "/api/v1/expert/unavailable/{period_id}"): row(
        "Remove one of my unavailable periods",
        "401 401 401 404 404 403 403",
    ),
    ("GET", "/api/v1/experts"): row(
        "Active experts",
        "401 401 401 200 200 200 200",
    ),
    ("GET", "/api/v1/experts/{expert_id}"): row(
        "One expert (public fields for experts)",
        "401 401 401 200 200 200 200",
    ),
    ("GET", "/api/v1/experts/{expert_id}/availability"): row(
        "An expert's availability (the expert's own; staff and admins any)",
        "401 401 401 200 404 200 200",
    ),
    ("PUT", "/api/v1/experts/{expert_id}/availability"): row(
        "Replace an expert's availability (the expert's own; admins any)",
        "401 401 401 200 404 403 200",
    ),
    ("GET", "/api/v1/inbound/set-aside"): row(
        "Mail set aside (auto-replies, list mail, bounces, read receipts, ...), with why",
        "401 401 401 403 403 200 200",
    ),
    ("POST", "/api/v1/inbound/set-aside/{set_aside_id}/open"): row(
        "Take a set-aside message as a person's mail: a new request, or a reply on its own",
        "401 401 401 403 403 404 404",
    ),
    ("GET", "/api/v1/outbox/dead-letters"): row(
        "Messages that could not be delivered",
        "401 401 401 403 403 200 200",
    ),
    ("POST", "/api/v1/outbox/{message_id}/retry"): row(
        "Retry a dead-lettered message",
        "401 401 401 403 403 404 404",
    ),
    ("GET", "/api/v1/queue"): row(
        "The staff queue: filters, views, search, keyset pages, counts over open requests",
        "401 401 401 403 403 200 200",
    ),
    ("GET", "/api/v1/regions"): row(
        "Regions of expertise",
        "200 200 200 200 200 200 200",
    ),
    ("GET", "/api/v1/reports/sla"): row(
        "First-response figures for requests that arrived in a date range, grouped",
        "401 401 401 403 403 200 200",
    ),
    ("GET", "/api/v1/reports/sla.csv"): row(
        "The same figures as CSV (one row per group, then the total)",
        "401 401 401 403 403 200 200",
    ),
    ("POST", "/api/v1/requests"): row(
        "Submit the request form",
        "422 422 422 422 422 422 422",
    ),
    ("POST", "/api/v1/requests/recover"): row(
        "Ask for the link again",
        "422 422 422 422 422 422 422",
    ),
    ("GET", "/api/v1/requests/{reference}"): row(
        "The requester's own request",
        "404 200 404 404 404 404 404",
    ),
    ("DELETE", "/api/v1/requests/{reference}/consultation"): row(
        "Cancel the booked consultation",
        "404 200 404 200 404 200 200",
    ),
    ("GET", "/api/v1/requests/{reference}/consultation"): row(
        "The request's consultation (the booked one, else the latest)",
        "404 200 404 200 404 200 200",
    ),
    ("PATCH", "/api/v1/requests/{reference}/consultation"): row(
        "Move the booked consultation to another free slot (same expert)",
        "404 422 404 422 404 422 422",
    ),
    ("POST", "/api/v1/requests/{reference}/consultation"): row(
        "Book a consultation at one of the offered slots",
        "404 422 404 422 404 422 422",
    ),
    ("POST", "/api/v1/requests/{reference}/erase"): row(
        "Withdraw my request and erase my data",
        "404 200 404 404 404 404 404",
    ),
    ("GET", "/api/v1/requests/{reference}/export"): row(
        "Download everything held about my request",
        "404 200 404 404 404 404 404",
    ),
    ("POST", "/api/v1/requests/{reference}/reassign"): row(
        "Reassign: to a named expert, or to the next candidate",
        "401 401 401 403 403 200 200",
    ),
    ("POST", "/api/v1/requests/{reference}/route"): row(
        "Route a request now (e.g. one completed from an e-mail, or waiting in triage)",
        "401 401 401 403 403 200 200",
    ),
    ("GET", "/api/v1/requests/{reference}/routing"): row(
        "Routing of a request: every decision with its reasons, every assignment",
        "401 401 401 403 403 200 200",
    ),
    ("GET", "/api/v1/requests/{reference}/slots"): row(
        "Free consultation slots of the request's expert (or of its region's pool)",
        "404 422 404 404 404 422 422",
    ),
    ("POST", "/api/v1/requests/{reference}/withdraw"): row(
        "Withdraw my request",
        "404 200 404 404 404 404 404",
    ),
    ("GET", "/healthz"): row(
        "The process is alive",
        "200 200 200 200 200 200 200",
    ),
    ("GET", "/metrics"): row(
        "Prometheus metrics",
        "200 200 200 200 200 200 200",
    ),
    ("GET", "/readyz"): row(
        "Database and broker reachable",
        "200 200 200 200 200 200 200",
    ),
    ("POST", "/webhooks/inbound-email"): row(
        "Take one e-mail (raw RFC 822 body), authenticated by the shared secret",
        "401 401 401 401 401 401 401",
    ),
    ("POST", "/webhooks/zoom"): row(
        "Zoom event subscription endpoint",
        "401 401 401 401 401 401 401",
    ),
}


def expected(method: str, path: str) -> dict[str, int]:
    r = MATRIX[(method, path)]
    return dict(zip(ROLES, r.statuses, strict=True))


def markdown_table() -> str:
    """The role x action table (docs/authorization.md), one line per route, in path order."""
    head = "| endpoint | action | " + " | ".join(ROLE_TITLES) + " |"
    sep = "|" + "---|" * (len(ROLES) + 2)
    lines = [head, sep]
    for (method, path), r in sorted(MATRIX.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = " | ".join(str(s) for s in r.statuses)
        lines.append(f"| `{method} {path}` | {r.action} | {cells} |")
    return "\n".join(lines) + "\n"


def iter_rows() -> Iterator[tuple[str, str, Row]]:
    for (method, path), r in MATRIX.items():
        yield method, path, r
