"""Statistics computed in SQL over the effective labels."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select, text, true, union_all
from sqlalchemy.orm import Session

from app.registry.models import ModelVersion
from app.registry.service import active_version
from app.report import queries
from app.report import service as report_service
from app.report.models import Report
from app.report.schemas import ReportFilter
from app.review.labels import TARGET_CATEGORY, is_case_clause
from app.review.models import ReportLabel
from app.stats import queries as stats_queries
from app.stats import similarity
from app.stats.estimate import Stratum, estimate
from app.stats.models import EstimateBasis
from app.stats.privacy import protect
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
    middle = (threshold + 1) / 2
    # One statement over the summary rows (migration 0008), answering one row: the confirmed reports and the
    # undecided ones (no confirmed target category, no review) per score band in the period, and the latest
    # reviews made with the active model (of every period) per band, with how many of them found a case.
    basis = EstimateBasis

    def number(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    undecided = and_(or_(basis.confirmed_category_code.is_(None), basis.confirmed_category_code != TARGET_CATEGORY),
                     ~basis.reviewed)
    bands = {
        "flag_high": and_(basis.flagged, basis.score >= middle),
        "flag_low": and_(basis.flagged, basis.score < middle),
        "unflagged": ~basis.flagged,
        "unscored": basis.flagged.is_(None),
    }
    population_row = select(number(basis.confirmed_category_code == TARGET_CATEGORY).label("confirmed"),
                            *[number(and_(undecided, c)).label(name) for name, c in bands.items()]).where(
        *stats_queries.Days(f.reported_from, f.reported_to).clauses(basis.reported_on))
    report_clauses = queries.filter_clauses(replace(resolved, reported_from=None, reported_before=None))
    if report_clauses:  # a filter on other report columns: the summary rows of the reports it keeps
        population_row = population_row.join(Report, Report.id == basis.report_id).where(*report_clauses)
    high = and_(basis.review_flagged, basis.review_score >= middle)
    review_bands = {
        "flag_high": high,
        "flag_low": and_(basis.review_flagged, or_(basis.review_score.is_(None), basis.review_score < middle)),
        "unflagged": and_(~basis.review_flagged, basis.review_audit_sample),
    }
    positive = is_case_clause(basis.review_decision, basis.review_category_code)
    review_row = select(*[column for name, c in review_bands.items() for column in (
        number(c).label(f"{name}_reviewed"), number(and_(c, positive)).label(f"{name}_positives"))]).where(
        basis.reviewed, basis.review_model_version == version)
    counted, reviews = population_row.subquery("counted"), review_row.subquery("reviews")
    row = session.execute(select(counted, reviews).select_from(counted.join(reviews, true()))).one()._mapping
    confirmed = int(row["confirmed"])
    population = {name: int(row[name]) for name in bands}
    reviewed = {name: (int(row[f"{name}_reviewed"]), int(row[f"{name}_positives"])) for name in review_bands}

    strata = [Stratum(name, population.get(name, 0), *reviewed.get(name, (0, 0)))
              for name in ("flag_high", "flag_low", "unflagged", "unscored")]
    result = estimate(confirmed, strata)

    def small(n: int) -> bool:
        return protect_small and 0 < n < k

    hidden = small(confirmed) or any(small(s.population) for s in strata)
    return EstimateOut(
        confirmed=None if small(confirmed) else confirmed,
        estimated_unconfirmed=None if hidden else result.estimated_unconfirmed,
        estimated_total=None if hidden else result.total,
        interval_95=None if hidden else (result.low, result.high), suppressed=hidden,
        model_version=version, method=METHOD,
        strata=[StratumOut(name=s.name, unreviewed_reports=None if small(s.population) else s.population,
                           suppressed=small(s.population), reviewed=s.reviewed, confirmed_in_review=s.positives)
                for s in strata],
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


def _cells(session: Session, query: CountsQuery, confirmed: queries.ResolvedFilter,
           suggested: queries.ResolvedFilter | None, days: stats_queries.Days
           ) -> tuple[dict[tuple[str | None, ...], int], dict[tuple[str | None, ...], int] | None, int, int | None]:
    """The cells and the total of reports, confirmed and (when asked) with suggestions: one statement, months
    folded in SQL (stats_queries.monthly); quarters and years are months added up here."""
    parts = [stats_queries.monthly(query.by, confirmed, days, "confirmed"),
             stats_queries.total_row(query.by, confirmed, days, "confirmed_total")]
    if suggested is not None:
        parts += [stats_queries.monthly(query.by, suggested, days, "suggested"),
                  stats_queries.total_row(query.by, suggested, days, "suggested_total")]
    cells: dict[str, dict[tuple[str | None, ...], int]] = {"confirmed": defaultdict(int), "suggested": defaultdict(int)}
    totals: dict[str, int] = {}
    for kind, *values, n in session.execute(union_all(*parts)):
        if kind.endswith("_total"):
            totals[kind] = int(n or 0)
            continue
        key: list[str | None] = []
        position = 0
        for dimension in query.by:
            if dimension is Dimension.PERIOD:
                key.append(_period_key(int(values[position]), int(values[position + 1]), query.period))
                position += 2
            else:
                value = values[position]
                key.append(None if value is None else str(value))
                position += 1
        # Months of one quarter or year fold into one cell: add, since a report is in one month only.
        cells[kind][tuple(key)] += int(n)
    return (cells["confirmed"], cells["suggested"] if suggested is not None else None, totals["confirmed_total"],
            totals.get("suggested_total") if suggested is not None else None)


def counts(session: Session, query: CountsQuery, local: ZoneInfo, departments: frozenset[str] | None,
           protect_small: bool, k: int) -> CountsOut:
    """Counts grouped by one or two dimensions, confirmed and (if asked) with suggestions; empty periods
    are zeros; small counts are protected when `protect_small`."""
    _analytic(session)
    if session.get_bind().dialect.name == "postgresql":
        # The total counts a year of report dates (220,000 index entries): 9.5 ms alone, 19 ms when PostgreSQL
        # starts two parallel workers for it (measured on a million reports, 2 CPUs).
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    resolved = report_service.resolve_filter(load_taxonomy(session), query, local, departments)
    days = stats_queries.Days(query.reported_from, query.reported_to)
    # The same filter twice: once counting only what people said, once with the classifier's suggestions.
    confirmed_filter = replace(resolved, include_suggested=False)
    suggested_filter = replace(resolved, include_suggested=True) if resolved.include_suggested else None
    confirmed, suggested, *totals = _cells(session, query, confirmed_filter, suggested_filter, days)

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

    def shape(values: list[int]) -> list[CellOut]:
        if not protect_small:
            return [CellOut(value=v) for v in values]
        groups = [key[0] for key in ordered]
        return [CellOut(value=c.value, suppressed=c.suppressed) for c in protect(list(zip(groups, values,
                                                                                           strict=True)), k)]

    confirmed_cells = shape([confirmed.get(key, 0) for key in ordered])
    suggested_cells = shape([suggested.get(key, 0) for key in ordered]) if suggested is not None else None
    rows = [CountRow(key={d.value: v for d, v in zip(query.by, key, strict=True)}, confirmed=confirmed_cells[i],
                     with_suggestions=suggested_cells[i] if suggested_cells else None)
            for i, key in enumerate(ordered)]

    def total_cell(n: int | None) -> CellOut | None:
        if n is None:
            return None
        hidden = protect_small and 0 < n < k
        return CellOut(value=None if hidden else n, suppressed=hidden)

    total_row = CountRow(key={}, confirmed=total_cell(totals[0]) or CellOut(value=0),
                         with_suggestions=total_cell(totals[1]))
    return CountsOut(by=query.by, period=query.period, rows=rows, total=total_row,
                     suppression=f"counts 1–{k - 1} hidden, with a second cell where one alone would be revealed "
                                 "by its group" if protect_small else None)


def _range(session: Session, f: queries.ResolvedFilter, days: stats_queries.Days) -> tuple[date | None, date | None]:
    """The period asked for; an open side is the first or last reporting date under the filter."""
    if days.first is not None and days.last is not None:
        return days.first, days.last
    first, last = session.execute(stats_queries.reported_range(f, days)).one()
    return days.first or first, days.last or last


def _period_counts(session: Session, filters: dict[str, queries.ResolvedFilter], days: stats_queries.Days,
                   period: Period) -> dict[str, dict[str, int]]:
    """Reports per period under each named filter, in one statement (months folded in SQL)."""
    result: dict[str, dict[str, int]] = {name: defaultdict(int) for name in filters}
    statement = union_all(*[stats_queries.monthly([Dimension.PERIOD], f, days, name) for name, f in filters.items()])
    for name, year, month, n in session.execute(statement):
        result[name][_period_key(int(year), int(month), period)] += int(n)
    return result


def trend(session: Session, query: TrendQuery, local: ZoneInfo, departments: frozenset[str] | None,
          protect_small: bool = False, k: int = 5) -> TrendOut:
    """Per period: the count, its share of all reports, and the change from the previous period and from
    the same period a year before (which is why the counts reach a year further back)."""
    _analytic(session)
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
        taxonomy, everything, local, departments)}, wide, query.period)
    counted, totals = both["count"], both["all"]
    series = _periods(earlier, last, query.period)
    shown = set(_periods(first, last, query.period))
    steps_per_year = {Period.MONTH: 12, Period.QUARTER: 4, Period.YEAR: 1}[query.period]
    points = []
    for index, key in enumerate(series):
        if key not in shown:
            continue
        n, base = counted.get(key, 0), totals.get(key, 0)
        previous = counted.get(series[index - 1], 0) if index >= 1 else None
        year_before = counted.get(series[index - steps_per_year], 0) if index >= steps_per_year else None
        if protect_small and any(0 < m < k for m in (n, previous or 0, year_before or 0)):
            # A small count, or a change that would reveal one, is not shown to this role.
            points.append(TrendPoint(period=key, count=None if 0 < n < k else n, suppressed=True, all_reports=base,
                                     share=None, change_from_previous=None, change_from_last_year=None))
            continue
        points.append(TrendPoint(period=key, count=n, all_reports=base, share=round(n / base, 4) if base else None,
                                 change_from_previous=None if previous is None else n - previous,
                                 change_from_last_year=None if year_before is None else n - year_before))
    return TrendOut(period=query.period, include_suggested=resolved.include_suggested, points=points)


def matrix(session: Session, query: MatrixQuery, local: ZoneInfo, departments: frozenset[str] | None,
           protect_small: bool = False, k: int = 5) -> MatrixOut:
    """Pairs of services (and of their agencies) named together on the reports under the filter."""
    _analytic(session)
    chosen = query if query.category else query.model_copy(update={"category": TARGET_CATEGORY})
    resolved = report_service.resolve_filter(load_taxonomy(session), chosen, local, departments)
    service_pairs: Counter[tuple[str, str, bool]] = Counter()
    agency_pairs: Counter[tuple[str, str, bool]] = Counter()
    reports = 0
    # One statement computes the pairs and the reporting side (stats_queries.matrix); unordered pairs come in
    # the database's collation and are put in Python's order here.
    for kind, a, b, directed, n in session.execute(
            stats_queries.matrix(resolved, stats_queries.Days(query.reported_from, query.reported_to))):
        if kind == "reports":
            reports = int(n)
            continue
        pair = (a, b, True) if directed else (*sorted((a, b)), False)
        (service_pairs if kind == "service" else agency_pairs)[pair] += int(n)
    hidden = 0

    def ranked(counter: Counter[tuple[str, str, bool]]) -> list[PairCount]:
        nonlocal hidden
        shown = [(pair, n) for pair, n in counter.items() if not (protect_small and n < k)]
        hidden += len(counter) - len(shown)
        return [PairCount(a=a, b=b, directed=d, count=n) for (a, b, d), n in sorted(shown, key=lambda i: (-i[1], i[0]))]

    return MatrixOut(reports=reports if not (protect_small and 0 < reports < k) else 0,
                     service_pairs=ranked(service_pairs), agency_pairs=ranked(agency_pairs), hidden_pairs=hidden)


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
