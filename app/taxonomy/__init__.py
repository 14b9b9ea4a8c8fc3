"""The taxonomy: categories, target groups, services and organisation, kept as data."""
