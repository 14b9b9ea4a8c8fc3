"""A real `avvik serve` process: idle and slow connections are closed, many of them do not kill it.

Connections are raw sockets, as an attacker would open them; the server is a subprocess with short
timeouts and a small connection limit so that the test takes seconds and few descriptors.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.server import FloodFilter
from tests.conftest import DatabaseFactory
from tests.live_server import live_server

HEAD_TIMEOUT_S, KEEP_ALIVE_S, MAX_CONNECTIONS = 1.0, 1, 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """(base URL, server pid, log path) of a server on a SQLite database of its own."""
    tmp = tmp_path_factory.mktemp("server")
    url = DatabaseFactory("sqlite", tmp).new()
    env = {"AVVIK_DATABASE_URL": url, "AVVIK_HTTP_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_S),
           "AVVIK_HTTP_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_S), "AVVIK_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
           "AVVIK_BOOTSTRAP_API_KEY": "avk_server-test-" + "k" * 40}
    log = tmp / "server.log"
    with live_server(env, log=log) as base:
        yield base, _listening_pid(int(base.rsplit(":", 1)[1])), log


def _listening_pid(port: int) -> int:
    """The process that listens on a port (the `avvik serve` process itself with one worker)."""
    inode = next(line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise AssertionError("no process listens on the port")


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_after(sock: socket.socket, *, trickle: bytes = b"") -> float:
    """Seconds until the server closes the connection (sending `trickle` a byte at a time meanwhile)."""
    start = time.monotonic()
    sock.settimeout(0.2)
    pending = list(trickle)
    while time.monotonic() - start < 10:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        if pending:
            try:
                sock.send(bytes([pending.pop(0)]))
            except OSError:
                return time.monotonic() - start
    raise AssertionError("the server kept the connection open for 10 s")


def test_a_connection_that_never_sends_a_request_is_closed(server: tuple[str, int, Path]) -> None:
    with _connect(server[0]) as sock:
        assert _closed_after(sock) < HEAD_TIMEOUT_S + 1.5


def test_a_request_head_sent_a_byte_at_a_time_is_cut_off(server: tuple[str, int, Path]) -> None:
    # Slowloris: every byte arrives well within any per-read timeout, the whole head never does.
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    with _connect(server[0]) as sock:
        assert _closed_after(sock, trickle=head) < HEAD_TIMEOUT_S + 1.5


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(server: tuple[str, int, Path]) -> None:
    with _connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in sock.recv(4096)
        assert _closed_after(sock) < KEEP_ALIVE_S + 1.5


def test_many_idle_connections_neither_exhaust_descriptors_nor_stop_the_server(server: tuple[str, int, Path]) -> None:
    base, pid, _ = server
    before = len(os.listdir(f"/proc/{pid}/fd"))
    idle = [_connect(base) for _ in range(MAX_CONNECTIONS * 4)]
    try:
        time.sleep(0.5)
        held = len(os.listdir(f"/proc/{pid}/fd")) - before
        # Connections beyond the limit are closed at once: the process holds at most the limit.
        assert held <= MAX_CONNECTIONS + 2, held
        # The idle ones are closed within the head timeout, so a real client gets in soon after.
        deadline, answer = time.monotonic() + HEAD_TIMEOUT_S + 3, None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
    finally:
        for sock in idle:
            sock.close()
    assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200


def test_an_overload_message_passes_once_per_interval_with_a_count() -> None:
    flood = FloodFilter(interval=60)
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                 None, None) for _ in range(1000)]
    passed = [r for r in records if flood.filter(r)]
    assert len(passed) == 1
    ordinary = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", None, None)
    assert flood.filter(ordinary)
    flood.interval = 0
    later = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                              None, None)
    assert flood.filter(later)
    assert "999 more like this" in later.getMessage()
