"""Runtime configuration, read from AVVIK_* environment variables and an optional .env file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration from AVVIK_* environment variables; nothing reads it at import time."""

    model_config = SettingsConfigDict(env_prefix="AVVIK_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///var/avvik.db"  # what `avvik serve` connects as (the runtime role)
    # What `avvik migrate` connects as: the role that owns the schema (default: database_url).
    migration_database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # `avvik serve` (app/server.py): an idle connection is closed this long after its last answer; a
    # connection must send a whole request head within http_header_timeout_seconds; beyond max_connections
    # open connections per process (and the descriptor limit) a new one is closed at once; a shutdown
    # waits this long for requests in progress.
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    http_graceful_shutdown_seconds: int = Field(default=30, ge=1)
    # A batch of 1,000 ordinary reports is about 2 MB; 20,000-character descriptions need more.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(default=1000, ge=1)
    # PostgreSQL, the server's connections: the longest one statement may run, and wait for a row or table
    # lock, before it is cancelled (503); and how long a pooled connection's check may take on checkout.
    # No answer within statement_timeout_ms + database_ping_timeout_ms means the database is gone (503).
    statement_timeout_ms: int = Field(default=15_000, ge=100)
    lock_timeout_ms: int = Field(default=10_000, ge=100)
    database_ping_timeout_ms: int = Field(default=2_000, ge=100)
    docs_enabled: bool = True
    log_level: str = "INFO"
    # auto: plain text when stderr is a terminal, JSON lines otherwise (for a log collector).
    log_format: Literal["auto", "json", "text"] = "auto"
    request_log: bool = True  # one line per request: route template, status, duration; never path or query
    metrics_enabled: bool = True  # count requests, ingest outcomes, scoring, reviews (Prometheus)
    # /metrics answers only to `Authorization: Bearer <this>`; unset, /metrics is 404.
    metrics_token: SecretStr | None = None
    review_backlog_cache_seconds: float = Field(default=15.0, ge=0)  # how stale /metrics' database gauges may be
    tracing_enabled: bool = False  # OpenTelemetry spans over OTLP (OTEL_EXPORTER_OTLP_*), scrubbed of text
    tracing_service_name: str = "avvik"
    # Free-text dates from the quality system without an offset are local time.
    local_timezone: str = "Europe/Oslo"

    # People sign in with Microsoft Entra ID; tokens are accepted only when all four are set.
    oidc_issuer: str | None = None  # e.g. https://login.microsoftonline.com/<tenant>/v2.0
    oidc_audience: str | None = None  # the API's application id URI or client id
    oidc_tenant_id: str | None = None
    oidc_jwks_url: str | None = None  # e.g. https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
    jwks_cache_seconds: int = Field(default=3600, ge=60)
    jwks_min_refetch_seconds: int = Field(default=60, ge=0)  # an unknown kid refetches at most this often
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=60)  # one whole key-set fetch, at most

    # App-role names as they appear in the token's `roles` claim (and in API keys).
    role_integration: str = "integration"
    role_adviser: str = "adviser"
    role_dashboard: str = "dashboard"
    role_admin: str = "admin"

    # An admin API key to create on first start when there is no key at all (else one is generated).
    bootstrap_api_key: str | None = Field(default=None, min_length=32)
    # Signs page cursors; the same in every replica. Unset: derived from database_url (app.pagination).
    cursor_secret: SecretStr | None = Field(default=None, min_length=32)
    rate_limit_per_minute: int = Field(default=600, ge=1)

    # The classifier: built from the committed corpus into this directory the first time it is needed.
    model_dir: str = "var/models/default"
    scoring_enabled: bool = True  # score every report when it arrives
    # Keep start-up objects and the loaded model out of the garbage collector's full passes (app.main).
    gc_freeze: bool = True
    flag_threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # overrides the model's own threshold
    # Labelled reports a candidate model is judged on before promotion (with held-out adviser decisions).
    dev_set_path: str | None = None

    # Counts below this are suppressed for roles that may not see single cases (dashboards).
    min_cell_count: int = Field(default=5, ge=1)

    # The share of unflagged reports mixed into the review queue to measure what the classifier misses.
    audit_sample_share: float = Field(default=0.02, ge=0.0, le=1.0)

    # The web pages (app/web) for quality advisers.
    # The session cookie is sent over HTTPS only; turn off only for plain http://127.0.0.1 on one's own machine.
    web_cookie_secure: bool = True
    web_session_idle_minutes: int = Field(default=30, ge=2)  # a session unused this long ends
    web_session_max_hours: int = Field(default=10, ge=1)  # however active, sign in again after this
    web_session_warning_minutes: int = Field(default=5, ge=1)  # warn this long before the end (WCAG 2.2.1)
    # Sign-in with an API key on a form, or a one-time link from `avvik web signin-link`: for local use and
    # tests. None: on unless Entra ID sign-in is configured (then only when set to true).
    web_key_signin: bool | None = None
    # Entra ID sign-in for the pages (authorisation code + PKCE), with the four oidc_* settings above.
    oidc_client_id: str | None = None  # the app registration's client id (the ID token's audience)
    oidc_client_secret: str | None = None  # a confidential client's secret (PKCE is used either way)
    oidc_metadata_url: str | None = None  # default: <oidc_issuer>/.well-known/openid-configuration
    oidc_redirect_uri: str | None = None  # default: <this site>/logg-inn/entra/svar

    @property
    def owner_database_url(self) -> str:
        """The URL migrations and grants run with."""
        return self.migration_database_url or self.database_url
