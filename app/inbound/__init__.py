"""Inbound e-mail (issue 9): requests and replies that arrive by mail (IMAP or a webhook)."""
