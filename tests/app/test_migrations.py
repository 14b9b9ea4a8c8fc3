"""Migrations are the only way the schema is built: up, down, up again, and equal to the models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text

from app.db import make_engine
from app.migrate import current_revisions, downgrade, head_revisions, upgrade
from app.models import Base
from app.taxonomy.models import TaxonomyCode
from tests.conftest import DatabaseFactory

# SQLite cannot reflect an index on an expression (the review queue's uncertainty order, migration 0013), so
# there the comparison leaves it out; PostgreSQL reflects and compares it.
SQLITE_EXPRESSION_INDEX = "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"


@pytest.mark.filterwarnings(SQLITE_EXPRESSION_INDEX)
def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"run `alembic revision --autogenerate`: {diff}"


@pytest.mark.filterwarnings(SQLITE_EXPRESSION_INDEX)
def test_upgrade_downgrade_upgrade_on_an_empty_database(databases: DatabaseFactory) -> None:
    url = databases.new()
    upgrade(url)
    engine = make_engine(url)
    try:
        assert current_revisions(engine) == head_revisions(url)
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(TaxonomyCode)) > 50
        downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert diff == []
            # The seed ran again after the downgrade, once.
            assert connection.scalar(select(func.count()).select_from(TaxonomyCode)
                                     .where(TaxonomyCode.code == "samhandling_barn_unge")) == 1
    finally:
        engine.dispose()


@contextmanager
def database_at(databases: DatabaseFactory, revision: str) -> Iterator[tuple[str, Engine]]:
    """A database of its own migrated up to `revision`, and an engine on it (disposed after)."""
    url = databases.new()
    upgrade(url, revision)
    engine = make_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()


def test_reports_stored_before_provenance_get_their_reporters_labels(databases: DatabaseFactory) -> None:
    with database_at(databases, "0003") as (url, engine):
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO report (id, source_system, external_id, title, description, category_code, reported_at,"
                " occurred_sort_at, status, source_version, source_version_key, content_hash, created_at, updated_at,"
                " redacted_identity_numbers, redacted_phone_numbers, redacted_emails) VALUES (7, 'bkkvalitet', 'OLD-1',"
                " 't', 'd', 'informasjonsplikt', '2025-01-01 00:00:00', '2025-01-01 00:00:00', 'lukket', '1', 1, 'h',"
                " '2025-01-01 00:00:00', '2025-01-01 00:00:00', 0, 0, 0)"))
            connection.execute(text("INSERT INTO report_target_group (report_id, code) VALUES (7, 'barn_6_12')"))
            connection.execute(text("INSERT INTO report_service (report_id, code) VALUES (7, 'skole')"))
        upgrade(url)
        with engine.connect() as connection:
            row = connection.execute(text(
                "SELECT confirmed_category_code, confirmed_category_provenance, suggested_category_code, audit_draw"
                " FROM report WHERE id = 7")).one()
            labels = connection.execute(text(
                "SELECT dimension, code, provenance FROM report_label WHERE report_id = 7 ORDER BY dimension")).all()
        from app.ingest.mapping import audit_draw

        assert row[:3] == ("informasjonsplikt", "reporter", "informasjonsplikt")
        assert row[3] == audit_draw("bkkvalitet", "OLD-1")
        assert [tuple(r) for r in labels] == [("service", "skole", "reporter"),
                                              ("target_group", "barn_6_12", "reporter")]


def test_local_reporting_date_is_backfilled_in_oslo_time(databases: DatabaseFactory) -> None:
    with database_at(databases, "0005") as (url, engine):
        with engine.begin() as connection:
            # 23:30 UTC on 31 January is 00:30 on 1 February in Oslo.
            connection.execute(text(
                "INSERT INTO report (id, source_system, external_id, title, description, reported_at,"
                " occurred_sort_at, status, source_version, source_version_key, content_hash, created_at, updated_at,"
                " redacted_identity_numbers, redacted_phone_numbers, redacted_emails, audit_draw) VALUES"
                " (9, 'bkkvalitet', 'OLD-2', 't', 'd', '2026-01-31 23:30:00', '2026-01-31 23:30:00', 'lukket', '1', 1,"
                " 'h', '2026-01-31 23:30:00', '2026-01-31 23:30:00', 0, 0, 0, 0.5)"))
        upgrade(url)
        with engine.connect() as connection:
            assert str(connection.scalar(text("SELECT reported_on FROM report WHERE id = 9"))) == "2026-02-01"


def test_estimate_basis_is_backfilled_from_reports_scores_and_reviews(databases: DatabaseFactory) -> None:
    with database_at(databases, "0007") as (url, engine):
        with engine.begin() as connection:
            for report_id in (11, 12):
                connection.execute(text(
                    "INSERT INTO report (id, source_system, external_id, title, description, reported_at, reported_on,"
                    " occurred_sort_at, status, source_version, source_version_key, content_hash, created_at,"
                    " updated_at, redacted_identity_numbers, redacted_phone_numbers, redacted_emails, audit_draw,"
                    " confirmed_category_code) VALUES (:id, 'bkkvalitet', :ext, 't', 'd', '2026-01-31 23:30:00',"
                    " '2026-02-01', '2026-01-31 23:30:00', 'lukket', '1', 1, 'h', '2026-01-31 23:30:00',"
                    " '2026-01-31 23:30:00', 0, 0, 0, 0.5, 'informasjonsplikt')"),
                    {"id": report_id, "ext": f"B-{report_id}"})
            connection.execute(text(
                "INSERT INTO report_score (report_id, model_version, score, threshold, flagged, target_groups,"
                " services, explanation, scored_at)"
                " VALUES (11, 'm', 0.9, 0.5, TRUE, '[]', '[]', '[]', '2026-02-01 00:00:00')"))
            connection.execute(text(
                "INSERT INTO review (report_id, decision, reviewer, reviewed_at, flagged, audit_sample)"
                " VALUES (12, 'reject', 'key:test', '2026-02-02 00:00:00', FALSE, FALSE)"))
        upgrade(url, "0008")
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT report_id, reported_on, confirmed_category_code, reviewed, flagged, score, review_decision"
                " FROM estimate_basis ORDER BY report_id")).all()
        assert [(r[0], str(r[1]), r[2], bool(r[3]), r[4] if r[4] is None else bool(r[4]), r[5], r[6])
                for r in rows] == [(11, "2026-02-01", "informasjonsplikt", False, True, 0.9, None),
                                   (12, "2026-02-01", "informasjonsplikt", True, None, None, "reject")]
