"""What the latency benchmarks (bench/stats.py, bench/web.py) share: percentiles, the verdict on an aim, the
aligned lines of their tables, and the options and JSON file of a run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def verdict(met: bool) -> str:
    """How an aim is printed."""
    return "met" if met else "MISSED"


@dataclass(frozen=True)
class Column:
    """A column of a printed table: text (no format) is left-aligned, numbers right-aligned in `spec`."""

    title: str
    width: int
    spec: str = ""


def header(columns: Sequence[Column], aims: str) -> str:
    """The heading line of a table, its aims last."""
    cells = [f"{c.title:<{c.width}}" if not c.spec else f"{c.title:>{c.width}}" for c in columns]
    return " ".join(cells) + f"  {aims}"


def line(columns: Sequence[Column], values: Sequence[Any], met: Sequence[bool]) -> str:
    """One printed line: its values in their columns, then the verdict on each aim."""
    cells = [f"{v:<{c.width}}" if not c.spec else f"{v:>{c.width}{c.spec}}" for c, v in zip(columns, values,
                                                                                             strict=True)]
    return " ".join(cells) + "  " + " / ".join(verdict(m) for m in met)


def add_run_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--repeat, --warmup, --only and --json, as every latency benchmark takes them."""
    parser.add_argument("--repeat", type=int, default=40, help=f"measured requests per {what}")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", nargs="*", help=f"measure only {what}s whose name contains one of these words")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def check_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a run that could not give a percentile."""
    if args.repeat < 2 or args.warmup < 0:
        parser.error("--repeat must be at least 2 and --warmup not negative")


def write_json(target: Path | None, figures: dict[str, Any]) -> None:
    """Write a run's figures, when asked to."""
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
