"""Adviser reviews: decisions, the effective labels they make, report history and the review queue."""
