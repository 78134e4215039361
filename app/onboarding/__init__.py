"""Getting started: the first-run checklist an admin sees until the service can take requests."""
