"""Consultation scheduling: availability, free slots, booking re-checks."""
