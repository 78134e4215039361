"""Online meetings for consultations: one small interface, three providers (Zoom, link, fake).

Nothing here knows about consultations; the booking flow calls a ``MeetingProvider`` from its
outbox handlers (see ``docs/zoom.md``).
"""
