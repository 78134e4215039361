"""E-mails that send things to requesters: the sample report and the expert's CV, and the
consultation reminders."""
