"""The HTTP protocol `shelfcast serve` runs: uvicorn's, with a deadline for reading each request.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but
every byte received resets that timer: a client sending its headers or body
a byte a second holds the connection (and what it costs) for as long as it
likes. Here a request must arrive whole within `serve.read_timeout_seconds`
of the connection (or of the previous response on it); past that the
connection is closed. The app's own time (scoring) does not count.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from shelfcast.settings import get_settings

log = logging.getLogger(__name__)


class _ReadDeadline:
    """A timer armed when a request is awaited, disarmed once it is read whole (headers and body)."""

    # The uvicorn protocol's attributes this relies on (both of its HTTP implementations have them).
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    client: tuple[str, int] | None
    _timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._read: Any = None  # the cycle already read when the timer was armed

    @classmethod
    def timeout(cls) -> float:
        if cls._timeout is None:
            cls._timeout = get_settings().serve.read_timeout_seconds
        return cls._timeout

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm(read=None)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._check()

    def on_response_complete(self) -> None:
        done = self.cycle
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm(read=done)
            self._check()  # a pipelined request may already be read

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, *, read: Any) -> None:
        self._disarm()
        self._read = read
        self._timer = self.loop.call_later(self.timeout(), self._too_slow)

    def _check(self) -> None:
        cycle = self.cycle
        if self._timer is not None and cycle is not None and cycle is not self._read and not cycle.more_body:
            self._disarm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            who = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.info(
                "closed the connection of %s: its request did not arrive within %g s "
                "(setting serve.read_timeout_seconds)",
                who,
                self.timeout(),
            )
            self.transport.close()


class H11ReadDeadline(_ReadDeadline, H11Protocol):
    """uvicorn's h11 protocol with the read deadline."""


ReadDeadlineProtocol: type[asyncio.Protocol]
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsReadDeadline(_ReadDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol (its default when httptools is installed) with the read deadline."""

    ReadDeadlineProtocol = HttpToolsReadDeadline
except ImportError:  # pragma: no cover - httptools is optional for uvicorn
    ReadDeadlineProtocol = H11ReadDeadline
