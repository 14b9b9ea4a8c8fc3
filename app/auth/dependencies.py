"""The authorisation rule every API route declares: which roles may call it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.auth import keys
from app.auth.oidc import InvalidToken, verify_token
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import Forbidden, TooManyRequests, Unauthenticated
from app.settings import Settings

CHALLENGE = 'Bearer realm="avvik"'

# Declared for the OpenAPI contract only (two alternatives: an OIDC token or an API key, each alone
# enough); `authenticate` reads the headers itself, so that every failure answers with our 401 and reason.
BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearer",
    description="An access token from the municipality's identity provider (OIDC JWT), or an API key.",
)
API_KEY = APIKeyHeader(
    auto_error=False, scheme_name="apiKey", name="X-API-Key",
    description="An API key made with `avvik apikey create`.",
)


class Authorize:
    """A route's rule: the caller must hold one of these roles (admin may do everything)."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles | {Role.ADMIN}

    def __call__(
        self,
        request: Request,
        session: SessionDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
        api_key: Annotated[str | None, Depends(API_KEY)] = None,
    ) -> Principal:
        principal = authenticate(request, session)
        if not principal.roles & self.roles:
            raise Forbidden(
                f"needs one of the roles: {', '.join(sorted(r.value for r in self.roles))}",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope"'},
            )
        wait = request.app.state.rate_limiter.acquire(principal.actor)
        if wait is not None:
            raise TooManyRequests("rate limit reached", headers={"Retry-After": str(wait)})
        request.state.principal = principal
        return principal


def require(*roles: Role) -> Any:
    """Declare who may call a route: `principal: Annotated[Principal, require(Role.ADVISER)]`."""
    return Depends(Authorize(frozenset(roles)))


def route_rule(dependant: Any) -> Authorize | None:
    """The Authorize rule somewhere in a route's dependency tree, if any (for the route-table check)."""
    if isinstance(dependant.call, Authorize):
        return dependant.call
    for sub in dependant.dependencies:
        if (rule := route_rule(sub)) is not None:
            return rule
    return None


def authenticate(request: Request, session: Any) -> Principal:
    """Who is calling, from `Authorization: Bearer …` or `X-API-Key`; 401 (RFC 6750) otherwise."""
    credential = _credential(request)
    if credential is None:
        raise Unauthenticated("authentication required", headers={"WWW-Authenticate": CHALLENGE})
    if _looks_like_jwt(credential):
        return _user(request, credential)
    principal = keys.authenticate_key(session, credential)
    if principal is None:
        raise _invalid("unknown or revoked API key")
    return principal


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _invalid("use the Bearer scheme")
        return value.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def _looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


def _user(request: Request, token: str) -> Principal:
    settings: Settings = request.app.state.settings
    jwks = request.app.state.jwks
    if jwks is None or not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_tenant_id):
        raise _invalid("sign-in tokens are not accepted by this installation")
    try:
        claims = verify_token(token, jwks, settings.oidc_issuer, settings.oidc_audience, settings.oidc_tenant_id)
    except InvalidToken as exc:
        raise _invalid(str(exc)) from exc
    roles, departments = roles_from_claims(claims.roles, settings)
    return Principal(kind="user", subject=claims.object_id, tenant=claims.tenant_id, roles=roles,
                     departments=departments)


def roles_from_claims(claimed: tuple[str, ...], settings: Settings) -> tuple[frozenset[Role], frozenset[str] | None]:
    """App roles to our roles. '<adviser role>' grants every department; '<adviser role>.<DEPT>' one."""
    names = {settings.role_integration: Role.INTEGRATION, settings.role_adviser: Role.ADVISER,
             settings.role_dashboard: Role.DASHBOARD, settings.role_admin: Role.ADMIN}
    roles: set[Role] = set()
    departments: set[str] = set()
    everywhere = False
    for claim in claimed:
        if claim in names:
            roles.add(names[claim])
            # Only an unrestricted adviser grant opens every department's reports.
            everywhere |= names[claim] in (Role.ADVISER, Role.ADMIN)
            continue
        base, _, department = claim.rpartition(".")
        if base in names and department:
            roles.add(names[base])
            departments.add(department)
    return frozenset(roles), None if everywhere or not departments else frozenset(departments)


def _invalid(reason: str) -> Unauthenticated:
    description = reason.replace('"', "'")
    return Unauthenticated(reason, headers={
        "WWW-Authenticate": f'{CHALLENGE}, error="invalid_token", error_description="{description}"'})


