"""review queue: a mark on each score row that a review decided its report, and indexes in the queue's orders

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

The review queue is every flagged report nobody has decided on yet (and the audit sample), highest score or
nearest the threshold first. With nothing that says "awaiting a decision" in the table that holds the score,
every request joined all flagged scores (67,000 of 882,000 on a million reports) to their reports, tested
each against the reviews and sorted them: 600-1,800 ms. `report_score.reviewed` says whether any review of
the report exists; two partial indexes over the flagged rows still awaiting a decision, one per queue order,
let the queue read its first hundred rows from an index range. The audit sample (unflagged reports whose
fixed draw is below the configured share: 20,000 candidates at 2 %) is found without reading a report or a
score row: an index on `report.audit_draw` that carries the id, category and department, joined to one over
the unflagged score rows awaiting a decision that carries the threshold (200 ms became 60 ms on a loaded
machine).

The mark is kept by the database, whatever writes scores or reviews (ingest, bulk ingest, rescore, review):
a score row takes it when written, a review sets it, and deleting or moving a review recomputes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Flagged rows nobody has decided on yet, as each engine's queries write the condition (SQLite has no booleans).
AWAITING = {"postgresql_where": sa.text("flagged AND NOT reviewed"),
            "sqlite_where": sa.text("flagged = 1 AND reviewed = 0")}
UNFLAGGED = {"postgresql_where": sa.text("NOT flagged AND NOT reviewed"),
             "sqlite_where": sa.text("flagged = 0 AND reviewed = 0")}
BACKFILL = "UPDATE report_score SET reviewed = EXISTS (SELECT 1 FROM review v WHERE v.report_id = report_score.report_id)"


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: SQLite's batch mode rebuilds the table and would drop its triggers.
    op.add_column('report_score', sa.Column('reviewed', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(BACKFILL)
    op.create_index('ix_report_score_queue_score', 'report_score', ['score', 'report_id'], unique=False, **AWAITING)
    op.create_index('ix_report_score_queue_uncertain', 'report_score', [sa.text('abs(score - threshold)'), 'report_id'],
                    unique=False, **AWAITING)
    op.create_index('ix_report_score_queue_sample', 'report_score', ['report_id'], unique=False,
                    postgresql_include=['threshold'], **UNFLAGGED)
    op.create_index('ix_report_audit_draw', 'report', ['audit_draw'], unique=False,
                    postgresql_include=['id', 'category_code', 'department_code'])
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_index('ix_report_audit_draw', table_name='report')
    op.drop_index('ix_report_score_queue_sample', table_name='report_score', **UNFLAGGED)
    op.drop_index('ix_report_score_queue_uncertain', table_name='report_score', **AWAITING)
    op.drop_index('ix_report_score_queue_score', table_name='report_score', **AWAITING)
    op.drop_column('report_score', 'reviewed')


def _reviewed(report_id: str) -> str:
    return f"EXISTS (SELECT 1 FROM review v WHERE v.report_id = {report_id})"


# (name, table, timing and event, body) of the triggers both engines run after the row is written.
REVIEW_TRIGGERS = (
    ("report_score_reviewed_review_insert", "review", "AFTER INSERT",
     "UPDATE report_score SET reviewed = true WHERE report_id = NEW.report_id AND NOT reviewed"),
    ("report_score_reviewed_review_update", "review", "AFTER UPDATE OF report_id",
     f"""UPDATE report_score SET reviewed = {_reviewed('OLD.report_id')} WHERE report_id = OLD.report_id;
        UPDATE report_score SET reviewed = true WHERE report_id = NEW.report_id AND NOT reviewed"""),
    ("report_score_reviewed_review_delete", "review", "AFTER DELETE",
     f"UPDATE report_score SET reviewed = {_reviewed('OLD.report_id')} WHERE report_id = OLD.report_id"),
)


def _create_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # A score row is written with the mark it should have (rescoring deletes and inserts the row).
        op.execute(f"""
            CREATE FUNCTION report_score_reviewed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.reviewed := {_reviewed('NEW.report_id')}; RETURN NEW; END $$;
        """)
        op.execute("CREATE TRIGGER report_score_reviewed BEFORE INSERT OR UPDATE OF report_id ON report_score "
                   "FOR EACH ROW EXECUTE FUNCTION report_score_reviewed();")
    else:
        # SQLite cannot change NEW in a BEFORE trigger: the row is completed right after it is written, and only
        # when a review exists (a new report's score has none).
        op.execute(f"""
            CREATE TRIGGER report_score_reviewed AFTER INSERT ON report_score WHEN {_reviewed('NEW.report_id')}
            BEGIN UPDATE report_score SET reviewed = true WHERE report_id = NEW.report_id; END;
        """)
    for name, table, event, body in REVIEW_TRIGGERS:
        statements = body.rstrip().rstrip(";") + ";"
        if postgresql:
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                       f"BEGIN {statements} RETURN NULL; END $$;")
            op.execute(f"CREATE TRIGGER {name} {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();")
        else:
            op.execute(f"CREATE TRIGGER {name} {event} ON {table}\nBEGIN\n{statements}\nEND;")


def _drop_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table, *_ in (*reversed(REVIEW_TRIGGERS), ("report_score_reviewed", "report_score")):
        if postgresql:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
