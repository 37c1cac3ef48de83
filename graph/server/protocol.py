"""uvicorn's HTTP protocol with a deadline for a request's headers.

uvicorn times out idle keep-alive connections but not one that is sending its headers a byte
at a time (slowloris): such a connection is held open for as long as the client likes. Here a
connection that has not finished a request's headers ``HEADER_TIMEOUT_SECONDS`` after it
opened (or, on a kept-alive connection, after the next request's first byte) is closed. Nothing at the ASGI level can do this:
the application sees a request only once its headers are complete.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request headers are late."""

    #: read from the settings once per process (uvicorn workers import this module afresh)
    timeout: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # a new request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(_timeout(), self._headers_too_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def _timeout() -> float:
    if HeaderTimeoutProtocol.timeout is None:
        from graph.server.settings import Settings

        HeaderTimeoutProtocol.timeout = Settings().header_timeout_seconds
    return HeaderTimeoutProtocol.timeout
