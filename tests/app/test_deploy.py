"""The Dockerfile's steps without Docker: install, `avvik migrate`, `avvik serve`, then /readyz."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import DatabaseFactory

AVVIK = Path(sys.executable).parent / "avvik"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrate_then_serve_becomes_ready(databases: DatabaseFactory, tmp_path: Path) -> None:
    key = "avk_deploy-test-" + "k" * 40
    env = {**os.environ, "AVVIK_DATABASE_URL": databases.new(), "AVVIK_PORT": str(free_port()),
           "AVVIK_BOOTSTRAP_API_KEY": key}
    migrated = subprocess.run([AVVIK, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    server = subprocess.Popen([AVVIK, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{env['AVVIK_PORT']}"
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"{url}/readyz", timeout=2).status_code
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert status == 200
        unauthenticated = httpx.get(f"{url}/api/v1/taxonomy", timeout=5)
        assert unauthenticated.status_code == 401
        # The real server names neither itself nor its version, and sends the security headers.
        for answer in (unauthenticated, httpx.get(f"{url}/healthz", timeout=5)):
            assert "server" not in answer.headers
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
        taxonomy = httpx.get(f"{url}/api/v1/taxonomy", headers={"X-API-Key": key}, timeout=5).json()
        assert any(c["code"] == "kommunikasjon_og_samhandling" for c in taxonomy["categories"])
    finally:
        server.terminate()
        server.wait(timeout=15)
