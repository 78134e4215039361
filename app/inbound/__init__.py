"""Inbound e-mail: requests and replies that arrive by mail (IMAP or a webhook)."""
