"""The model registry: trained classifier versions stored in the database, and the one that is active."""
