"""What an operator sees of the running service: JSON logs, Prometheus metrics and (optional) traces, none of
which ever carries free text, a query string or an identity number."""
