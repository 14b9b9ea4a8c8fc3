"""Authentication (API keys, Entra ID tokens), roles and per-route authorisation."""
