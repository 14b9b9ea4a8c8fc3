"""Ingest: reports as the quality system delivers them, stored idempotently."""
