"""WhatsApp as a two-way channel on the same one-hour clock (WhatsApp Business Cloud API)."""
