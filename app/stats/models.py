"""Indexes that exist for statistics: aggregates of a category over a period (trend, matrix, estimate).

They are declared here, beside the queries that need them, and created by migration 0007; the tables
themselves belong to `app.report` and `app.review`.
"""

from __future__ import annotations

from sqlalchemy import Index

from app.report.models import Report

STATS_INDEXES = (
    Index("ix_report_confirmed_category_reported_on", Report.confirmed_category_code, Report.reported_on),
    Index("ix_report_suggested_category_reported_on", Report.suggested_category_code, Report.reported_on),
)
