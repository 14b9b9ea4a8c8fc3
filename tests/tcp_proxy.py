"""A TCP proxy for fault tests: forwards to a real server until the test cuts it, then fails like a network.

The app is pointed at the proxy's port instead of the database's. `cut()` closes every live connection
(the app sees the server go away mid-conversation) and then either resets new connections at once
(`refuse`: a server that is down) or accepts them and never answers (`blackhole`: a network that drops
packets, where only the client's own timeouts end the wait). `cut("blackhole", keep_open=True)` leaves the
live connections open and silently drops what either side sends on them: a peer that vanished behind
something that still keeps TCP alive, so only the client's own deadlines end the wait (on loopback the
kernel acknowledges everything, so TCP keepalives cannot notice). `restore()` forwards again. `cut_after(n)`
arms a cut that fires inside the proxy once n more bytes have gone from the client to the server, so a
test can cut in the middle of a transaction without racing it.

Threads, not asyncio: the proxy must keep running while the test thread blocks in a request.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal, Self

CutMode = Literal["refuse", "blackhole"]

_CHUNK = 65536


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target address; cut and restore on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._mode: CutMode | None = None  # None: forwarding
        self._frozen = False  # live connections stay open but forward nothing
        self._live: set[socket.socket] = set()  # both ends of every forwarded connection
        self._held: list[socket.socket] = []  # black-holed connections, closed on restore
        self._armed_at: int | None = None
        self._armed_mode: CutMode = "refuse"
        self.bytes_to_server = 0
        self.accepted = 0
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def is_cut(self) -> bool:
        """Whether the proxy is failing connections now."""
        with self._lock:
            return self._mode is not None

    def cut(self, mode: CutMode = "refuse", keep_open: bool = False) -> None:
        """Close every live connection (or, with keep_open, silence it), then refuse (reset) or black-hole
        new ones until restore()."""
        with self._lock:
            if keep_open:
                self._mode, self._frozen, self._armed_at = mode, True, None
            else:
                self._cut_locked(mode)

    def cut_after(self, nbytes: int, mode: CutMode = "refuse") -> None:
        """Cut once `nbytes` more bytes have been forwarded from client to server."""
        with self._lock:
            self._armed_at = self.bytes_to_server + nbytes
            self._armed_mode = mode

    def restore(self) -> None:
        """Forward new connections again (connections closed by the cut stay closed)."""
        with self._lock:
            if self._frozen:
                self._cut_locked("refuse")  # silenced connections are mid-conversation: end them
            self._mode, self._frozen = None, False
            self._armed_at = None
            held, self._held = self._held, []
        for sock in held:
            _close(sock)

    def stop(self) -> None:
        """Stop accepting and close everything."""
        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets = [*self._live, *self._held]
            self._live.clear()
            self._held.clear()
        for sock in sockets:
            _close(sock)

    def live_connections(self) -> int:
        """How many client connections are being forwarded now."""
        with self._lock:
            return len(self._live) // 2

    def _cut_locked(self, mode: CutMode) -> None:
        self._mode = mode
        self._armed_at = None
        live, self._live = self._live, set()
        for sock in live:
            _close(sock)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setblocking(True)
            self.accepted += 1
            with self._lock:
                mode = self._mode
                if mode == "blackhole":
                    # Accept and say nothing: the client's connect timeout is all that ends its wait.
                    self._held.append(client)
                    continue
            if mode == "refuse":
                _reset(client)
                continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(client)
            return
        server.settimeout(None)
        with self._lock:
            if self._mode is not None:  # cut while we were connecting
                _reset(client)
                _close(server)
                return
            self._live.update((client, server))
        threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, to_server: bool) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                if to_server and self._count(len(data)):
                    # The armed cut fires before this chunk is forwarded: the server never sees it.
                    return
                if self._frozen:
                    continue  # read and dropped: the sender's kernel sees it delivered
                sink.sendall(data)
        except OSError:
            pass  # a cut or the other side closed the connection: both ends are closed below
        finally:
            with self._lock:
                self._live.discard(source)
                self._live.discard(sink)
            _close(source)
            _close(sink)

    def _count(self, nbytes: int) -> bool:
        """Add forwarded bytes; True when that fired an armed cut."""
        with self._lock:
            self.bytes_to_server += nbytes
            if self._armed_at is not None and self.bytes_to_server >= self._armed_at:
                self._cut_locked(self._armed_mode)
                return True
            return False


def _close(sock: socket.socket) -> None:
    # shutdown() first: it wakes a thread blocked in recv() on this socket, close() alone may not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a host with nothing listening would answer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
