"""Availability, free slots, booking, rescheduling, cancelling, and what happens to a booking
when its request is reassigned.

The slot engine (``app/scheduling/slots.py``) decides every question of time; this module only
loads its inputs (availability, bookings, unavailable periods) from the database, in the
caller's transaction, and writes the outcome.

Never double-booked:
- The expert's availability row is locked (``SELECT ... FOR UPDATE``) before the engine
  re-checks a slot, so bookings of one expert are checked one after the other on PostgreSQL
  (which also keeps the daily cap exact). On SQLite every write transaction is
  ``BEGIN IMMEDIATE`` (app/core/database.py): the check-then-insert cannot race.
- Underneath, PostgreSQL's exclusion constraint ``ex_consultations_booked_overlap`` refuses two
  booked consultations of one expert whose blocked ranges overlap, whatever code path wrote
  them; its violation is answered like a taken slot (409 with alternatives).

One module per use case: ``availability``, ``listing`` (free slots), ``booking``, ``changes``
(reschedule, cancel), ``reassignment`` (what a reassignment or the end of the request does to a
booking; called by ``app/flows/request.py``), ``meetings``, ``notices`` (invites), and ``common``
(loading the engine's inputs, the pool, alternatives, locks).
"""

from app.scheduling.service.availability import get_availability, put_availability
from app.scheduling.service.booking import book
from app.scheduling.service.changes import cancel, check_expert_access, reschedule
from app.scheduling.service.common import (
    ALTERNATIVES,
    BOOKABLE,
    INVITE_KIND,
    MEETING_CREATE,
    MEETING_DELETE,
    MEETING_UPDATE,
    Caller,
    Event,
    alternatives,
    booked_consultation,
    engine_availability,
    latest_consultation,
    local_slot_dict,
    pool_expert_ids,
)
from app.scheduling.service.listing import SlotList, list_slots
from app.scheduling.service.meetings import (
    create_marker,
    discard_meeting,
    meeting_spec,
    store_meeting,
)
from app.scheduling.service.notices import send_invites
from app.scheduling.service.reassignment import (
    can_take_over,
    on_request_ended,
    on_request_reassigned,
)

__all__ = [
    "ALTERNATIVES",
    "BOOKABLE",
    "INVITE_KIND",
    "MEETING_CREATE",
    "MEETING_DELETE",
    "MEETING_UPDATE",
    "Caller",
    "Event",
    "SlotList",
    "alternatives",
    "book",
    "booked_consultation",
    "can_take_over",
    "cancel",
    "check_expert_access",
    "create_marker",
    "discard_meeting",
    "engine_availability",
    "get_availability",
    "latest_consultation",
    "list_slots",
    "local_slot_dict",
    "meeting_spec",
    "on_request_ended",
    "on_request_reassigned",
    "pool_expert_ids",
    "put_availability",
    "reschedule",
    "send_invites",
    "store_meeting",
]
