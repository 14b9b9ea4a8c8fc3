"""Check corpus files: valid JSON lines, known codes, consistent labels, unique ids.

Usage: python classifier/corpus/validate.py classifier/corpus/*.jsonl
The rules live in classifier/records.py (check_record), where training uses them too.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script from anywhere, installed or not: the repository root holds the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from classifier.records import check_record, validate_files

__all__ = ["check_record", "main"]


def main(paths: list[str]) -> int:
    """Validate files and print label counts; exit 1 on any problem."""
    return validate_files(paths)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
