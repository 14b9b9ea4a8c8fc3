"""Statistics: aggregates for advisers and dashboards."""
