"""Modell (admin): the active model, live precision, misses in the audit sample, candidates, the gate."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from app.db import SessionDep
from app.registry import service as registry_service
from app.review.labels import TARGET_CATEGORY
from app.stats import quality as stats_quality
from app.web import pages

router = pages.page_router()


@router.get("/modell")
def model_page(request: Request, session: SessionDep, current: pages.Admin) -> HTMLResponse:
    """Modell (admin): the active model, live precision per department, misses in the audit sample, candidates
    and the promotion gate."""
    active = registry_service.active_version(session)
    models = [registry_service.model_out(row, active) for row in registry_service.list_versions(session)]
    quality = stats_quality.quality(session)

    def f1(model: Any) -> float | None:
        value = model.metrics.get("cv", {}).get(TARGET_CATEGORY, {}).get("f1")
        return float(value) if isinstance(value, int | float) else None

    active_model = next((m for m in models if m.active), None)
    return pages.render(request, "model.html", {
        "models": models, "quality": quality, "active": active_model, "f1": f1,
        "active_f1": f1(active_model) if active_model else None, "labels": pages.labels_of(session),
    }, current=current)
