"""A TCP proxy on 127.0.0.1 that can cut a link and heal it: partitions without mocking either side.

    with TcpProxy(upstream_port) as proxy:      # point a client at proxy.port
        proxy.partition()                        # open connections stall, new ones are held unanswered
        proxy.heal()                             # everything flows again

A partition does not close sockets: like a dead network path, bytes simply stop moving, so the client learns of
it only from its own timeouts (as asyncpg's test suite does with its fuzzing proxy).
"""

from __future__ import annotations

import selectors
import socket
import threading

HOST = "127.0.0.1"


class TcpProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:upstream_port in one background thread."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server((HOST, 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._held: list[socket.socket] = []  # accepted during a partition, connected upstream on heal
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"tcp-proxy-{self.port}", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def partition(self) -> None:
        """Stop moving bytes either way, on open connections and new ones alike."""
        self._cut.set()

    def heal(self) -> None:
        """Move bytes again; connections held during the partition reach the upstream now."""
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for sock in [self._listener, *self._pairs, *self._held]:
                sock.close()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((HOST, self.upstream_port), timeout=2)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
        self._pairs[client], self._pairs[upstream] = upstream, client

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._cut.is_set() and self._held:
                    for client in self._held:
                        self._connect(client)
                    self._held.clear()
                sel = selectors.DefaultSelector()
                sel.register(self._listener, selectors.EVENT_READ)
                if not self._cut.is_set():
                    for sock in self._pairs:
                        sel.register(sock, selectors.EVENT_READ)
            for key, _ in sel.select(timeout=0.05):
                sock = key.fileobj
                with self._lock:
                    if sock is self._listener:
                        try:
                            client, _ = self._listener.accept()
                        except BlockingIOError:
                            continue
                        if self._cut.is_set():
                            self._held.append(client)
                        else:
                            self._connect(client)
                        continue
                    if self._cut.is_set() or sock not in self._pairs:
                        continue
                    peer = self._pairs[sock]
                    try:
                        data = sock.recv(65536)
                        if data:
                            peer.setblocking(True)
                            peer.sendall(data)
                            peer.setblocking(False)
                            continue
                    except OSError:
                        pass
                    for s in (sock, peer):  # one side closed or failed: close the pair
                        self._pairs.pop(s, None)
                        s.close()
            sel.close()
