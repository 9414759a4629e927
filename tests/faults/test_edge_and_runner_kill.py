"""One served gateway with short edge limits, attacked from the outside and then from inside.

Slow clients over raw sockets (headers and bodies that never finish, too many connections from
one address), 200 random paths against /metrics, a stalled body past BentoML's own timeout,
and last a runner killed under load. On the old code: slow connections stayed open as long as
the client liked, /metrics grew by ~20 series per unknown path, BentoML answered a stalled body
with its own bare 504, and a dead runner held each request 4-8 s.
"""

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.databases import migrated_postgres
from tests.utils.server import RunningServer, serve_gateway
from tests.utils.service_app import serving_env
from tests.utils.traffic import Traffic

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
CAP = 24


@pytest.fixture(scope="module")
def server(reference_models: dict[str, str]) -> Iterator[RunningServer]:
    with migrated_postgres() as url, serve_gateway(env=_env(reference_models, url)) as running:
        yield running


def _env(reference_models: dict[str, str], url: str) -> dict[str, str]:
    return serving_env(
        sorted(reference_models.values()),
        DB_URL=url,
        SERVER_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        SERVER_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        SERVER_REQUEST_TIMEOUT_S="4",
        SERVER_MAX_CONNECTIONS_PER_CLIENT=str(CAP),
        # The cap is per gateway worker (the kernel spreads connections over workers): one
        # worker, so CAP + 5 connections from this address certainly exceed it.
        SERVING_GATEWAY_WORKERS="1",
        SERVING_RUNNER_RETRY_AFTER_S="2",
        # Every framework in its own runner service, so that one can be killed (by default
        # scikit-learn and XGBoost predict inside the gateway's workers).
        SERVING_INPROCESS="",
    )


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


@contextlib.contextmanager
def _connections(server: RunningServer, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(_address(server), timeout=15) for _ in range(count)]
    try:
        yield opened
    finally:
        for connection in opened:
            connection.close()


def _response(connection: socket.socket) -> tuple[int, dict[str, str], Any]:
    """Read until the server closes; (status, headers, JSON body or None)."""
    raw = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := connection.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        return 0, {}, None
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def test_slow_headers_are_408_and_closed_after_the_header_timeout(server: RunningServer) -> None:
    with _connections(server, 20) as slow:
        for connection in slow:
            connection.sendall(b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        answers = [_response(connection) for connection in slow]
        waited = time.monotonic() - started

    assert waited < HEADER_TIMEOUT_S + 3
    for status, headers, document in answers:
        assert status == 408
        assert document["error"]["code"] == "request_timeout"
        assert headers["connection"] == "close"
        assert headers["x-request-id"]


def test_a_body_that_stalls_is_408_in_the_envelope_with_the_request_id(
    server: RunningServer,
) -> None:
    with _connections(server, 1) as (connection,):
        connection.sendall(
            b"POST /api/v1/predictions HTTP/1.1\r\nHost: x\r\nX-Request-ID: stalled-body-01\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            b'{"model": "cancer-rf", "inputs": ['
        )
        started = time.monotonic()
        status, headers, document = _response(connection)

    assert status == 408
    assert document["error"]["code"] == "request_timeout"
    assert headers["x-request-id"] == "stalled-body-01"
    assert time.monotonic() - started < BODY_TIMEOUT_S + 3


def test_one_address_cannot_hold_more_than_the_cap(server: RunningServer) -> None:
    with _connections(server, CAP + 5) as opened:
        refused = []
        for connection in opened[CAP:]:
            status, headers, document = _response(connection)
            refused.append((status, document["error"]["code"], headers.get("retry-after")))

    assert refused == [(429, "too_many_connections", "1")] * 5


def test_random_paths_add_a_bounded_number_of_series(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        client.get("/no-such-path-warmup")  # the first 404 and the first scrape add their
        client.get("/metrics")  # own series: the test measures what the next 200 paths add
        before = _series(client.get("/metrics").text)
        for number in range(200):
            response = client.get(f"/random/{number}/path-{number * 7919 % 1000}")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
        after = _series(client.get("/metrics").text)
        text = client.get("/metrics").text

    assert len(after - before) <= 5, sorted(after - before)
    assert "/random/" not in text
    assert 'route="unmatched"' in text
    assert 'endpoint="unmatched"' in text


def _series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_probes_answer_the_envelope(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for path in ("/health", "/livez", "/healthz", "/ready", "/readyz"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.json()["meta"]["request_id"] == response.headers["x-request-id"]


def test_a_killed_runner_fails_fast_and_comes_back(
    server: RunningServer, golden_bodies: dict[str, list[dict[str, Any]]]
) -> None:
    bodies = golden_bodies["cancer-rf"][:6] + golden_bodies["fraud-xgb"][:6]
    with Traffic(server.base_url, bodies, clients=6) as traffic:
        time.sleep(2)
        (runner,) = server.workers("sklearn_runner")
        runner.kill()
        killed = time.monotonic()
        deadline = killed + 120
        while time.monotonic() < deadline and not _recovered(traffic, killed):
            time.sleep(0.5)
        recovered = time.monotonic()
        time.sleep(2)
        traffic.stop()

    print(traffic.summary(), f"recovered after {recovered - killed:.1f} s")
    print(server.errors("runner call failed", limit=5))
    assert _recovered(traffic, killed), "the runner did not come back"
    assert {o.status for o in traffic.outcomes} <= {201, 503}
    during = traffic.between(killed, recovered)
    refused = [o for o in during if o.status == 503]
    assert refused, "the dead runner was never noticed"
    assert {(o.model, o.code) for o in refused} == {("cancer-rf", "model_not_loaded")}
    assert all(o.retry_after for o in refused)
    # Once the first call has failed, nothing waits on the dead runner, and XGBoost is unaffected.
    first_known = min(o.finished for o in refused)
    waits = [(o.seconds, o.status) for o in traffic.between(first_known, recovered)]
    print("slowest after the failure was known:", sorted(waits)[-5:])
    slowest = max(o.seconds for o in traffic.between(first_known, recovered) if o.status == 503)
    assert slowest < 1.0, slowest  # on the old code: 4-8 s each
    assert {o.status for o in during if o.model == "fraud-xgb"} == {201}


def _recovered(traffic: Traffic, killed: float) -> bool:
    """A cancer-rf prediction succeeded again, and /ready says the runner is ok."""
    samples = [s for s in traffic.readiness if s.at > killed]
    return (
        any(o.model == "cancer-rf" and o.status == 201 for o in traffic.between(killed + 1, 1e12))
        and bool(samples)
        and samples[-1].checks.get("runner:sklearn") == "ok"
    )
