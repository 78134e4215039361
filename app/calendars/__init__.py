"""Experts' own calendars (busy times read from ICS addresses and CalDAV accounts), the
calendar feed of their consultations, and the conflict and "cannot be read" alerts."""
