"""A TCP proxy between batchgate and the real PostgreSQL server that a test can cut.

Cut, it closes every connection through it and refuses new ones, as a database host that went
away would; restored, it accepts again on the same port. The server itself, shared with other
test sessions, is never touched.
"""

import contextlib
import socket
import threading
from urllib.parse import urlsplit

from conftest import free_port

ACCEPT_CHECK_SECONDS = 0.05


class CuttableProxy:
    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 5432)
        self.port = free_port()
        self.url = target._replace(
            netloc=f"{target.netloc.rsplit('@', 1)[0]}@127.0.0.1:{self.port}"
        ).geturl()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Accepts connections again."""
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(ACCEPT_CHECK_SECONDS)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drops every connection at once and refuses new ones until `restore`."""
        assert self._listener is not None
        self._listener.close()
        self._listener = None
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for connection in doomed:
            _close(connection)

    def close(self) -> None:
        if self._listener is not None:
            self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while listener.fileno() != -1:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if listener is not self._listener:
                    # Cut while this one was being set up.
                    _close(client)
                    _close(upstream)
                    continue
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()
