"""statistics: one summary row per report with what the estimate needs, kept by triggers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The estimate splits a period's undecided reports into score bands. Read from the tables that own the facts,
that is every report of the period joined to its score (882,000 scores on a million reports: a hash join of
300–450 ms) and tested against the reviews. `estimate_basis` keeps, per report, the Oslo reporting date,
the confirmed category, whether a review decided it and the active score (flag and score; the band follows
from the active model's threshold when asked), so that the estimate reads one index range of narrow rows.

The rates come from the latest review of every reviewed report (all periods): found by grouping 60,000
reviews by report on every request (50 ms). The summary row keeps that review's model version, decision,
category, and the flag, score and audit-sample mark it was shown, under a partial index of the reviewed rows.

The rows are kept by the database, whatever writes reports, scores or reviews (ingest, bulk ingest, review,
rescore): triggers on report (insert; a changed date or confirmed category), report_score and review
(insert, update, delete). A report's deletion cascades. Existing reports are backfilled here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The latest review of a report (the highest id), column by column, as scalar subqueries both engines run.
REVIEW_COLUMNS = ("model_version", "decision", "category_code", "flagged", "score", "audit_sample")


def _latest_review(report_id: str) -> list[str]:
    return [f"(SELECT v.{c} FROM review v WHERE v.report_id = {report_id} ORDER BY v.id DESC LIMIT 1)"
            for c in REVIEW_COLUMNS]


def _set_review(report_id: str) -> str:
    """SET assignments that make a summary row's review columns those of the report's latest review."""
    return ", ".join([f"reviewed = EXISTS (SELECT 1 FROM review v WHERE v.report_id = {report_id})",
                      *[f"review_{c} = {e}" for c, e in zip(REVIEW_COLUMNS, _latest_review(report_id), strict=True)]])


COLUMNS = ("report_id, reported_on, confirmed_category_code, flagged, score, reviewed, "
           + ", ".join(f"review_{c}" for c in REVIEW_COLUMNS))
BACKFILL = f"""
    INSERT INTO estimate_basis ({COLUMNS})
    SELECT r.id, r.reported_on, r.confirmed_category_code, s.flagged, s.score,
           EXISTS (SELECT 1 FROM review v WHERE v.report_id = r.id), {", ".join(_latest_review("r.id"))}
    FROM report r LEFT JOIN report_score s ON s.report_id = r.id
"""


def upgrade() -> None:
    op.create_table(
        'estimate_basis',
        sa.Column('report_id', sa.Integer(), nullable=False),
        sa.Column('reported_on', sa.Date(), nullable=False),
        sa.Column('confirmed_category_code', sa.String(length=80), nullable=True),
        sa.Column('flagged', sa.Boolean(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('reviewed', sa.Boolean(), nullable=False),
        sa.Column('review_model_version', sa.String(length=80), nullable=True),
        sa.Column('review_decision', sa.String(length=20), nullable=True),
        sa.Column('review_category_code', sa.String(length=80), nullable=True),
        sa.Column('review_flagged', sa.Boolean(), nullable=True),
        sa.Column('review_score', sa.Float(), nullable=True),
        sa.Column('review_audit_sample', sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_estimate_basis_report_id_report'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('report_id', name=op.f('pk_estimate_basis')),
    )
    op.execute(BACKFILL)
    with op.batch_alter_table('estimate_basis', schema=None) as batch_op:
        batch_op.create_index('ix_estimate_basis_stats',
                              ['reported_on', 'confirmed_category_code', 'reviewed', 'flagged', 'score'], unique=False)
        batch_op.create_index('ix_estimate_basis_review',
                              ['review_model_version', 'review_flagged', 'review_score', 'review_audit_sample',
                               'review_decision', 'review_category_code'], unique=False,
                              postgresql_where=sa.text('reviewed'), sqlite_where=sa.text('reviewed'))
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    with op.batch_alter_table('estimate_basis', schema=None) as batch_op:
        batch_op.drop_index('ix_estimate_basis_review', postgresql_where=sa.text('reviewed'),
                            sqlite_where=sa.text('reviewed'))
        batch_op.drop_index('ix_estimate_basis_stats')
    op.drop_table('estimate_basis')


# (trigger name, table, timing and event, condition, body). NEW and OLD are the trigger's rows.
TRIGGERS = (
    # A report being inserted has no score or review yet (both reference it), so its row starts empty; looking
    # them up cost nine index probes per ingested report (about 45 µs) for nothing.
    ("estimate_basis_report_insert", "report", "AFTER INSERT", None,
     """INSERT INTO estimate_basis (report_id, reported_on, confirmed_category_code, reviewed)
        VALUES (NEW.id, NEW.reported_on, NEW.confirmed_category_code, false)"""),
    ("estimate_basis_report_update", "report", "AFTER UPDATE OF reported_on, confirmed_category_code",
     "OLD.reported_on IS DISTINCT FROM NEW.reported_on "
     "OR OLD.confirmed_category_code IS DISTINCT FROM NEW.confirmed_category_code",
     """UPDATE estimate_basis SET reported_on = NEW.reported_on, confirmed_category_code = NEW.confirmed_category_code
        WHERE report_id = NEW.id"""),
    ("estimate_basis_score_insert", "report_score", "AFTER INSERT", None,
     "UPDATE estimate_basis SET flagged = NEW.flagged, score = NEW.score WHERE report_id = NEW.report_id"),
    ("estimate_basis_score_update", "report_score", "AFTER UPDATE", None,
     """UPDATE estimate_basis SET flagged = NULL, score = NULL WHERE report_id = OLD.report_id
                                                                AND OLD.report_id <> NEW.report_id;
        UPDATE estimate_basis SET flagged = NEW.flagged, score = NEW.score WHERE report_id = NEW.report_id"""),
    ("estimate_basis_score_delete", "report_score", "AFTER DELETE", None,
     "UPDATE estimate_basis SET flagged = NULL, score = NULL WHERE report_id = OLD.report_id"),
    ("estimate_basis_review_insert", "review", "AFTER INSERT", None,
     f"UPDATE estimate_basis SET {_set_review('NEW.report_id')} WHERE report_id = NEW.report_id"),
    ("estimate_basis_review_update", "review", "AFTER UPDATE", None,
     f"""UPDATE estimate_basis SET {_set_review('OLD.report_id')} WHERE report_id = OLD.report_id
                                                                    AND OLD.report_id <> NEW.report_id;
        UPDATE estimate_basis SET {_set_review('NEW.report_id')} WHERE report_id = NEW.report_id"""),
    ("estimate_basis_review_delete", "review", "AFTER DELETE", None,
     f"UPDATE estimate_basis SET {_set_review('OLD.report_id')} WHERE report_id = OLD.report_id"),
)


def _create_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table, event, when, body in TRIGGERS:
        statements = body.rstrip().rstrip(";") + ";"
        if postgresql:
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                       f"BEGIN {statements} RETURN NULL; END $$;")
            condition = f" WHEN ({when})" if when else ""
            op.execute(f"CREATE TRIGGER {name} {event} ON {table} FOR EACH ROW{condition} "
                       f"EXECUTE FUNCTION {name}();")
        else:
            condition = " WHEN " + when.replace("IS DISTINCT FROM", "IS NOT") if when else ""
            op.execute(f"CREATE TRIGGER {name} {event} ON {table}{condition}\nBEGIN\n{statements}\nEND;")


def _drop_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table, *_ in reversed(TRIGGERS):
        if postgresql:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
