"""A real `avvik serve` process on a database, for tests that need true parallelism or real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

AVVIK = Path(sys.executable).parent / "avvik"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(env: dict[str, str], *args: str, log: Path | None = None) -> Iterator[str]:
    """Migrate, then serve with these AVVIK_* variables until the block ends; yields the base URL."""
    env = {**os.environ, "AVVIK_PORT": str(free_port()), **env}
    migrated = subprocess.run([AVVIK, "migrate"], env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert migrated.returncode == 0, migrated.stderr
    output = log.open("w") if log else subprocess.DEVNULL
    server = subprocess.Popen([AVVIK, "serve", *args], env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['AVVIK_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server exited"
            time.sleep(0.2)
        else:
            raise AssertionError("the server did not become ready")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        if log:
            output.close()  # type: ignore[union-attr]
