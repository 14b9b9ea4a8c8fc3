"""Classifier suggestions, adviser reviews, label provenance and the review queue."""
