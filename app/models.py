"""Every table of the service, imported in one place so that Alembic and the tests see all of them."""

from app.audit.models import AuditEvent, AuditEventReport
from app.auth.models import ApiKey
from app.db import Base
from app.privacy.models import CellKeySecret
from app.registry.models import ActiveModel, ModelVersion, RescoreRun
from app.report.models import Report, ReportLabel, ReportLink, ReportScore, ReportService, ReportTargetGroup
from app.review.models import Review
from app.stats.models import STATS_INDEXES, EstimateBasis
from app.taxonomy.models import CategoryAlias, TaxonomyCode
from app.web.models import WebSession, WebSignin

__all__ = [
    "STATS_INDEXES",
    "ActiveModel",
    "ApiKey",
    "AuditEvent",
    "AuditEventReport",
    "Base",
    "CategoryAlias",
    "CellKeySecret",
    "EstimateBasis",
    "ModelVersion",
    "Report",
    "ReportLabel",
    "ReportLink",
    "ReportScore",
    "ReportService",
    "ReportTargetGroup",
    "RescoreRun",
    "Review",
    "TaxonomyCode",
    "WebSession",
    "WebSignin",
]
