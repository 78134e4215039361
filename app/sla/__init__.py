"""The first-response clock (issue 8): contacts that stop it, reminders and the escalation.

Kept import-free: intake's service imports ``app.sla.scheduling`` while ``app.sla.service``
imports intake.
"""
