"""Promoting a registered version: activate it unless it judges worse than the active one."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, echo
from app.registry.artifacts import unpack
from app.registry.models import ModelVersion
from app.registry.service import activate, active_version
from classifier import evaluate


def promote(session: Session, version: str, by: str, judged_on: list[Any], force: bool) -> dict[str, Any]:
    """Activate a version unless it is worse than the active one on the judging set (F1 of the flag)."""
    candidate_row = session.get(ModelVersion, version)
    if candidate_row is None:
        raise NotFound(f"no model version {echo(version)}")
    current = active_version(session)
    comparison: dict[str, Any] = {"candidate": version, "active": current, "judged_on": len(judged_on)}
    if current is not None and current != version and judged_on:
        cache = Path(tempfile.gettempdir()) / "avvik-models"
        candidate = evaluate(unpack(candidate_row, cache), judged_on)["samhandling_barn_unge"]
        active_row = session.get(ModelVersion, current)
        assert active_row is not None
        incumbent = evaluate(unpack(active_row, cache), judged_on)["samhandling_barn_unge"]
        comparison |= {"candidate_f1": candidate["f1"], "active_f1": incumbent["f1"],
                       "candidate_roc_auc": candidate.get("roc_auc"), "active_roc_auc": incumbent.get("roc_auc")}
        if (candidate["f1"] or 0.0) < (incumbent["f1"] or 0.0) and not force:
            raise Conflict(f"{version} is worse than the active {current} on {len(judged_on)} held-out reports "
                           f"(F1 {candidate['f1']} < {incumbent['f1']}); use --force to promote anyway")
    activate(session, version, by)
    comparison["promoted"] = True
    return comparison
