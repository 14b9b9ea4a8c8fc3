"""HTTP routes of the model registry and live quality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import error_responses
from app.registry import service
from app.registry.schemas import ModelOut, ModelQuality

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", summary="Registered classifier models and their metrics", responses=error_responses(401, 403, 429))
def get_models(session: SessionDep, principal: Annotated[Principal, require(Role.ADMIN)]) -> list[ModelOut]:
    """Newest first; `active` marks the one every server process scores with."""
    active = service.active_version(session)
    return [service.model_out(row, active) for row in service.list_versions(session)]


@router.get("/active/quality", summary="Observed precision of the active model's flags, from reviews",
            responses=error_responses(401, 403, 429))
def get_quality(session: SessionDep,
                principal: Annotated[Principal, require(Role.ADVISER, Role.DASHBOARD)]) -> ModelQuality:
    """Confirmed / reviewed flags, reviews waiting, and misses found in the audit sample; per department."""
    return service.quality(session)
