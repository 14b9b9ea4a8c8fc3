"""statistics: a label's reporting date is looked up only when its writer leaves it out

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Migration 0007 copies the report's Oslo reporting date onto every label by a trigger that reads the report
row for each label written: ingest writes 3.6 labels per report, so 3.6 lookups per report, though ingest
has the date in hand (it writes the report row in the same transaction). The insert trigger now runs only
for a label written without a date (reviews, rescoring, anything else), so what ingest supplies is kept;
updates of a label and changes of a report's date are handled as before. On SQLite a label moved to another
report by an update now takes that report's date too (0007 covered inserts only there).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FILL = """
    CREATE TRIGGER report_label_reported_on AFTER INSERT ON report_label{condition}
    BEGIN
        UPDATE report_label SET reported_on = (SELECT reported_on FROM report WHERE id = NEW.report_id)
        WHERE report_id = NEW.report_id AND dimension = NEW.dimension AND code = NEW.code;
    END;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER report_label_reported_on ON report_label")
        op.execute("""
            CREATE TRIGGER report_label_reported_on BEFORE INSERT ON report_label
            FOR EACH ROW WHEN (NEW.reported_on IS NULL) EXECUTE FUNCTION report_label_reported_on();
        """)
        op.execute("""
            CREATE TRIGGER report_label_reported_on_update BEFORE UPDATE ON report_label
            FOR EACH ROW EXECUTE FUNCTION report_label_reported_on();
        """)
        return
    op.execute("DROP TRIGGER report_label_reported_on")
    op.execute(_SQLITE_FILL.format(condition="\n    WHEN NEW.reported_on IS NULL"))
    op.execute("""
        CREATE TRIGGER report_label_reported_on_update AFTER UPDATE OF report_id ON report_label
        BEGIN
            UPDATE report_label SET reported_on = (SELECT reported_on FROM report WHERE id = NEW.report_id)
            WHERE rowid = NEW.rowid;
        END;
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER report_label_reported_on_update ON report_label")
        op.execute("DROP TRIGGER report_label_reported_on ON report_label")
        op.execute("""
            CREATE TRIGGER report_label_reported_on BEFORE INSERT OR UPDATE ON report_label
            FOR EACH ROW EXECUTE FUNCTION report_label_reported_on();
        """)
        return
    op.execute("DROP TRIGGER report_label_reported_on_update")
    op.execute("DROP TRIGGER report_label_reported_on")
    op.execute(_SQLITE_FILL.format(condition=""))
