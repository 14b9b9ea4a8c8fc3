"""statistics: one summary row per report with what the estimate needs, kept by triggers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The estimate splits a period's undecided reports into score bands. Read from the tables that own the facts,
that is every report of the period joined to its score (882,000 scores on a million reports: a hash join of
300–450 ms) and tested against the reviews. `estimate_basis` keeps, per report, the Oslo reporting date,
the confirmed category, whether a review decided it and the active score (flag and score; the band follows
from the active model's threshold when asked), so that the estimate reads one index range of narrow rows.

The rows are kept by the database, whatever writes reports, scores or reviews (ingest, bulk ingest, review,
rescore): triggers on report (insert; a changed date or confirmed category), report_score (insert, update,
delete) and review (insert, delete). A report's deletion cascades. Existing reports are backfilled here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
    INSERT INTO estimate_basis (report_id, reported_on, confirmed_category_code, reviewed, flagged, score)
    SELECT r.id, r.reported_on, r.confirmed_category_code,
           EXISTS (SELECT 1 FROM review v WHERE v.report_id = r.id), s.flagged, s.score
    FROM report r LEFT JOIN report_score s ON s.report_id = r.id
"""


def upgrade() -> None:
    op.create_table(
        'estimate_basis',
        sa.Column('report_id', sa.Integer(), nullable=False),
        sa.Column('reported_on', sa.Date(), nullable=False),
        sa.Column('confirmed_category_code', sa.String(length=80), nullable=True),
        sa.Column('reviewed', sa.Boolean(), nullable=False),
        sa.Column('flagged', sa.Boolean(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['report_id'], ['report.id'], name=op.f('fk_estimate_basis_report_id_report'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('report_id', name=op.f('pk_estimate_basis')),
    )
    op.execute(BACKFILL)
    with op.batch_alter_table('estimate_basis', schema=None) as batch_op:
        batch_op.create_index('ix_estimate_basis_stats',
                              ['reported_on', 'confirmed_category_code', 'reviewed', 'flagged', 'score'], unique=False)
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    with op.batch_alter_table('estimate_basis', schema=None) as batch_op:
        batch_op.drop_index('ix_estimate_basis_stats')
    op.drop_table('estimate_basis')


# (trigger name, table, timing and event, PostgreSQL body, SQLite body). NEW and OLD are the trigger's rows.
TRIGGERS = (
    ("estimate_basis_report_insert", "report", "AFTER INSERT", None,
     """INSERT INTO estimate_basis (report_id, reported_on, confirmed_category_code, reviewed, flagged, score)
        VALUES (NEW.id, NEW.reported_on, NEW.confirmed_category_code,
                EXISTS (SELECT 1 FROM review v WHERE v.report_id = NEW.id),
                (SELECT s.flagged FROM report_score s WHERE s.report_id = NEW.id),
                (SELECT s.score FROM report_score s WHERE s.report_id = NEW.id))"""),
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
     "UPDATE estimate_basis SET reviewed = TRUE WHERE report_id = NEW.report_id AND NOT reviewed"),
    ("estimate_basis_review_delete", "review", "AFTER DELETE", None,
     """UPDATE estimate_basis SET reviewed = EXISTS (SELECT 1 FROM review v WHERE v.report_id = OLD.report_id)
        WHERE report_id = OLD.report_id"""),
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
