"""The first-response clock: contacts that stop it, reminders and the escalation.

Kept import-free: intake's service imports ``app.sla.scheduling`` while ``app.sla.service``
imports intake.
"""
