"""Thin loops around services: the deadline runner (and, later, the outbox dispatcher)."""
