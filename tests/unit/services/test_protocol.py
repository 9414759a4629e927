"""Slow and greedy clients against the gateway's HTTP protocol, over raw sockets.

A real uvicorn server (the one BentoML runs) with each guarded protocol (httptools, which the
gateway runs, and h11, its fallback), in a thread; on the old code (uvicorn's own protocol) a
connection that never finishes its headers stayed open for as long as the client liked, and one
address could open any number of connections.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import uvicorn.config

from services.gateway import protocol
from services.gateway.protocol import GuardedH11Protocol, GuardedHttpToolsProtocol
from services.settings import ServerSettings

HEADER_TIMEOUT_S = 0.5
CAP = 3


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(params=[GuardedHttpToolsProtocol, GuardedH11Protocol], ids=["httptools", "h11"])
def server(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[int]:
    settings = ServerSettings(header_timeout_s=HEADER_TIMEOUT_S, max_connections_per_client=CAP)
    monkeypatch.setattr(protocol, "server_settings", lambda: settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        _hello, host="127.0.0.1", port=port, http=request.param, log_config=None
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def connect(server: int) -> Iterator[Any]:
    """Open raw connections to the server; all closed after the test."""
    opened: list[socket.socket] = []

    def open_one() -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", server), timeout=5)
        opened.append(connection)
        return connection

    yield open_one
    for connection in opened:
        connection.close()


def _get(connection: socket.socket) -> bytes:
    """One GET on a kept-alive connection; the whole response (its body is 5 bytes)."""
    connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = b""
    while not response.endswith(b"hello"):
        chunk = connection.recv(65536)
        assert chunk, f"closed after {response!r}"
        response += chunk
    return response


def _read_all(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body) if body else None


def test_headers_that_never_finish_get_408_in_the_envelope_and_a_close(connect: Any) -> None:
    connection = connect()
    connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()

    status, headers, document = _parse(_read_all(connection))

    assert status == 408
    assert document["error"]["code"] == "request_timeout"
    assert headers["connection"] == "close"
    assert len(headers["x-request-id"]) == 32
    assert HEADER_TIMEOUT_S * 0.8 < time.monotonic() - started < HEADER_TIMEOUT_S + 2


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(connect: Any) -> None:
    connection = connect()
    started = time.monotonic()

    status, _, _ = _parse(_read_all(connection))

    assert status == 408
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 2


def test_headers_dripped_byte_by_byte_cannot_outlast_the_timeout(connect: Any) -> None:
    connection = connect()
    started = time.monotonic()
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100
    sent_after_close = False
    for byte in request:
        try:
            connection.sendall(bytes([byte]))
        except OSError:
            sent_after_close = True
            break
        time.sleep(0.02)
    raw = b"" if sent_after_close else _read_all(connection)

    assert time.monotonic() - started < HEADER_TIMEOUT_S + 2
    assert sent_after_close or _parse(raw)[0] == 408


def test_a_prompt_request_is_served_and_keep_alive_still_works(connect: Any) -> None:
    connection = connect()
    for _ in range(3):
        assert _get(connection).startswith(b"HTTP/1.1 200")
        time.sleep(HEADER_TIMEOUT_S * 0.6)  # idle between requests: the keep-alive timer's job


def test_one_client_may_hold_only_the_capped_number_of_connections(connect: Any) -> None:
    held = [connect() for _ in range(CAP)]
    for connection in held:
        assert _get(connection).startswith(b"HTTP/1.1 200")

    extra = connect()
    status, headers, document = _parse(_read_all(extra))

    assert status == 429
    assert document["error"]["code"] == "too_many_connections"
    assert headers["retry-after"] == "1"
    held.pop().close()
    time.sleep(0.2)
    assert _get(connect()).startswith(b"HTTP/1.1 200")


def test_an_idle_kept_alive_connection_gets_the_header_deadline_again(connect: Any) -> None:
    connection = connect()
    assert _get(connection).startswith(b"HTTP/1.1 200")
    started = time.monotonic()

    status, headers, _ = _parse(_read_all(connection))  # uvicorn's keep-alive is 5 s

    assert status == 408
    assert headers["connection"] == "close"
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 2


def test_the_gateway_runs_the_guarded_httptools_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(uvicorn.config.HTTP_PROTOCOLS, "auto", "unset")

    protocol.install_http_protocol()

    config = uvicorn.Config(_hello, http="auto", log_config=None)
    config.load()
    assert config.http_protocol_class is GuardedHttpToolsProtocol
