"""Deviation reports: storage, filters and reading."""
