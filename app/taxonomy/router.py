"""HTTP routes of the taxonomy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from app.audit import service as audit
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import error_responses
from app.taxonomy import service
from app.taxonomy.models import CodeKind
from app.taxonomy.schemas import CodeChange, CodeIn, RetireIn, TaxonomyOut

router = APIRouter(prefix="/api/v1/taxonomy", tags=["taxonomy"])

Admin = Annotated[Principal, require(Role.ADMIN)]


@router.get("", summary="The taxonomy: categories, target groups, services and organisation",
            responses=error_responses(401, 403, 429))
def get_taxonomy(
    session: SessionDep,
    principal: Annotated[Principal, require(Role.INTEGRATION, Role.ADVISER, Role.DASHBOARD)],
) -> TaxonomyOut:
    """Every code with its Norwegian label and whether it is retired."""
    return service.taxonomy_tree(session)


@router.post("/{kind}", status_code=201, summary="Add a code",
             responses=error_responses(401, 403, 409, 422, 429))
def post_code(kind: CodeKind, body: CodeIn, request: Request, session: SessionDep, principal: Admin) -> CodeChange:
    """Add a code without a release."""
    change = service.add_code(session, kind, body)
    audit.record(session, request, principal, "taxonomy.add", detail=f"{kind.value}:{body.code}")
    return change


@router.post("/{kind}/{code}/retire", summary="Retire a code", responses=error_responses(401, 403, 404, 422, 429))
def retire_code(kind: CodeKind, code: str, body: RetireIn, request: Request, session: SessionDep,
                principal: Admin) -> CodeChange:
    """Retire a code: old reports keep it, new reports are refused it with the replacement named."""
    change = service.retire_code(session, kind, code, body.replaced_by)
    audit.record(session, request, principal, "taxonomy.retire", detail=f"{kind.value}:{code}")
    return change
