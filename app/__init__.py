"""Avvik: the deviation categorisation service for collaboration deviations about children and youth."""
