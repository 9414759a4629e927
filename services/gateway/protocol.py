"""The gateway's HTTP/1.1 connections: a deadline for request headers and a cap on the
connections one client address may hold.

uvicorn (which BentoML runs) has neither: it bounds only the idle time between requests
(`timeout_keep_alive`), so a client that sends its headers a byte at a time, or sends nothing,
holds a connection for as long as it likes, and one address may open any number. BentoML
builds uvicorn's Config itself and takes no protocol class, so the service registers a guarded
subclass of uvicorn's own protocol as uvicorn's "auto" HTTP implementation before the worker
loads its Config (`install_http_protocol`): the httptools one when httptools is installed (it
is a runtime dependency: its C parser serves about twice the requests per core that h11 does),
else the h11 one. Both answers are written raw, because no request exists yet: the error
envelope with X-Request-ID and `Connection: close`.

Body read time is bounded per request by the gateway middleware (408), and the time to a
response by its request timeout (504), both in the envelope.
"""

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

import uvicorn.config
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.http.context import new_request_id
from services.http.envelope import error_document
from services.observability.metrics import ERRORS
from services.settings import server_settings

logger = logging.getLogger("services.gateway")
REASONS = {408: "Request Timeout", 429: "Too Many Requests"}


if TYPE_CHECKING:  # the guard is mixed into both of uvicorn's protocols, which share this face
    _Protocol = H11Protocol
else:
    _Protocol = object

# This worker process's connections per client address, whichever protocol serves them.
OPEN_PER_CLIENT: Counter[str] = Counter()


class HeaderGuard(_Protocol):
    """A header deadline and a per-client connection cap, over either uvicorn protocol.

    Both keep `cycle` (the request being read or served) and `client`, call `data_received`
    with the bytes read and `on_response_complete` when a response is written; the guard only
    hooks those.
    """

    open_per_client: ClassVar[Counter[str]] = OPEN_PER_CLIENT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = server_settings()
        self.header_timeout_s = settings.header_timeout_s
        self.max_per_client = settings.max_connections_per_client
        self._header_timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None  # None on a Unix socket
        if address is not None and self.max_per_client:
            if self.open_per_client[address] >= self.max_per_client:
                self._refuse(
                    429,
                    "too_many_connections",
                    f"More than {self.max_per_client} open connections from one client.",
                    extra=[(b"retry-after", b"1")],
                )
                return
            self.open_per_client[address] += 1
            self._counted = address
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            self.open_per_client[self._counted] -= 1
            if self.open_per_client[self._counted] <= 0:
                del self.open_per_client[self._counted]
            self._counted = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # No request read and unanswered (h11 starts a buffered one, httptools has already
        # parsed a pipelined one): the next request's headers have the same deadline.
        waiting = self.cycle is not None and self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its own limits apply
        self._refuse(
            408,
            "request_timeout",
            f"The request headers did not arrive within {self.header_timeout_s:g} s.",
        )

    def _refuse(
        self, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        body = error_document(code, message)
        request_id = new_request_id()
        head = [
            f"HTTP/1.1 {status} {REASONS[status]}".encode(),
            b"content-type: application/json",
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
            b"x-request-id: " + request_id.encode(),
            *(name + b": " + value for name, value in extra or []),
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()
        ERRORS.labels(code=code, status=str(status)).inc()
        logger.info(
            "refused a connection: %s",
            message,
            extra={"request_id": request_id, "status": status, "error": code},
        )


class GuardedH11Protocol(HeaderGuard, H11Protocol):
    """uvicorn's h11 protocol with the guard."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: h11 only
    GuardedHTTPProtocol: type[HeaderGuard] = GuardedH11Protocol
else:

    class GuardedHttpToolsProtocol(HeaderGuard, HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's httptools protocol with the guard."""

    GuardedHTTPProtocol = GuardedHttpToolsProtocol


def install_http_protocol() -> None:
    """Make uvicorn's "auto" HTTP implementation (the one BentoML's workers use) the guarded
    httptools protocol, or the guarded h11 one where httptools is missing."""
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{GuardedHTTPProtocol.__name__}"
