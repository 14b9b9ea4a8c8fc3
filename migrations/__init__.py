"""Alembic migrations of the avvik database (shipped inside the package so `avvik migrate` finds them)."""
