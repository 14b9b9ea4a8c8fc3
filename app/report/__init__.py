"""Deviation reports: storage (with the classifier's latest score and the effective labels), filters and reading."""
