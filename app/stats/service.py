"""Statistics computed in SQL over the effective labels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session

from app.privacy.cellkey import Published
from app.privacy.secret import load_cell_key
from app.registry.models import ModelVersion
from app.registry.service import active_version
from app.report import queries
from app.report import service as report_service
from app.report.models import Report, ReportLabel
from app.report.schemas import ReportFilter
from app.review.labels import TARGET_CATEGORY
from app.stats import queries as stats_queries
from app.stats import similarity
from app.stats.estimate import Stratum, estimate
from app.stats.privacy import EXACT, Shield
from app.stats.schemas import (
    CellOut,
    CountRow,
    CountsOut,
    CountsQuery,
    Dimension,
    EstimateOut,
    MatrixOut,
    MatrixQuery,
    PairCount,
    Period,
    RecurringGroup,
    RecurringOut,
    RecurringQuery,
    SimilarOut,
    SimilarReport,
    StratumOut,
    TrendOut,
    TrendPoint,
    TrendQuery,
)
from app.taxonomy.service import load_taxonomy

METHOD = ("stratified posterior-predictive estimate over score bands (Jeffreys prior, 20,000 seeded draws); "
          "rates from the latest reviews of the active model's flags and of the audit sample")


def _analytic(session: Session) -> None:
    """Planner settings for this transaction only (PostgreSQL). Statistics scan hundreds of thousands of
    index entries in well under a second: compiling the plan with LLVM (JIT, which starts at a fixed cost
    threshold) costs more than it saves. And the reports of one category in one year are a few thousand
    scattered rows: with the default random_page_cost of 4 (a spinning disk) the planner reads the whole
    year through the date index instead (measured on a million reports: 110 against 25 ms); 1.1 is the
    usual value for SSDs and for data in memory. Plans are made for the parameters of each request (below)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL random_page_cost = 1.1"))
        # psycopg prepares a statement run five times, and PostgreSQL may then plan it once for any
        # parameters: for a period that is a plan made without knowing how many days it spans (measured: the
        # matrix went from 0.1 s to over the 15 s statement timeout on its sixth request).
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def estimate_count(session: Session, f: ReportFilter, local: ZoneInfo, departments: frozenset[str] | None,
                   protect_small: bool = False, k: int = 5) -> EstimateOut:
    """The audit's question for a filter: how many collaboration deviations about children are there?
    When `protect_small`, a confirmed count or band population from 1 to k−1 is hidden, and so is
    everything computed from it (the estimate and its interval), which would otherwise give it away."""
    _analytic(session)
    resolved = report_service.resolve_filter(load_taxonomy(session), f, local, departments)
    version = active_version(session)
    threshold = session.scalar(select(ModelVersion.threshold).where(ModelVersion.version == version)) or 0.5
    shield = _shield(session, protect_small, k)
    row = session.execute(stats_queries.estimate_basis(
        resolved, stats_queries.Days(f.reported_from, f.reported_to), version, threshold, shield)).one()._mapping
    return estimate_answer({name: shield.cell(int(row[name]), int(row[f"{name}_key"]))
                            for name in row if not name.endswith("_key")}, version)


def estimate_answer(counts: Mapping[str, Published], version: str | None) -> EstimateOut:
    """The estimate from the counts of stats_queries.estimate_basis as the caller may see them (pure)."""
    names = stats_queries.ESTIMATE_BANDS
    confirmed = counts["confirmed"]
    population = {name: counts[name] for name in names}
    zero = Published(0)
    reviewed = {name: (counts[f"{name}_reviewed"], counts[f"{name}_positives"])
                if name in stats_queries.REVIEWED_BANDS else (zero, zero) for name in names}
    # Computed from the published counts (perturbed for dashboards), so that the estimate reveals nothing
    # the counts beside it do not; hidden with them when any of them is hidden.
    figures = [confirmed, *population.values(), *(c for pair in reviewed.values() for c in pair)]
    hidden = any(c.suppressed for c in figures)
    result = None if hidden else estimate(confirmed.value or 0, [
        Stratum(name, population[name].value or 0, reviewed[name][0].value or 0,
                min(reviewed[name][1].value or 0, reviewed[name][0].value or 0)) for name in names])
    return EstimateOut(
        confirmed=confirmed.value,
        estimated_unconfirmed=None if result is None else result.estimated_unconfirmed,
        estimated_total=None if result is None else result.total,
        interval_95=None if result is None else (result.low, result.high), suppressed=hidden,
        model_version=version, method=METHOD,
        strata=[StratumOut(name=name, unreviewed_reports=population[name].value,
                           suppressed=any(c.suppressed for c in (population[name], *reviewed[name])),
                           reviewed=reviewed[name][0].value, confirmed_in_review=reviewed[name][1].value)
                for name in names],
    )


def _period_key(year: int, month: int, period: Period) -> str:
    if period is Period.YEAR:
        return f"{year:04d}"
    if period is Period.QUARTER:
        return f"{year:04d}-Q{(month - 1) // 3 + 1}"
    return f"{year:04d}-{month:02d}"


def _periods(first: date, last: date, period: Period) -> list[str]:
    """Every period from first to last, so that a time series has no holes."""
    keys: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        key = _period_key(year, month, period)
        if not keys or keys[-1] != key:
            keys.append(key)
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return keys


Tally = list[int]  # [reports, sum of their record keys]


def _tally() -> Tally:
    return [0, 0]


def _cells(session: Session, query: CountsQuery, confirmed: queries.ResolvedFilter,
           suggested: queries.ResolvedFilter | None, days: stats_queries.Days, shield: Shield
           ) -> tuple[dict[tuple[str | None, ...], Tally], dict[tuple[str | None, ...], Tally] | None, Tally,
                      Tally | None]:
    """The cells and the total of reports, confirmed and (when asked) with suggestions, each with the sum of
    its reports' record keys: one statement, months folded in SQL (stats_queries.monthly); quarters and years
    are months added up here."""
    parts = [stats_queries.monthly(query.by, confirmed, days, "confirmed", shield),
             stats_queries.total_row(query.by, confirmed, days, "confirmed_total", shield)]
    if suggested is not None:
        parts += [stats_queries.monthly(query.by, suggested, days, "suggested", shield),
                  stats_queries.total_row(query.by, suggested, days, "suggested_total", shield)]
    cells: dict[str, dict[tuple[str | None, ...], Tally]] = {"confirmed": defaultdict(_tally),
                                                             "suggested": defaultdict(_tally)}
    totals: dict[str, Tally] = {}
    for kind, *values, n, key in session.execute(union_all(*parts)):
        if kind.endswith("_total"):
            totals[kind] = [int(n or 0), int(key or 0)]
            continue
        cell_key: list[str | None] = []
        position = 0
        for dimension in query.by:
            if dimension is Dimension.PERIOD:
                cell_key.append(_period_key(int(values[position]), int(values[position + 1]), query.period))
                position += 2
            else:
                value = values[position]
                cell_key.append(None if value is None else str(value))
                position += 1
        # Months of one quarter or year fold into one cell: add, since a report is in one month only (and
        # so do their record keys: the quarter's cell key is that of its reports).
        tally = cells[kind][tuple(cell_key)]
        tally[0] += int(n)
        tally[1] += int(key or 0)
    return (cells["confirmed"], cells["suggested"] if suggested is not None else None, totals["confirmed_total"],
            totals.get("suggested_total") if suggested is not None else None)


def _shield(session: Session, protect_small: bool, k: int) -> Shield:
    """Exact counts, or (for a caller who may not see single cases) the installation's perturbation."""
    return Shield(load_cell_key(session), k) if protect_small else EXACT


def _cell(published: Published) -> CellOut:
    return CellOut(value=published.value, suppressed=published.suppressed)


def counts(session: Session, query: CountsQuery, local: ZoneInfo, departments: frozenset[str] | None,
           protect_small: bool, k: int) -> CountsOut:
    """Counts grouped by one or two dimensions, confirmed and (if asked) with suggestions; empty periods
    are zeros; when `protect_small`, every cell and total is perturbed on its own (app.stats.privacy)."""
    _analytic(session)
    if session.get_bind().dialect.name == "postgresql":
        # The total counts a year of report dates (220,000 index entries): 9.5 ms alone, 19 ms when PostgreSQL
        # starts two parallel workers for it (measured on a million reports, 2 CPUs).
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    shield = _shield(session, protect_small, k)
    resolved = report_service.resolve_filter(load_taxonomy(session), query, local, departments)
    days = stats_queries.Days(query.reported_from, query.reported_to)
    # The same filter twice: once counting only what people said, once with the classifier's suggestions.
    confirmed_filter = replace(resolved, include_suggested=False)
    suggested_filter = replace(resolved, include_suggested=True) if resolved.include_suggested else None
    confirmed, suggested, confirmed_total, suggested_total = _cells(session, query, confirmed_filter,
                                                                    suggested_filter, days, shield)

    keys = set(confirmed) | set(suggested or {})
    if Dimension.PERIOD in query.by:
        position = query.by.index(Dimension.PERIOD)
        first, last = _range(session, suggested_filter or confirmed_filter, days)
        if first is not None and last is not None:
            others = {tuple(k[i] for i in range(len(k)) if i != position) for k in keys} or {()}
            if len(query.by) == 2 and others == {()}:
                others = set()
            for period in _periods(first, last, query.period):
                for other in others:
                    key = list(other)
                    key.insert(position, period)
                    keys.add(tuple(key))
    ordered = sorted(keys, key=lambda key: tuple((v is None, v or "") for v in key))

    def shape(cells: dict[tuple[str | None, ...], Tally], key: tuple[str | None, ...]) -> CellOut:
        return _cell(shield.cell(*cells.get(key, (0, 0))))

    rows = [CountRow(key={d.value: v for d, v in zip(query.by, key, strict=True)}, confirmed=shape(confirmed, key),
                     with_suggestions=shape(suggested, key) if suggested is not None else None)
            for key in ordered]
    total_row = CountRow(key={}, confirmed=_cell(shield.cell(*confirmed_total)),
                         with_suggestions=_cell(shield.cell(*suggested_total)) if suggested_total else None)
    return CountsOut(by=query.by, period=query.period, rows=rows, total=total_row,
                     suppression=None if shield.exact else SUPPRESSION.format(k=k, limit=k - 1))


SUPPRESSION = ("cell-key perturbation: every count and total has its own fixed noise in [-2, 2] (the same reports "
               "always get the same noise; zeros stay zero); perturbed counts below {k} are hidden")


def _range(session: Session, f: queries.ResolvedFilter, days: stats_queries.Days) -> tuple[date | None, date | None]:
    """The period asked for; an open side is the first or last reporting date under the filter."""
    if days.first is not None and days.last is not None:
        return days.first, days.last
    first, last = session.execute(stats_queries.reported_range(f, days)).one()
    return days.first or first, days.last or last


def _period_counts(session: Session, filters: dict[str, queries.ResolvedFilter], days: stats_queries.Days,
                   period: Period, shield: Shield) -> dict[str, dict[str, Tally]]:
    """Reports per period under each named filter, with their record keys, in one statement (months folded
    in SQL)."""
    result: dict[str, dict[str, Tally]] = {name: defaultdict(_tally) for name in filters}
    statement = union_all(*[stats_queries.monthly([Dimension.PERIOD], f, days, name, shield)
                            for name, f in filters.items()])
    for name, year, month, n, key in session.execute(statement):
        tally = result[name][_period_key(int(year), int(month), period)]
        tally[0] += int(n)
        tally[1] += int(key or 0)
    return result


def trend(session: Session, query: TrendQuery, local: ZoneInfo, departments: frozenset[str] | None,
          protect_small: bool = False, k: int = 5) -> TrendOut:
    """Per period: the count, its share of all reports, and the change from the previous period and from
    the same period a year before (which is why the counts reach a year further back). When `protect_small`
    the count and all-reports are each perturbed, and the share and changes are computed from what is shown."""
    _analytic(session)
    shield = _shield(session, protect_small, k)
    taxonomy = load_taxonomy(session)
    resolved = report_service.resolve_filter(taxonomy, query, local, departments)
    first, last = _range(session, resolved, stats_queries.Days(query.reported_from, query.reported_to))
    if first is None or last is None:
        return TrendOut(period=query.period, include_suggested=resolved.include_suggested, points=[])
    earlier = date(first.year - 1, first.month, 1)
    wide = stats_queries.Days(earlier, query.reported_to)
    # The denominator: every report of the period in the same part of the organisation.
    everything = ReportFilter(department=query.department, agency=query.agency, unit=query.unit)
    both = _period_counts(session, {"count": resolved, "all": report_service.resolve_filter(
        taxonomy, everything, local, departments)}, wide, query.period, shield)
    counted, totals = both["count"], both["all"]
    series = _periods(earlier, last, query.period)
    shown = set(_periods(first, last, query.period))
    steps_per_year = {Period.MONTH: 12, Period.QUARTER: 4, Period.YEAR: 1}[query.period]

    def published(counter: dict[str, Tally], index: int) -> Published | None:
        return shield.cell(*counter.get(series[index], (0, 0))) if index >= 0 else None

    points = []
    for index, key in enumerate(series):
        if key not in shown:
            continue
        n, base = published(counted, index), published(totals, index)
        previous, year_before = published(counted, index - 1), published(counted, index - steps_per_year)
        assert n is not None and base is not None
        share = n.value / base.value if n.value is not None and base.value else None

        points.append(TrendPoint(
            period=key, count=n.value, all_reports=base.value, share=None if share is None else round(share, 4),
            change_from_previous=_change(n, previous), change_from_last_year=_change(n, year_before),
            # A hidden count, or one a figure beside it would be computed from.
            suppressed=any(c is not None and c.suppressed for c in (n, base, previous, year_before))))
    return TrendOut(period=query.period, include_suggested=resolved.include_suggested, points=points)


def _change(now: Published, before: Published | None) -> int | None:
    """A change between two shown counts (None when either is hidden or there is no earlier period)."""
    if now.value is None or before is None or before.value is None:
        return None
    return now.value - before.value


def matrix(session: Session, query: MatrixQuery, local: ZoneInfo, departments: frozenset[str] | None,
           protect_small: bool = False, k: int = 5) -> MatrixOut:
    """Pairs of services (and of their agencies) named together on the reports under the filter."""
    _analytic(session)
    shield = _shield(session, protect_small, k)
    chosen = query if query.category else query.model_copy(update={"category": TARGET_CATEGORY})
    resolved = report_service.resolve_filter(load_taxonomy(session), chosen, local, departments)
    service_pairs: dict[tuple[str, str, bool], Tally] = defaultdict(_tally)
    agency_pairs: dict[tuple[str, str, bool], Tally] = defaultdict(_tally)
    reports: Tally = [0, 0]
    # One statement computes the pairs and the reporting side (stats_queries.matrix); unordered pairs come in
    # the database's collation and are put in Python's order here.
    for kind, a, b, directed, n, key in session.execute(
            stats_queries.matrix(resolved, stats_queries.Days(query.reported_from, query.reported_to), shield)):
        if kind == "reports":
            reports = [int(n), int(key or 0)]
            continue
        pair = (a, b, True) if directed else (*sorted((a, b)), False)
        tally = (service_pairs if kind == "service" else agency_pairs)[pair]
        tally[0] += int(n)
        tally[1] += int(key or 0)
    hidden = 0

    def ranked(pairs: dict[tuple[str, str, bool], Tally]) -> list[PairCount]:
        nonlocal hidden
        published = [(pair, shield.cell(*tally).value) for pair, tally in pairs.items()]
        shown = [(pair, n) for pair, n in published if n is not None]
        hidden += len(published) - len(shown)
        return [PairCount(a=a, b=b, directed=d, count=n) for (a, b, d), n in sorted(shown, key=lambda i: (-i[1], i[0]))]

    total = shield.cell(*reports)
    return MatrixOut(reports=total.value, reports_suppressed=total.suppressed, service_pairs=ranked(service_pairs),
                     agency_pairs=ranked(agency_pairs), hidden_pairs=hidden)


MAX_CANDIDATES = 2000  # text comparison is quadratic at worst: bound what one request may cost


def _docs(session: Session, f: queries.ResolvedFilter, days: stats_queries.Days) -> list[similarity.Doc]:
    """The most recent reports under a filter, as similarity reads them: the columns it needs and their
    services, each report's service codes aggregated beside it."""
    clauses = stats_queries.where(f, days)
    # The reporting date follows the reporting time, so the most recent reports are all on or after the
    # date of the last one taken: read from the date index alone (2,000 entries), that date spares the
    # heap the rest of the period (on a million reports, the 9,500 of a year's category: 7,500 pages, 4×
    # as many as the 2,000 needed).
    cutoff = session.scalar(select(Report.reported_on).where(*clauses).order_by(Report.reported_on.desc())
                            .offset(MAX_CANDIDATES - 1).limit(1))
    if cutoff is not None:
        clauses.append(Report.reported_on >= cutoff)
    # Joined as text on both engines (an array costs SQLAlchemy a conversion per row); codes are slugs,
    # so a comma cannot be part of one.
    postgresql = session.get_bind().dialect.name == "postgresql"
    aggregate = (func.string_agg if postgresql else func.group_concat)(ReportLabel.code, ",")
    services = select(aggregate).where(
        ReportLabel.report_id == Report.id, ReportLabel.dimension == "service",
        ReportLabel.provenance.in_(queries.label_provenances(f))).scalar_subquery()
    rows = session.execute(
        select(Report.id, Report.title, Report.description, Report.unit_name, services).where(*clauses)
        .order_by(Report.reported_at.desc(), Report.id.desc()).limit(MAX_CANDIDATES)).all()
    return [similarity.Doc(id=i, text=f"{title}. {description}", unit=unit,
                           services=frozenset(codes.split(",") if codes else ()))
            for i, title, description, unit, codes in rows]


def similar(session: Session, report_id: int, query: ReportFilter, local: ZoneInfo,
            departments: frozenset[str] | None, limit: int) -> SimilarOut:
    """Reports most like one report, among the most recent under the filter."""
    _analytic(session)
    target = report_service.get_report(session, report_id, departments)
    resolved = report_service.resolve_filter(load_taxonomy(session), query, local, departments)
    docs = _docs(session, resolved, stats_queries.Days(query.reported_from, query.reported_to))
    provenances = set(queries.label_provenances(resolved))
    me = similarity.Doc(id=target.id, text=f"{target.title}. {target.description}", unit=target.unit_name,
                        services=frozenset(lab.code for lab in target.labels
                                           if lab.dimension == "service" and lab.provenance in provenances))
    ranked = similarity.most_similar(me, docs, limit)
    by_id = {r.id: r for r in session.scalars(select(Report).where(Report.id.in_([i for i, _ in ranked])))}
    return SimilarOut(report_id=target.id, candidates=len(docs),
                      items=[SimilarReport(similarity=s, report=report_service.summary(by_id[i])) for i, s in ranked])


def recurring(session: Session, query: RecurringQuery, local: ZoneInfo,
              departments: frozenset[str] | None) -> RecurringOut:
    """Groups of similar reports between the same services (by default among samhandling_barn_unge)."""
    _analytic(session)
    chosen = query if query.category else query.model_copy(update={"category": TARGET_CATEGORY})
    docs = _docs(session, report_service.resolve_filter(load_taxonomy(session), chosen, local, departments),
                 stats_queries.Days(query.reported_from, query.reported_to))
    groups = similarity.recurring_groups(docs, query.min_size)
    return RecurringOut(candidates=len(docs), groups=[
        RecurringGroup(size=len(g.ids), services=g.services, units=g.units, words=g.terms,
                       example_ids=g.ids[:5], report_ids=g.ids) for g in groups])
