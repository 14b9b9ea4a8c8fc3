"""The import rules of ARCHITECTURE.md hold: `lint-imports` keeps every contract in .importlinter (the layers of
app, routers mounted only by app.main, only the CLI reaching the default model's builder, and a classifier
that never imports the service, FastAPI or SQLAlchemy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
