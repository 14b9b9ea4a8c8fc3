"""Check corpus files: valid JSON lines, known codes, consistent labels, unique ids.

Usage: python classifier/corpus/validate.py classifier/corpus/*.jsonl
       python classifier/corpus/validate.py --min-reports 400 --min-sources 40 classifier/corpus/real_derived/*.jsonl
The rules live in classifier/records.py (check_record, check_provenance), where training uses them too.
Files in real_derived/ must also carry their provenance and hold the track's shares of nynorsk and positives.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run as a script from anywhere, installed or not: the repository root holds the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from classifier.records import check_provenance, check_record, validate_files

__all__ = ["check_provenance", "check_record", "main"]


def main(argv: list[str]) -> int:
    """Validate files and print label counts; exit 1 on any problem."""
    parser = argparse.ArgumentParser(description="Validate corpus JSONL files.")
    parser.add_argument("paths", nargs="+", help="corpus JSONL files")
    parser.add_argument("--min-reports", type=int, default=0, help="fewest reports the real-derived track may hold")
    parser.add_argument("--min-sources", type=int, default=0, help="fewest distinct sources of the real-derived track")
    args = parser.parse_args(argv)
    return validate_files(args.paths, min_reports=args.min_reports, min_sources=args.min_sources)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
