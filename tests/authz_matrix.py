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

Web pages (``include_in_schema=False``: the HTML and form routes of app/web, ``/docs``) are in
``PAGES`` below, one row per route with its gate (``PAGE_GATES``: who may use it). They sign in
through a cookie and answer pages and redirects rather than statuses, so the table says what
each kind of caller gets; ``tests/system/test_authz_matrix.py`` checks that every page route has
a row and calls every signed-in page (GET and POST, the POSTs with a valid CSRF token) as each
caller, checking the gate: a sign-in redirect, a 403 that changes nothing, or through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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
    "saved_id": "999999",
    "calendar_id": "00000000-0000-4000-8000-000000000000",
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
    ("POST", "/api/v1/cases/{reference}/replies/preview"): row(
        "Preview a reply: the exact e-mail the same body and subject would send",
        "401 401 401 200 404 200 200",
        {"body": "We can help."},
    ),
    ("GET", "/api/v1/cases/{reference}/whatsapp"): row(
        "What may be sent on WhatsApp now (free text in the 24-hour window, else templates), why",
        "401 401 401 200 404 200 200",
    ),
    ("POST", "/api/v1/cases/{reference}/whatsapp"): row(
        "Write to the requester on WhatsApp (a first response); 409 while it is not connected",
        "401 401 401 409 404 409 409",
        {"text": "Hello"},
    ),
    ("POST", "/api/v1/cases/{reference}/take"): row(
        "Take the request (assign it to me): I answer the requester",
        "401 401 401 403 404 200 200",
    ),
    ("GET", "/api/v1/saved-replies"): row(
        "Saved replies to insert into a reply (staff and admins)",
        "401 401 401 403 403 200 200",
    ),
    ("POST", "/api/v1/admin/saved-replies"): row(
        "Add a saved reply (title unique per language)",
        "401 401 401 403 403 403 422",
    ),
    ("PATCH", "/api/v1/admin/saved-replies/{saved_id}"): row(
        "Edit a saved reply (only the fields given change)",
        "401 401 401 403 403 403 404",
    ),
    ("DELETE", "/api/v1/admin/saved-replies/{saved_id}"): row(
        "Delete a saved reply",
        "401 401 401 403 403 403 404",
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
    ("GET", "/api/v1/experts/{expert_id}/calendars"): row(
        "An expert's own calendars and the state of their reads (own; staff and admins any)",
        "401 401 401 200 404 200 200",
    ),
    ("POST", "/api/v1/experts/{expert_id}/calendars"): row(
        "Connect an expert's calendar: private ICS address or CalDAV account (own; admins any)",
        "401 401 401 201 404 403 201",
        {"kind": "ics", "address": "https://calendar.example.org/secret.ics"},
    ),
    ("DELETE", "/api/v1/experts/{expert_id}/calendars/{calendar_id}"): row(
        "Remove an expert's calendar (own; admins any)",
        "401 401 401 404 404 403 404",
    ),
    ("POST", "/api/v1/experts/{expert_id}/calendars/{calendar_id}/refresh"): row(
        "Read an expert's calendar again soon (own; admins any)",
        "401 401 401 404 404 403 404",
    ),
    ("GET", "/api/v1/experts/{expert_id}/calendar-feed"): row(
        "The private feed address of an expert's consultations (own; admins any)",
        "401 401 401 200 404 403 200",
    ),
    ("POST", "/api/v1/experts/{expert_id}/calendar-feed/rotate"): row(
        "A new feed address of an expert's consultations (own; admins any)",
        "401 401 401 200 404 403 200",
    ),
    ("DELETE", "/api/v1/experts/{expert_id}/calendar-feed"): row(
        "Revoke the feed address (own; admins any)",
        "401 401 401 204 404 403 204",
    ),
    ("GET", "/api/v1/experts/{expert_id}/slot-explanation"): row(
        "Why a time is not offered with an expert (staff and admins; `at` required)",
        "401 401 401 403 403 422 422",
    ),
    ("GET", "/api/v1/requests/{reference}/slot-explanation"): row(
        "Why a time is not offered for a request (staff and admins; `at` required)",
        "401 401 401 403 403 422 422",
    ),
    ("GET", "/calendar-feeds/{token}.ics"): row(
        "An expert's consultations as a calendar feed (the address is the key; others: 404)",
        "404 404 404 404 404 404 404",
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
    ("POST", "/api/v1/requests/{reference}/consultation/hold"): row(
        "Hold one of the offered slots while the requester confirms",
        "404 422 404 422 404 422 422",
    ),
    ("GET", "/api/v1/requests/{reference}/consultation/hold"): row(
        "The time held for the request, while the hold lasts",
        "404 404 404 404 404 404 404",
    ),
    ("DELETE", "/api/v1/requests/{reference}/consultation/hold"): row(
        "Release the held time",
        "404 404 404 404 404 404 404",
    ),
    ("POST", "/api/v1/requests/{reference}/consultation/hold/confirm"): row(
        "Confirm the held time: book it (or move the booked consultation there)",
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
    ("GET", "/webhooks/whatsapp"): row(
        "Meta's webhook verification handshake (the challenge only for our verify token)",
        "403 403 403 403 403 403 403",
    ),
    ("POST", "/webhooks/whatsapp"): row(
        "WhatsApp Business events, signed with X-Hub-Signature-256 (the app secret)",
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


# Web pages -----------------------------------------------------------------------------------
#
# Adding a page: add a row to ``PAGES`` keyed ``(METHOD, path template)`` with what it does and
# its gate; add a value to ``PAGE_PATH_VALUES`` (or the row's ``params``) if it uses a new path
# parameter; then run ``python -m tests.authz_table``.

PAGE_ROLES = ("anonymous", "requester", "expert", "staff", "admin")
PAGE_ROLE_TITLES = ("anonymous", "requester (their link)", "expert", "staff", "admin")

#: What each caller (``PAGE_ROLES`` order) gets from a page behind each gate. ``sign-in``: a
#: redirect (303) to ``/staff/sign-in?next=...``; ``403``: a refusal page, nothing done;
#: ``yes``: the page or the form's answer; ``link``: whoever opens the page's own signed link
#: (an invite, an offer, an escalation); ``no``: the page answers as for a request that does not
#: exist, or asks for the link.
PAGE_GATES: dict[str, tuple[str, ...]] = {
    "public": ("yes", "yes", "yes", "yes", "yes"),
    "link": ("link", "link", "link", "link", "link"),
    "requester": ("no", "yes", "no", "no", "no"),
    "signed-in": ("sign-in", "sign-in", "yes", "yes", "yes"),
    "staff": ("sign-in", "sign-in", "403", "yes", "yes"),
    "expert": ("sign-in", "sign-in", "yes", "403", "403"),
    "admin": ("sign-in", "sign-in", "403", "403", "yes"),
}
#: The gates of a signed-in page session (``app/web/auth.py``), which the test calls for real.
SESSION_GATES = frozenset({"signed-in", "staff", "expert", "admin"})

#: Values of the pages' path parameters (``@name``: a thing the test makes; else a literal that
#: names nothing, so a caller past the gate gets the page's 404).
PAGE_PATH_VALUES: dict[str, str] = {
    "reference": "@reference",
    "expert_id": "@expert_id",
    "user_id": "@user_id",
    "code": "@region_code",
    "region_code": "@region_code",
    "document_id": "@document_id",
    "shift_id": "@shift_id",
    "override_id": "@override_id",
    "period_id": "@period_id",
    "assignment_id": "@assignment_id",
    "answer": "accept",
    "day": "2031-01-06",
    "message_id": "999999",
    "saved_id": "999999",
    "notification_id": "999999",
    "consultation_id": "00000000-0000-4000-8000-000000000000",
    "session_id": "00000000-0000-4000-8000-000000000000",
    "set_aside_id": "00000000-0000-4000-8000-000000000000",
    "token": "not-a-token",
    "name": "none.js",
    "calendar_id": "00000000-0000-4000-8000-000000000000",
    "action": "refresh",
}


@dataclass(frozen=True)
class PageRow:
    action: str
    gate: str
    #: Path values for this row only (e.g. ``code`` is a country's, not a region's).
    params: dict[str, str] = field(default_factory=dict)


def page(action: str, gate: str, **params: str) -> PageRow:
    assert gate in PAGE_GATES, f"{action}: unknown gate {gate!r}"
    return PageRow(action, gate, params)


COUNTRY = {"code": "KG"}

PAGES: dict[tuple[str, str], PageRow] = {
    # The admin console
    ("GET", "/admin/experts"): page("Experts: the list with load at a glance", "admin"),
    ("POST", "/admin/experts"): page("Add an expert (an account, or an invite)", "admin"),
    ("GET", "/admin/experts/{expert_id}"): page("One expert's page", "admin"),
    ("POST", "/admin/experts/{expert_id}/profile"): page("Save an expert's profile", "admin"),
    ("POST", "/admin/experts/{expert_id}/deactivate"): page("Deactivate an expert", "admin"),
    ("POST", "/admin/experts/{expert_id}/reactivate"): page("Reactivate an expert", "admin"),
    ("POST", "/admin/experts/{expert_id}/lead"): page("Make an expert a region's lead", "admin"),
    ("POST", "/admin/experts/{expert_id}/lead/{region_code}/remove"): page(
        "Remove an expert as a region's lead", "admin"
    ),
    ("POST", "/admin/experts/{expert_id}/cv"): page("Upload an expert's CV (PDF)", "admin"),
    ("POST", "/admin/experts/{expert_id}/hours"): page("Set an expert's weekly hours", "admin"),
    ("POST", "/admin/experts/{expert_id}/settings"): page(
        "Set an expert's consultation settings", "admin"
    ),
    ("POST", "/admin/experts/{expert_id}/overrides"): page(
        "Add a date override to an expert's hours", "admin"
    ),
    ("POST", "/admin/experts/{expert_id}/overrides/{day}/remove"): page(
        "Remove a date override", "admin"
    ),
    ("POST", "/admin/experts/{expert_id}/calendars"): page("Connect an expert's calendar", "admin"),
    ("POST", "/admin/experts/{expert_id}/calendars/feed/{action}"): page(
        "Rotate or revoke an expert's consultation feed", "admin"
    ),
    ("POST", "/admin/experts/{expert_id}/calendars/{calendar_id}/{action}"): page(
        "Read again or remove an expert's calendar", "admin"
    ),
    ("GET", "/expert/calendars"): page("My calendars and my consultation feed", "expert"),
    ("POST", "/expert/calendars"): page("Connect my calendar", "expert"),
    ("POST", "/expert/calendars/feed/{action}"): page(
        "Make a new or revoke my consultation feed", "expert"
    ),
    ("POST", "/expert/calendars/{calendar_id}/{action}"): page(
        "Read again or remove my calendar", "expert"
    ),
    ("GET", "/staff/slot-explanation"): page("Why is a time not offered? (explainer)", "staff"),
    ("POST", "/admin/experts/{expert_id}/unavailable"): page(
        "Add an unavailable period for an expert", "admin"
    ),
    ("POST", "/admin/experts/{expert_id}/unavailable/{period_id}/remove"): page(
        "Remove an expert's unavailable period", "admin"
    ),
    ("GET", "/admin/operations"): page(
        "Operations: outbox, dead letters, Zoom's count, the check report, the audit search",
        "admin",
    ),
    ("GET", "/admin/operations/audit"): page("Search the audit trail", "admin"),
    ("GET", "/admin/operations/audit.csv"): page("The audit search as CSV", "admin"),
    ("GET", "/admin/operations/dead-letters"): page(
        "Dead letters (staff too, as the API's)", "staff"
    ),
    ("POST", "/admin/operations/dead-letters/{message_id}/retry"): page(
        "Retry a dead letter (staff too, as the API's)", "staff"
    ),
    ("GET", "/admin/people"): page("People: staff, experts and admins, role and state", "admin"),
    ("POST", "/admin/people/invite"): page("Invite a person", "admin"),
    ("POST", "/admin/people/{user_id}/role"): page("Change a person's role", "admin"),
    ("POST", "/admin/people/{user_id}/deactivate"): page("Deactivate a person", "admin"),
    ("POST", "/admin/people/{user_id}/reactivate"): page("Reactivate a person", "admin"),
    ("POST", "/admin/people/{user_id}/resend-invite"): page("Send a new invite link", "admin"),
    ("POST", "/admin/people/{user_id}/reset-second-factor"): page(
        "Turn off a person's second factor", "admin"
    ),
    ("GET", "/admin/regions"): page("Regions and countries", "admin"),
    ("POST", "/admin/regions/add"): page("Add a region", "admin"),
    ("POST", "/admin/regions/{code}/rename"): page("Rename a region", "admin"),
    ("POST", "/admin/regions/{code}/delete"): page(
        "Delete a region no country belongs to", "admin"
    ),
    ("POST", "/admin/regions/{code}/lead"): page("Name a region's lead expert", "admin"),
    ("GET", "/admin/regions/countries/new"): page("The form for a new country", "admin"),
    ("POST", "/admin/regions/countries/new"): page("Add a country", "admin"),
    ("GET", "/admin/regions/countries/{code}"): page("One country's profile", "admin", **COUNTRY),
    ("POST", "/admin/regions/countries/{code}/edit"): page(
        "Edit a country's profile", "admin", **COUNTRY
    ),
    ("POST", "/admin/regions/countries/{code}/delete"): page(
        "Remove a country", "admin", **COUNTRY
    ),
    ("GET", "/admin/roster"): page("Roster: weekly shifts, one-off changes, gaps", "admin"),
    ("POST", "/admin/roster/shifts"): page("Add a weekly shift", "admin"),
    ("GET", "/admin/roster/shifts/{shift_id}"): page("One shift's form", "admin"),
    ("POST", "/admin/roster/shifts/{shift_id}"): page("Change a shift", "admin"),
    ("POST", "/admin/roster/shifts/{shift_id}/delete"): page("Remove a shift", "admin"),
    ("POST", "/admin/roster/overrides"): page("Add a one-off change", "admin"),
    ("POST", "/admin/roster/overrides/{override_id}/delete"): page(
        "Remove a one-off change", "admin"
    ),
    ("GET", "/admin/sample-reports"): page(
        "Sample reports by tag, and the countries and regions without one", "admin"
    ),
    ("POST", "/admin/sample-reports/upload"): page("Upload a sample report (PDF)", "admin"),
    ("POST", "/admin/sample-reports/{document_id}/delete"): page("Delete a sample report", "admin"),
    ("GET", "/admin/saved-replies"): page("Saved replies: list and add", "admin"),
    ("POST", "/admin/saved-replies/add"): page("Add a saved reply", "admin"),
    ("GET", "/admin/saved-replies/{saved_id}"): page("One saved reply's form", "admin"),
    ("POST", "/admin/saved-replies/{saved_id}"): page("Edit a saved reply", "admin"),
    ("POST", "/admin/saved-replies/{saved_id}/delete"): page("Delete a saved reply", "admin"),
    ("GET", "/staff/getting-started"): page("Getting started: the first-run checklist", "admin"),
    # Staff (and admins)
    ("GET", "/staff/queue"): page("The queue", "staff"),
    ("GET", "/staff/queue/live"): page("The queue's live part (refreshed)", "staff"),
    ("GET", "/staff/cases/{reference}"): page("A case", "staff"),
    ("POST", "/staff/cases/{reference}/presence"): page("I have this case open", "staff"),
    ("POST", "/staff/cases/{reference}/contact"): page("Record a contact", "staff"),
    ("POST", "/staff/cases/{reference}/assign"): page("Assign or reassign", "staff"),
    ("POST", "/staff/cases/{reference}/reply"): page("Reply to the requester", "staff"),
    ("POST", "/staff/cases/{reference}/reply/preview"): page(
        "Preview a reply: the exact e-mail", "staff"
    ),
    ("POST", "/staff/cases/{reference}/take"): page("Take the request (I answer it)", "staff"),
    ("POST", "/staff/cases/{reference}/whatsapp"): page(
        "Write to the requester on WhatsApp", "staff"
    ),
    ("POST", "/staff/cases/{reference}/notes"): page("Add an internal note", "staff"),
    ("POST", "/staff/cases/{reference}/status"): page("Change the status", "staff"),
    ("GET", "/staff/inbound/set-aside"): page("Mail set aside", "staff"),
    ("POST", "/staff/inbound/set-aside/{set_aside_id}/open"): page(
        "Open set-aside mail as a person's", "staff"
    ),
    ("GET", "/staff/reports"): page("SLA reports", "staff"),
    # Experts
    ("GET", "/expert/assignments"): page("My assignments", "expert"),
    ("POST", "/expert/assignments/{assignment_id}/{answer}"): page(
        "Accept or decline an offer", "expert"
    ),
    ("GET", "/expert/cases/{reference}"): page("A case offered to or accepted by me", "expert"),
    ("POST", "/expert/cases/{reference}/contact"): page("Record a contact", "expert"),
    ("POST", "/expert/cases/{reference}/notes"): page("Add an internal note", "expert"),
    ("POST", "/expert/cases/{reference}/reply"): page(
        "Reply to the requester by e-mail (a case accepted by me)", "expert"
    ),
    ("POST", "/expert/cases/{reference}/reply/preview"): page(
        "See exactly the e-mail a reply would send (a case accepted by me)", "expert"
    ),
    ("GET", "/expert/consultations"): page("My consultations", "expert"),
    ("GET", "/expert/consultations/{consultation_id}/host"): page(
        "Start my consultation's meeting as host", "expert"
    ),
    ("GET", "/expert/availability"): page("My hours and unavailable periods", "expert"),
    ("POST", "/expert/availability"): page("Save my weekly hours", "expert"),
    ("POST", "/expert/availability/absences"): page("Add leave or a day off", "expert"),
    ("POST", "/expert/availability/absences/{period_id}/delete"): page(
        "Remove leave or a day off", "expert"
    ),
    ("GET", "/expert/notifications"): page("My notifications", "expert"),
    ("POST", "/expert/notifications/{notification_id}/read"): page(
        "Mark a notification read", "expert"
    ),
    # Everyone signed in: their own account
    ("GET", "/my-account"): page("My account", "signed-in"),
    ("POST", "/my-account/settings"): page("Set my time zone and language", "signed-in"),
    ("POST", "/my-account/password"): page("Change my password", "signed-in"),
    ("GET", "/my-account/second-factor"): page("Turning on the second factor", "signed-in"),
    ("POST", "/my-account/second-factor/start"): page(
        "Start turning on the second factor", "signed-in"
    ),
    ("POST", "/my-account/second-factor/confirm"): page("Confirm the second factor", "signed-in"),
    ("POST", "/my-account/second-factor/disable"): page("Turn off my second factor", "signed-in"),
    ("POST", "/my-account/recovery-codes"): page("New recovery codes", "signed-in"),
    ("POST", "/my-account/sessions/end-others"): page("Sign out everywhere else", "signed-in"),
    ("POST", "/my-account/sessions/{session_id}/end"): page("End one of my sessions", "signed-in"),
    ("POST", "/staff/sign-out"): page("Sign out", "signed-in"),
    # Signing in, and pages opened by their own link
    ("GET", "/staff/sign-in"): page("The sign-in page (staff, experts, admins)", "public"),
    ("POST", "/staff/sign-in"): page("Sign in (password, then the second factor)", "public"),
    ("GET", "/account/set-password"): page("Set a password (invite or reset link)", "link"),
    ("POST", "/account/set-password"): page("Set a password (invite or reset link)", "link"),
    ("GET", "/experts/offers/{token}"): page("An offer e-mailed to an expert", "link"),
    ("POST", "/experts/offers/{token}"): page("Answer an e-mailed offer", "link"),
    ("GET", "/escalations/ack/{token}"): page("An escalation's acknowledgement", "link"),
    ("POST", "/escalations/ack/{token}"): page("Acknowledge an escalation", "link"),
    # The requester's pages
    ("GET", "/apply"): page("The request form", "public"),
    ("POST", "/apply"): page("Submit the request form", "public"),
    ("GET", "/apply/all"): page("The request form on one page (it posts to /apply)", "public"),
    ("GET", "/apply/who"): page("The form in steps: who you are (as /apply)", "public"),
    ("POST", "/apply/who"): page("The form in steps: keep who you are", "public"),
    ("GET", "/apply/firm"): page("The form in steps: the law firm (law firms only)", "public"),
    ("POST", "/apply/firm"): page("The form in steps: keep the law firm", "public"),
    ("GET", "/apply/contact"): page("The form in steps: how to reach you", "public"),
    ("POST", "/apply/contact"): page("The form in steps: keep how to reach you", "public"),
    ("GET", "/apply/case"): page("The form in steps: your case", "public"),
    ("POST", "/apply/case"): page("The form in steps: keep your case", "public"),
    ("GET", "/apply/needs"): page("The form in steps: what you need", "public"),
    ("POST", "/apply/needs"): page("The form in steps: keep what you need", "public"),
    ("GET", "/apply/check"): page("The form in steps: check your answers", "public"),
    ("GET", "/apply/send"): page("The form in steps: consent and send", "public"),
    ("POST", "/apply/send"): page(
        "The form in steps: send (the same service call as the one-page form)", "public"
    ),
    ("GET", "/recover"): page("Ask for a lost link again: the form", "public"),
    ("POST", "/recover"): page(
        "Ask for a lost link again (the same answer whether or not it matches)", "public"
    ),
    ("GET", "/privacy"): page("The privacy notice", "public"),
    ("GET", "/r/{reference}"): page("My request (the link sets its cookie)", "requester"),
    ("POST", "/r/{reference}/open"): page("Open my request with the link's token", "requester"),
    ("POST", "/r/{reference}/withdraw"): page("Withdraw my request", "requester"),
    ("POST", "/r/{reference}/forget"): page("Forget the link on this browser", "requester"),
    ("GET", "/r/{reference}/book"): page("Free consultation times", "requester"),
    ("POST", "/r/{reference}/book"): page("Choose a time (held while I confirm)", "requester"),
    ("GET", "/r/{reference}/book/confirm"): page(
        "The held time: date, time, zone, length, expert", "requester"
    ),
    ("POST", "/r/{reference}/book/confirm"): page("Book the held time", "requester"),
    ("POST", "/r/{reference}/book/release"): page("Let the held time go", "requester"),
    ("GET", "/r/{reference}/booked"): page("My booked consultation", "requester"),
    ("GET", "/r/{reference}/consultation.ics"): page(
        "My consultation as a calendar file", "requester"
    ),
    ("GET", "/r/{reference}/cancel"): page("Cancel my consultation: the question", "requester"),
    ("POST", "/r/{reference}/cancel"): page("Cancel my consultation", "requester"),
    ("GET", "/r/{reference}/export"): page(
        "Download everything held about my request", "requester"
    ),
    # The API's documentation
    ("GET", "/docs"): page("The API's documentation", "public"),
    ("GET", "/docs/assets/{name}"): page("The documentation page's assets", "public"),
    ("GET", "/openapi.json"): page("The OpenAPI schema", "public"),
}


def page_cells(method: str, path: str) -> dict[str, str]:
    """What each caller gets from a page: ``PAGE_ROLES`` -> a cell of ``PAGE_GATES``."""
    return dict(zip(PAGE_ROLES, PAGE_GATES[PAGES[(method, path)].gate], strict=True))


def page_markdown_table() -> str:
    """The pages' table (docs/authorization.md), one line per route, in path order."""
    head = "| page | what it does | who | " + " | ".join(PAGE_ROLE_TITLES) + " |"
    sep = "|" + "---|" * (len(PAGE_ROLES) + 3)
    lines = [head, sep]
    for (method, path), r in sorted(PAGES.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = " | ".join(PAGE_GATES[r.gate])
        lines.append(f"| `{method} {path}` | {r.action} | {r.gate} | {cells} |")
    return "\n".join(lines) + "\n"
