"""HTTP routes of the model registry and live quality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import error_responses
from app.export import CsvFormat, columns_of, csv_answer, csv_response, flatten, wants_csv
from app.registry import service
from app.registry.schemas import ModelOut
from app.stats import quality as stats_quality
from app.stats.schemas import ModelQuality, QualityCell
from app.stats.scope import Scope

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", summary="Registered classifier models and their metrics", response_model=list[ModelOut],
            responses={200: csv_answer("The models"), **error_responses(401, 403, 422, 429)})
def get_models(request: Request, session: SessionDep, principal: Annotated[Principal, require(Role.ADMIN)],
               format: CsvFormat = "json") -> list[ModelOut] | Response:
    """Newest first; `active` marks the one every server process scores with. As CSV: one row per model,
    nested metrics as dotted columns (`metrics.dev.f1`)."""
    active = service.active_version(session)
    models = [service.model_out(row, active) for row in service.list_versions(session)]
    if wants_csv(format, request.headers.get("accept")):
        rows = [flatten(model.model_dump(mode="json")) for model in models]
        return csv_response("models.csv", columns_of(rows, first=[f for f in ModelOut.model_fields if f != "metrics"]),
                            rows)
    return models


@router.get("/active/quality", summary="Observed precision of the active model's flags, from reviews",
            response_model=ModelQuality,
            responses={200: csv_answer("The quality"), **error_responses(401, 403, 422, 429)})
def get_quality(request: Request, session: SessionDep, scope: Scope,
                format: CsvFormat = "json") -> ModelQuality | Response:
    """Confirmed / reviewed flags, reviews waiting, and misses found in the audit sample; per department, among
    the caller's departments. Dashboards get every count perturbed and small ones hidden. As CSV: the overall
    row (department empty) first, then one row per department."""
    result = stats_quality.quality(session, scope.departments, protect_small=scope.protect_small, k=scope.k)
    if wants_csv(format, request.headers.get("accept")):
        rows = [{"model_version": result.model_version, **cell.model_dump(mode="json")}
                for cell in (result.overall, *result.by_department)]
        return csv_response("model-quality.csv", ["model_version", *QualityCell.model_fields], rows)
    return result
