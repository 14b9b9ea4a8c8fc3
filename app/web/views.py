"""Pure shaping for the pages: nynorsk detection, explanation marks, plain-words estimate, SVG chart geometry."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

# Frequent nynorsk forms that bokmål does not use; enough to tell the written standard of a report, so that
# its text can carry lang="nn" (screen readers then pronounce it right).
NYNORSK_MARKERS = frozenset({
    "ikkje", "eg", "ein", "eit", "frå", "kva", "kven", "korleis", "kvifor", "berre", "òg", "mykje", "noko",
    "nokon", "nokre", "sjølv", "heile", "hjå", "vart", "fekk", "gjekk", "vere", "dei", "skulen", "skule",
    "elevane", "elevar", "lærar", "læraren", "saman", "sidan", "difor", "framleis", "enno", "tenesta",
    "teneste", "tenester", "ho", "veke", "heime", "føresette", "foreldra", "kome", "kjem", "seier", "meldinga",
    "ringde", "fortalde", "treng", "utan", "inga", "ansvarleg", "vanskeleg", "tidlegare", "sjukehus",
})
BOKMAL_MARKERS = frozenset({
    "ikke", "jeg", "en", "et", "fra", "hva", "hvem", "hvordan", "hvorfor", "bare", "også", "mye", "noe",
    "noen", "selv", "hele", "hos", "ble", "fikk", "gikk", "være", "de", "skolen", "skole", "lærer", "læreren",
    "sammen", "siden", "derfor", "fortsatt", "tjenesten", "tjeneste", "tjenester", "hun", "uke", "hjemme",
    "foresatte", "foreldrene", "kommer", "sier", "meldingen", "ringte", "fortalte", "trenger", "uten",
    "ansvarlig", "vanskelig", "tidligere", "sykehus",
})
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Okabe & Ito (2008): eight colours told apart with every common form of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
# A one-hue sequential scale (light to dark blue) for the heatmap; its cells also print their number.
HEAT = ["#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"]


def language(text: str) -> str:
    """'nn' when a text has more nynorsk than bokmål marker words, else 'nb'."""
    words = [w.lower() for w in _WORD.findall(text)]
    nn = sum(w in NYNORSK_MARKERS for w in words)
    nb = sum(w in BOKMAL_MARKERS for w in words)
    return "nn" if nn > nb else "nb"


@dataclass(frozen=True)
class Segment:
    """A piece of report text; `sign` is "up" or "down" when the classifier counted it for or against."""

    text: str
    sign: str | None = None


def mark_terms(text: str, explanation: list[Any]) -> list[Segment]:
    """Split a text so that every occurrence of an explanation term (a word or a word pair, matched whole
    and case-insensitively) is its own segment, signed by the direction it pushed the score."""
    terms = {e.term.lower(): ("up" if e.weight > 0 else "down") for e in explanation
             if e.term and _WORD.search(e.term) and not e.term.startswith(("[", "<"))}
    if not terms or not text:
        return [Segment(text)]
    alternatives = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in sorted(terms, key=len, reverse=True))
    pattern = re.compile(rf"(?<![^\W_])({alternatives})(?![^\W_])", re.IGNORECASE)
    segments: list[Segment] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            segments.append(Segment(text[position:match.start()]))
        key = re.sub(r"\s+", " ", match.group(0).lower())
        segments.append(Segment(match.group(0), terms.get(key)))
        position = match.end()
    if position < len(text):
        segments.append(Segment(text[position:]))
    return segments


def estimate_words(estimate: Any) -> str | None:
    """The estimate in plain words: "mellom 48 og 71 saker, trolig 58"; None when it is hidden."""
    if estimate.interval_95 is None or estimate.estimated_total is None:
        return None
    low, high = estimate.interval_95
    return f"mellom {low} og {high} saker, trolig {round(estimate.estimated_total)}"


def axis(value: float) -> tuple[int, int]:
    """A whole-number axis from 0 to at least value: (top, step), the step 1, 2 or 5 × 10^n, about four steps."""
    if value <= 4:
        return 4, 1
    rough = value / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(int(m * power) for m in (1, 2, 5, 10) if m * power >= rough)
    return step * math.ceil(value / step), step


@dataclass(frozen=True)
class Bar:
    """One rectangle of a chart and what it stands for."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True)
class Chart:
    """A chart's geometry: bars or a line, axis ticks, and the legend."""

    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    legend: list[tuple[str, str]]
    points: str = ""
    dots: list[tuple[float, float, str]] | None = None


LEFT, BOTTOM, TOP, WIDTH, HEIGHT = 44, 40, 10, 720, 260


def stacked_bars(periods: list[str], series: list[tuple[str, list[int]]]) -> Chart:
    """Stacked bars per period, one colour per series (at most eight)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(periods))]
    top, tick = axis(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(periods), 1)
    bars: list[Bar] = []
    for i, period in enumerate(periods):
        base = 0
        for j, (name, values) in enumerate(series):
            n = values[i]
            if n:
                h = plot_h * n / top
                y = TOP + plot_h - plot_h * (base + n) / top
                bars.append(Bar(LEFT + i * step + step * 0.15, y, step * 0.7, h, PALETTE[j % len(PALETTE)],
                                f"{period}, {name}: {n}"))
                base += n
    return Chart(WIDTH, HEIGHT, bars, _ticks(top, tick, plot_h), _x_labels(periods, step),
                 [(PALETTE[j % len(PALETTE)], name) for j, (name, _) in enumerate(series)])


def line(periods: list[str], values: list[int | None], name: str) -> Chart:
    """A line through the values of each period; missing (hidden) values break nothing, they are skipped."""
    top, tick = axis(max((v for v in values if v is not None), default=0))
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(periods), 1)
    dots = [(LEFT + i * step + step / 2, TOP + plot_h - plot_h * v / top, f"{p}: {v}")
            for i, (p, v) in enumerate(zip(periods, values, strict=True)) if v is not None]
    return Chart(WIDTH, HEIGHT, [], _ticks(top, tick, plot_h), _x_labels(periods, step), [(PALETTE[0], name)],
                 points=" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in dots), dots=dots)


def _ticks(top: int, step: int, plot_h: float) -> list[tuple[float, str]]:
    return [(TOP + plot_h - plot_h * n / top, str(n)) for n in range(0, top + 1, step)]


def _x_labels(periods: list[str], step: float) -> list[tuple[float, str]]:
    every = max(1, math.ceil(len(periods) / 12))  # at most twelve labels, so they never overlap
    return [(LEFT + i * step + step / 2, p) for i, p in enumerate(periods) if i % every == 0]


@dataclass(frozen=True)
class HeatCell:
    """One cell of the heatmap: position, count, colour and the text colour that contrasts with it."""

    x: int
    y: int
    count: int
    fill: str
    ink: str
    label: str


def heatmap(names: list[str], counts: dict[tuple[str, str], int], words: dict[str, str] | None = None,
            cell: int = 34) -> tuple[list[HeatCell], int]:
    """Cells of a symmetric service × service matrix, darker for more reports; and the side length."""
    # A pair counts the same whichever service is named first (the reporting side is in the table).
    both = {(a, b): counts.get((a, b), 0) + (counts.get((b, a), 0) if a != b else 0) for a in names for b in names}
    top = max(both.values(), default=0)
    cells: list[HeatCell] = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            n = both[(a, b)]
            level = 0 if n == 0 or top == 0 else min(len(HEAT) - 1, 1 + int((len(HEAT) - 2) * n / top))
            cells.append(HeatCell(j * cell, i * cell, n, HEAT[level], "#ffffff" if level >= 4 else "#000000",
                                  f"{(words or {}).get(a, a)} og {(words or {}).get(b, b)}: {n}"))
    return cells, len(names) * cell
