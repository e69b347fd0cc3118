"""Adapters: the database, evidence files, the clock, notification channels."""
