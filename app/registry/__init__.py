"""The model registry: trained classifier versions stored in the database, the one that is active, and scoring
reports with it."""
