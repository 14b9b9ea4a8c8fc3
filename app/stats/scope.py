"""What each role may ask of the statistics: one declared allowlist per role, checked in one place.

Roles that may see single cases (advisers, admins) keep every filter. Dashboards get fixed tables, the way
statistics offices publish them: whole months (and so quarters and years), department and agency (not
unit), target group, service and category, one value each; grouped by those dimensions and by period. Any
other parameter is a 422 naming it, before anything is counted: free-text search, units, statuses,
provenance and day ranges would let a dashboard cut a table down to one family.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.dependencies import LocalTzDep, SettingsDep
from app.errors import FieldError, InvalidInput
from app.stats.schemas import Dimension

DASHBOARD_PARAMETERS = frozenset({"by", "period", "reported_from", "reported_to", "department", "agency",
                                  "target_group", "service", "category", "include_suggested", "format"})
DASHBOARD_DIMENSIONS = frozenset({Dimension.PERIOD, Dimension.CATEGORY, Dimension.TARGET_GROUP, Dimension.SERVICE,
                                  Dimension.DEPARTMENT, Dimension.AGENCY})
# None: every parameter the route declares. A caller holding several roles gets the widest.
ALLOWED_PARAMETERS: dict[Role, frozenset[str] | None] = {
    Role.ADMIN: None, Role.ADVISER: None, Role.DASHBOARD: DASHBOARD_PARAMETERS}
FIXED_TABLES = "dashboards get fixed tables only (see the README, 'Small numbers')"


@dataclass(frozen=True)
class StatsScope:
    """Who asks for statistics, which departments they cover, whether they see exact counts, and how they are
    shown: dates in `local`, and (when not exact) counts perturbed and hidden below k."""

    principal: Principal
    departments: frozenset[str] | None
    exact: bool
    local: ZoneInfo
    k: int

    @property
    def protect_small(self) -> bool:
        """Whether small counts are protected (everyone who may not see single cases)."""
        return not self.exact


def exact_roles(principal: Principal) -> bool:
    """Whether the caller may see single cases (and so exact counts and every filter)."""
    return any(ALLOWED_PARAMETERS.get(role, frozenset()) is None for role in principal.roles)


def refused_parameters(params: Mapping[str, Sequence[str]]) -> list[FieldError]:
    """What a dashboard may not send, each named with the reason (values are never echoed: they may be
    free text or an identity number)."""
    errors: list[FieldError] = []
    for name, values in params.items():
        if name not in DASHBOARD_PARAMETERS:
            errors.append(FieldError(field=name, reason=f"not available to dashboards: {FIXED_TABLES}"))
        elif name in ("target_group", "service") and len(values) > 1:
            errors.append(FieldError(field=name, reason=f"one value only for dashboards: {FIXED_TABLES}"))
    for value in params.get("by", ()):
        if value in Dimension.__members__.values() and Dimension(value) not in DASHBOARD_DIMENSIONS:
            errors.append(FieldError(field="by", reason=f"grouping by {value} is not available to dashboards; "
                                     f"choose from {', '.join(sorted(d.value for d in DASHBOARD_DIMENSIONS))}"))
    for name, first in (("reported_from", True), ("reported_to", False)):
        for value in params.get(name, ()):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                continue  # not a date: the query's own validation names it
            edge = 1 if first else monthrange(day.year, day.month)[1]
            if day.day != edge:
                errors.append(FieldError(field=name, reason=f"dashboards ask for whole months: {name} must be the "
                                         f"{'first' if first else 'last'} day of a month"))
    return errors


def check_parameters(principal: Principal, params: Mapping[str, Sequence[str]]) -> None:
    """Refuse (422) what the caller's roles may not ask of the statistics; nothing for exact roles."""
    if exact_roles(principal):
        return
    errors = refused_parameters(params)
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)


def statistics_scope(request: Request, principal: Annotated[Principal, require(Role.ADVISER, Role.DASHBOARD)],
                     settings: SettingsDep, local: LocalTzDep) -> StatsScope:
    """The dependency every aggregate route declares: authorises, applies the role's allowlist to the query
    string, and says whether counts are exact."""
    params = {name: request.query_params.getlist(name) for name in request.query_params}
    check_parameters(principal, params)
    return StatsScope(principal=principal, departments=principal.departments, exact=exact_roles(principal),
                      local=local, k=settings.min_cell_count)


Scope = Annotated[StatsScope, Depends(statistics_scope)]
