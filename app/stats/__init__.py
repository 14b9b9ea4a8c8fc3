"""Statistics: aggregates for advisers and dashboards, and the live quality of the active model."""
