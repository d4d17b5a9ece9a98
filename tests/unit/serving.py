"""A socketserver served from a thread for the length of a test, and stopped within a bounded time.

socketserver's serve_forever() and shutdown() have no time limit: once, shutdown() waited for ever after its server
had answered (a unit test held its CI run until the run's limit). Here the thread handles one request at a time with
a short timeout and checks a stop flag between them; the stop waits at most STOP_WAIT seconds, and a thread still
running then is left behind (a daemon) with a warning that shows its stack."""

from __future__ import annotations

import socketserver
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

POLL = 0.02
STOP_WAIT = 10


class Served:
    """start() and stop() for a server that outlives one block (a fixture object, a fake forge)."""

    def __init__(self, server: socketserver.BaseServer):
        self.server, self._stop = server, threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"serving {server.server_address}", daemon=True)

    def _loop(self) -> None:
        self.server.timeout = POLL
        while not self._stop.is_set():
            self.server.handle_request()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_WAIT)
        self.server.server_close()
        if self._thread.is_alive():
            stack = "".join(traceback.format_stack(sys._current_frames().get(self._thread.ident)))
            warnings.warn(
                f"the test server on {self.server.server_address} did not stop in {STOP_WAIT} s:\n{stack}",
                RuntimeWarning,
                stacklevel=2,
            )


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[socketserver.BaseServer]:
    """The server answering in a thread inside the block, closed after it."""
    served = Served(server)
    served.start()
    try:
        yield server
    finally:
        served.stop()
