"""Calendar invites for consultations (RFC 5545 / iTIP RFC 5546) with ``icalendar``.

- A booking or a change: ``METHOD:REQUEST``, the consultation's stable ``UID``, its ``SEQUENCE``
  (0 when booked, + 1 on every change), ``STATUS:CONFIRMED``.
- A cancellation: ``METHOD:CANCEL``, the same ``UID``, a higher ``SEQUENCE``,
  ``STATUS:CANCELLED``.
- ``DTSTART``/``DTEND``/``DTSTAMP`` in UTC (``...Z``). ``LOCATION`` and ``URL`` carry the join
  link; both are left out while the link follows.
- ``ORGANIZER`` is the service's own address; ``ATTENDEE`` is the person the copy is for. Each
  side gets its own copy, so the expert's copy holds nothing of the requester (no name, no
  address) and the requester's holds no contact of the expert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from icalendar import Calendar, Event, vCalAddress, vText

# Neutral: an invite of a discreet request must not say "asylum" anywhere, PRODID included.
PRODID = "-//intake//consultations//EN"

Method = Literal["REQUEST", "CANCEL"]


@dataclass(frozen=True)
class Invite:
    uid: str
    sequence: int
    method: Method
    start: dt.datetime
    end: dt.datetime
    stamp: dt.datetime
    summary: str
    description: str
    organizer_email: str
    organizer_name: str
    attendee_email: str
    attendee_name: str | None
    join_url: str | None


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("invite times must be timezone-aware")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def build(invite: Invite) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", invite.method)
    event = Event()
    event.add("uid", invite.uid)
    event.add("sequence", invite.sequence)
    event.add("dtstamp", _utc(invite.stamp))
    event.add("dtstart", _utc(invite.start))
    event.add("dtend", _utc(invite.end))
    event.add("summary", invite.summary)
    event.add("description", invite.description)
    event.add("status", "CANCELLED" if invite.method == "CANCEL" else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = vCalAddress(f"mailto:{invite.organizer_email}")
    organizer.params["cn"] = vText(invite.organizer_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{invite.attendee_email}")
    if invite.attendee_name:
        attendee.params["cn"] = vText(invite.attendee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("NEEDS-ACTION")
    attendee.params["rsvp"] = vText("FALSE")
    event.add("attendee", attendee)
    if invite.join_url and invite.method != "CANCEL":
        event.add("location", invite.join_url)
        event.add("url", invite.join_url)
    cal.add_component(event)
    return bytes(cal.to_ical())
