"""Writing many rows in few round trips: COPY or one pipeline on PostgreSQL, executemany elsewhere.

Ingest writes a report and its child rows (target groups, services, links, labels, score) for up to
1,000 reports per request. Building one multi-VALUES statement per call made SQLAlchemy compile it and
psycopg convert tens of thousands of parameters every time; COPY streams the same rows at a small
fraction of that cost. A single report's few rows go instead through psycopg's pipeline mode: every
statement is sent at once and the answers are read once, so four tables cost one round trip.

New reports still go in through INSERT … ON CONFLICT DO NOTHING, so two transactions creating the same
report end as one row: on PostgreSQL many rows are first copied into a temporary staging table, then
moved with one INSERT … SELECT … ON CONFLICT … RETURNING. Everything runs on the session's own
connection, inside its transaction; driver errors are raised as SQLAlchemy's (a timeout is a 503).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Float, Integer, String, Table, Text, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator, TypeEngine

Row = Sequence[object]
# From this many rows on COPY is cheaper than a pipelined INSERT (measured on loopback, PostgreSQL 15).
COPY_MIN_ROWS = 16


class BulkWriter:
    """Bulk inserts inside a session's transaction (the rows become visible to it at once)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgresql = session.get_bind().dialect.name == "postgresql"

    def insert(self, batches: Sequence[tuple[Table, Sequence[str], Sequence[Row]]]) -> None:
        """Insert rows into several tables (values in the order of each table's `columns`).

        The caller guarantees that the rows do not exist yet and that the tables do not refer to each
        other (they may refer to rows written before this call).
        """
        batches = [(table, columns, rows) for table, columns, rows in batches if rows]
        if not self.postgresql:
            for table, columns, rows in batches:
                self.session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
            return
        small = [b for b in batches if len(b[2]) < COPY_MIN_ROWS]
        if small:
            # Small tables first, all in one pipeline; none of them is referred to by a large one.
            connection = self._driver_connection()
            statement = "; ".join(_insert_sql(table, columns) for table, columns, _ in small)
            with _as_sqlalchemy_error(statement, self.session), connection.pipeline(), \
                    connection.cursor() as cursor:
                for table, columns, rows in small:
                    cursor.executemany(_insert_sql(table, columns), _with_json(table, columns, rows, _json_param))
        for table, columns, rows in batches:
            if len(rows) >= COPY_MIN_ROWS:
                self._copy(table, _quote(table.name), columns, rows)

    def insert_new(
        self, table: Table, columns: Sequence[str], rows: Sequence[Row], unique: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """INSERT … ON CONFLICT (unique) DO NOTHING; returns (id, *unique) of the rows this call created.

        Rows are inserted in the order of their unique key (by code point) on every path, so that two
        transactions inserting overlapping sets wait for each other instead of deadlocking.
        """
        if not rows:
            return []
        if self.postgresql and len(rows) >= COPY_MIN_ROWS:
            return self._insert_new_staged(table, columns, rows, unique)
        positions = [columns.index(c) for c in unique]
        ordered = sorted(rows, key=lambda row: tuple(str(row[p]) for p in positions))
        if not self.postgresql:
            statement = (sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))
                         .returning(table.c.id, *(table.c[c] for c in unique)))
            return [tuple(r) for r in self.session.execute(
                statement, [dict(zip(columns, row, strict=True)) for row in ordered])]
        one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = (f"INSERT INTO {_quote(table.name)} ({', '.join(_quote(c) for c in columns)}) VALUES "
               + ", ".join([one_row] * len(ordered))
               + f" ON CONFLICT ({', '.join(_quote(c) for c in unique)}) DO NOTHING"
               f" RETURNING {', '.join(_quote(c) for c in ('id', *unique))}")
        parameters = [value for row in _with_json(table, columns, ordered, _json_param) for value in row]
        with _as_sqlalchemy_error(sql, self.session), self._driver_connection().cursor() as cursor:
            cursor.execute(sql, parameters)
            return [tuple(r) for r in cursor.fetchall()]

    def _insert_new_staged(
        self, table: Table, columns: Sequence[str], rows: Sequence[Row], unique: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        names = ", ".join(_quote(c) for c in columns)
        # Named after the columns, so a process that outlives a migration never uses a stale shape. ON
        # COMMIT DELETE ROWS empties it at every commit; the DELETE below empties it at once, for callers
        # that run several ingests in one transaction.
        digest = hashlib.sha256(f"{table.name}:{names}".encode()).hexdigest()[:10]
        stage = _quote(f"avvik_stage_{table.name}_{digest}")
        order = ", ".join(f'{_quote(c)} COLLATE "C"' for c in unique)
        returning = ", ".join(_quote(c) for c in ("id", *unique))
        create = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                  f"SELECT {names} FROM {_quote(table.name)} WITH NO DATA")
        move = (f"WITH staged AS (DELETE FROM {stage} RETURNING {names}) "
                f"INSERT INTO {_quote(table.name)} ({names}) SELECT {names} FROM staged ORDER BY {order} "
                f"ON CONFLICT ({', '.join(_quote(c) for c in unique)}) DO NOTHING RETURNING {returning}")
        connection = self._driver_connection()
        with _as_sqlalchemy_error(create, self.session), connection.cursor() as cursor:
            cursor.execute(create)
        self._copy(table, stage, columns, rows)
        with _as_sqlalchemy_error(move, self.session), connection.cursor() as cursor:
            cursor.execute(move)
            return [tuple(r) for r in cursor.fetchall()]

    def _copy(self, table: Table, target: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """COPY rows into `target` (the table, or a staging table of its shape)."""
        names = ", ".join(_quote(c) for c in columns)
        types = _copy_types(table, columns)
        # Binary COPY with the column types declared: psycopg then neither guesses a type per value nor
        # formats text, and the server parses no text; it costs a fifth of text COPY on the client.
        statement = f"COPY {target} ({names}) FROM STDIN" + (" (FORMAT BINARY)" if types else "")
        connection = self._driver_connection()
        with _as_sqlalchemy_error(statement, self.session), connection.cursor() as cursor, \
                cursor.copy(statement) as copy:
            if types:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            else:
                for row in _with_json(table, columns, rows, json.dumps):
                    copy.write_row(row)

    def _driver_connection(self) -> Any:
        """psycopg's own connection, inside the session's transaction (begun by SQLAlchemy)."""
        return self.session.connection().connection.driver_connection


# PostgreSQL type names of the column types ingest writes (subclasses before their bases).
_PG_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (JSON, "json"), (BigInteger, "int8"), (Integer, "int4"), (Float, "float8"), (Boolean, "bool"),
    (Date, "date"), (Text, "text"), (String, "varchar"),
)


def _copy_types(table: Table, columns: Sequence[str]) -> list[str] | None:
    """The PostgreSQL type of each column for binary COPY, or None if one is of a type not mapped here."""
    types = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance
        if isinstance(column_type, DateTime):
            if not column_type.timezone:
                return None
            types.append("timestamptz")
            continue
        found = next((pg for kind, pg in _PG_TYPES if isinstance(column_type, kind)), None)
        if found is None:
            return None
        types.append(found)
    return types


def _insert_sql(table: Table, columns: Sequence[str]) -> str:
    return (f"INSERT INTO {_quote(table.name)} ({', '.join(_quote(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})")


def _json_param(value: object) -> object:
    from psycopg.types.json import Json

    return Json(value)


def _with_json(table: Table, columns: Sequence[str], rows: Sequence[Row], wrap: Any) -> Iterator[Row]:
    """The rows with the values of JSON columns wrapped for the driver (COPY takes JSON text)."""
    positions = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    if not positions:
        yield from rows
        return
    for row in rows:
        values = list(row)
        for position in positions:
            values[position] = wrap(values[position])
        yield values


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _as_sqlalchemy_error(statement: str, session: Session) -> Iterator[None]:
    """Raise driver errors as SQLAlchemy's, so they get the same answers (a timeout is 503, not 500)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        dialect = session.get_bind().dialect
        raw = session.connection().connection.dbapi_connection
        raise DBAPIError.instance(statement, None, exc, psycopg.Error, hide_parameters=True, dialect=dialect,
                                  # psycopg.Error is the DBAPI's Error; SQLAlchemy types it as a protocol of its own.
                                  connection_invalidated=dialect.is_disconnect(exc, raw, None),  # type: ignore[arg-type]
                                  ) from exc
