"""Without Chromium the browser tests skip with one line saying how to enable them; in CI they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def run_browser_tests(**env: str) -> subprocess.CompletedProcess[str]:
    """One browser test in a child pytest, on SQLite only, with Chromium 'missing'."""
    environment = {k: v for k, v in os.environ.items() if k not in ("AVVIK_TEST_DATABASE_URL",
                                                                     "AVVIK_REQUIRE_BROWSER")}
    environment.update(AVVIK_CHROMIUM="/nonexistent/chromium", **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/web/test_browser.py", "-k", "free_text_search"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_browser_tests_skip_with_one_line_without_chromium() -> None:
    result = run_browser_tests()
    assert result.returncode == 0, result.stdout
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "apt-get install -y chromium" in skipped[0], result.stdout


def test_browser_tests_fail_without_chromium_when_required() -> None:
    result = run_browser_tests(AVVIK_REQUIRE_BROWSER="1")
    assert result.returncode == 1, result.stdout
    assert "browser tests need Chromium" in result.stdout
