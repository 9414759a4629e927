"""Drive an ASGI app directly: one HTTP request in, every message it sends recorded.

For unit tests of ASGI middleware, where an HTTP client would hide what matters (whether a
Content-Length was declared, how the body was chunked, how many response starts were sent).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class RecordedResponse:
    """What an ASGI app sent for one request."""

    messages: list[Message] = field(default_factory=list)

    @property
    def starts(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.start"]

    @property
    def status(self) -> int:
        (start,) = self.starts
        return int(start["status"])

    @property
    def headers(self) -> dict[str, str]:
        """Header names lowercased; a repeated header's values joined by ', '."""
        (start,) = self.starts
        headers: dict[str, str] = {}
        for key, value in start.get("headers", []):
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        return headers

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )

    def json(self) -> Any:
        return json.loads(self.body)


def http_scope(
    path: str = "/", *, method: str = "GET", headers: Sequence[tuple[str, str]] = ()
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def request(
    app: ASGIApp,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    chunks: Sequence[bytes] = (),
) -> RecordedResponse:
    """Send one request whose body arrives in `chunks`; return what the app sent back."""
    return asyncio.run(
        _request(app, http_scope(path, method=method, headers=headers), list(chunks))
    )


async def _request(app: ASGIApp, scope: Scope, chunks: list[bytes]) -> RecordedResponse:
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    recorded = RecordedResponse()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        recorded.messages.append(message)

    await app(scope, receive, send)
    return recorded


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as an app reads it."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    chunk_size: int | None = None,
) -> None:
    """Send a complete response, its body optionally in several `more_body` chunks."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    size = chunk_size or max(len(body), 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    for i, part in enumerate(parts):
        await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})
