"""Complete responses written straight onto an ASGI `send`, for middleware that answers itself."""

import json
from typing import Any

from starlette.types import Send

from services.http.envelope import error_document


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_document(send: Send, status: int, document: dict[str, Any]) -> None:
    """A complete JSON response from a document."""
    await send_json(send, status, json.dumps(document).encode("utf-8"))


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """The error envelope as a complete response."""
    await send_json(send, status, error_document(code, message, details), headers)


def retry_after(seconds: int | None) -> list[tuple[bytes, bytes]]:
    """The Retry-After header, when there is a value to send."""
    return [] if seconds is None else [(b"retry-after", str(seconds).encode())]
