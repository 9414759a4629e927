"""SIGTERM under load: every request admitted before it gets its 201 and its row.

SIGTERM goes to the server's main process, as Kubernetes sends it. Four requests are admitted
before it but can only finish after it: their bodies are held back and sent 1.5 s later, when
every worker (runners included) has had SIGTERM. On the old code the runners exited at once,
so such requests got 503, and new connections were reset. Now /ready turns 503 at once, new
requests get 503 `shutting_down` (not processed, retry elsewhere), admitted ones finish, the
runners outlive the gateway, and the server exits.
"""

import asyncio
import json
import os
import signal
import socket
import time
from typing import Any

import httpx
import pytest

from tests.utils.databases import migrated_postgres, prediction_ids
from tests.utils.server import serve_gateway
from tests.utils.service_app import serving_env
from tests.utils.traffic import Traffic

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
GRACE_S = 20
HELD_BACK = 12  # bytes of each slow body sent only after SIGTERM


def _start_slow_request(base_url: str, body: dict[str, Any]) -> tuple[socket.socket, bytes]:
    """Send the headers and all but the end of the body; return the socket and the rest."""
    host, port = base_url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(
        b"POST /api/v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Cache-Control: no-cache\r\nContent-Length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload[:-HELD_BACK]
    )
    return connection, payload[-HELD_BACK:]


def _finish(connection: socket.socket, rest: bytes) -> tuple[int, Any]:
    connection.sendall(rest)
    raw = b""
    while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        raw += chunk
    connection.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_sigterm_drains_admitted_requests_and_runners_outlive_the_gateway(
    reference_models: dict[str, str], golden_bodies: dict[str, list[dict[str, Any]]]
) -> None:
    bodies = [body for name in sorted(golden_bodies) for body in golden_bodies[name][:4]]
    with migrated_postgres() as url:
        env = serving_env(
            sorted(reference_models.values()),
            DB_URL=url,
            SERVER_DRAIN_GRACE_S=str(GRACE_S),
            SERVER_BODY_TIMEOUT_S="10",
        )
        with serve_gateway(env=env) as server:
            assert server.process is not None
            with Traffic(server.base_url, bodies, clients=6, ready_every_s=1.0) as traffic:
                time.sleep(2)
                slow = [
                    _start_slow_request(server.base_url, body)
                    for body in (golden_bodies["cancer-rf"][0], golden_bodies["digits-mlp"][0]) * 2
                ]
                time.sleep(0.5)
                os.kill(server.pid, signal.SIGTERM)
                term = time.monotonic()
                time.sleep(0.3)
                with httpx.Client(base_url=server.base_url, timeout=5) as client:
                    ready = client.get("/ready")
                    refused = client.post("/api/v1/predictions", json=bodies[0])
                time.sleep(1.5)
                finished = [_finish(connection, rest) for connection, rest in slow]
                time.sleep(0.5)
                traffic.stop()
            server.process.wait(timeout=GRACE_S + 30)
            exited = time.monotonic()
            log = server.log_tail(300)
        stored = asyncio.run(prediction_ids(url))

    print(traffic.summary(), f"exited {exited - term:.1f} s after SIGTERM")
    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["checks"] == {"gateway": "draining"}
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "shutting_down"
    assert refused.headers["retry-after"] == "1"
    assert [status for status, _ in finished] == [201] * 4, (finished, log)
    slow_ids = {p["id"] for _, document in finished for p in document["data"]["predictions"]}
    assert slow_ids <= stored
    outcomes = traffic.outcomes
    created = {i for o in outcomes if o.status == 201 for i in o.ids}
    assert created <= stored, f"{len(created - stored)} 201s without a row"
    assert {(o.status, o.code) for o in outcomes if o.status != 201} <= {
        (None, None),
        (503, "shutting_down"),
    }
    assert all(o.started >= term - 0.1 for o in outcomes if o.status is None)
    assert all(o.status == 201 for o in outcomes if o.finished < term)
    assert exited - term < GRACE_S
    assert "drain: done" in log
