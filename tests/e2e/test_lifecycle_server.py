"""The model lifecycle against a real `bentoml serve`: two versions each of cancer-rf and
digits-mlp, two gateway workers, PostgreSQL. One server for every behaviour here (each start
costs about 20 s): canary share, promotion and rollback under load, shadows, drift, quality."""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics

from tests.utils.databases import migrated_postgres
from tests.utils.lifecycle import accepted_by_all, split_rows
from tests.utils.load import PREDICTIONS
from tests.utils.served_models import golden_examples
from tests.utils.server import RunningServer, serve_gateway
from tests.utils.service_app import serving_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CANCER = "/api/v1/models/cancer-rf"
CANARY_REQUESTS = 10_000
CLIENTS = 32
FOLLOW_S = 2.0


@dataclass(frozen=True)
class Lifecycle:
    server: RunningServer
    cancer: tuple[str, str]  # (older, newer) tags
    digits: tuple[str, str]
    rows: list[dict[str, Any]]  # cancer-rf training rows both versions accept


@dataclass(frozen=True)
class Answer:
    request_id: str
    started: float
    status: int
    version: str | None
    meta_version: str | None
    error: str | None = None


@pytest.fixture(scope="module")
def lifecycle(
    reference_models: dict[str, str], second_versions: dict[str, str]
) -> Iterator[Lifecycle]:
    cancer = (reference_models["cancer-rf"], second_versions["cancer-rf"])
    digits = (reference_models["digits-mlp"], second_versions["digits-mlp"])
    (train, _), _ = split_rows("cancer-rf", 42)
    rows = [train[i] for i in accepted_by_all(train, list(cancer))]
    env = serving_env(
        [*cancer, *digits],
        SERVING_GATEWAY_WORKERS="2",
        MONITORING_DRIFT_REFRESH_S="2",
        MONITORING_DRIFT_WINDOW="1h",
    )
    with migrated_postgres() as database, serve_gateway(env={**env, "DB_URL": database}) as server:
        yield Lifecycle(server=server, cancer=cancer, digits=digits, rows=rows)


def _version(tag: str) -> str:
    return tag.split(":")[1]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _api(server: RunningServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        return client.request(method, path, **kwargs)


def _deploy(server: RunningServer, model: str, **spec: Any) -> dict[str, Any]:
    response = _api(server, "PUT", f"/api/v1/models/{model}/deployment", json=spec)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()["data"]
    return document


async def _post(
    client: httpx.AsyncClient, model: str, rows: list[dict[str, Any]], request_id: str
) -> Answer:
    """One prediction; a transport error is an answer with status 0 (and fails the test)."""
    started = time.monotonic()
    try:
        response = await client.post(
            PREDICTIONS,
            json={"model": model, "inputs": rows},
            headers={"X-Request-ID": request_id},
        )
    except httpx.TransportError as exc:
        return Answer(request_id, started, 0, None, None, repr(exc))
    body = response.json() if response.status_code == 201 else {}
    return Answer(
        request_id=request_id,
        started=started,
        status=response.status_code,
        version=body.get("data", {}).get("model", {}).get("version"),
        meta_version=body.get("meta", {}).get("model_version"),
        error=None if response.status_code == 201 else response.text[:300],
    )


async def _send_all(
    server: RunningServer, model: str, rows: list[dict[str, Any]], count: int
) -> list[Answer]:
    """`count` single-row requests from CLIENTS concurrent clients, each request on a new
    connection: both gateway workers get their share, and no request meets a keep-alive
    connection the server is closing."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    queue = list(range(count))
    answers: list[Answer] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while queue:
                i = queue.pop()
                answers.append(
                    await _post(client, model, [rows[i % len(rows)]], f"canary-{uuid.uuid4().hex}")
                )

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return answers


def _served_by(server: RunningServer) -> dict[str, int]:
    """request id -> pid of the gateway worker that answered it (from the access log)."""
    workers = {}
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"logger": "services.access"' in line:
            entry = json.loads(line)
            if entry["endpoint"] == PREDICTIONS:
                workers[entry["request_id"]] = entry["pid"]
    return workers


def _counter(server: RunningServer, name: str, **labels: str) -> float:
    text = _api(server, "GET", "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_canary_at_10_percent_over_10000_requests_is_within_2_points(
    lifecycle: Lifecycle,
) -> None:
    older, newer = lifecycle.cancer
    a, b = _version(older), _version(newer)
    state = _deploy(
        lifecycle.server, "cancer-rf", production=a, canary={"version": b, "weight": 0.1}
    )
    time.sleep(FOLLOW_S)
    canary_before = _counter(
        lifecycle.server, "deployment_requests_total", model="cancer-rf", version=b, role="canary"
    )

    answers = asyncio.run(_send_all(lifecycle.server, "cancer-rf", lifecycle.rows, CANARY_REQUESTS))

    assert state["canary"] == {"version": b, "weight": 0.1, "sticky": "request"}
    failed = [(a.status, a.error) for a in answers if a.status != 201]
    assert failed == [], f"{len(failed)} failed; server log:\n{lifecycle.server.log_tail(60)}"
    versions = [answer.version for answer in answers]
    assert set(versions) == {a, b}
    assert all(
        answer.meta_version == f"cancer-rf:{answer.version}" for answer in answers
    )  # every response names the version that served it, in data and meta
    share = versions.count(b) / CANARY_REQUESTS
    assert abs(share - 0.1) <= 0.02, f"canary share {share:.4f}"
    served_by = _served_by(lifecycle.server)
    assert len({served_by[answer.request_id] for answer in answers}) == 2
    canary_after = _counter(
        lifecycle.server, "deployment_requests_total", model="cancer-rf", version=b, role="canary"
    )
    assert canary_after - canary_before == versions.count(b)


async def _load_until(
    server: RunningServer, rows: list[dict[str, Any]], stop: asyncio.Event
) -> list[Answer]:
    """Requests back to back from 8 clients, each on a fresh connection (so both gateway workers
    get their share), until `stop` is set."""
    answers: list[Answer] = []
    limits = httpx.Limits(max_keepalive_connections=0)

    async def client_loop(number: int) -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as c:
            i = number
            while not stop.is_set():
                answers.append(await _post(c, "cancer-rf", [rows[i % len(rows)]], uuid.uuid4().hex))
                i += 8

    await asyncio.gather(*(client_loop(n) for n in range(8)))
    return answers


@dataclass(frozen=True)
class Change:
    """When a deployment change was asked for, and when it had answered (committed)."""

    sent: float
    done: float


async def _promote_and_roll_back(lifecycle: Lifecycle) -> tuple[list[Answer], Change, Change]:
    older, newer = lifecycle.cancer
    server = lifecycle.server
    stop = asyncio.Event()
    load = asyncio.create_task(_load_until(server, lifecycle.rows, stop))
    await asyncio.sleep(2.0)
    sent = time.monotonic()
    await asyncio.to_thread(_deploy, server, "cancer-rf", production=_version(newer))
    promotion = Change(sent, time.monotonic())
    await asyncio.sleep(5.0)
    sent = time.monotonic()
    response = await asyncio.to_thread(_api, server, "POST", f"{CANCER}/deployment/rollback")
    rollback = Change(sent, time.monotonic())
    assert response.status_code == 201, response.text
    assert response.json()["data"]["production"] == _version(older)
    await asyncio.sleep(5.0)
    stop.set()
    return await load, promotion, rollback


def test_promotion_and_rollback_under_load_drop_nothing_and_reach_both_workers(
    lifecycle: Lifecycle,
) -> None:
    older, newer = lifecycle.cancer
    _deploy(lifecycle.server, "cancer-rf", production=_version(older))
    time.sleep(FOLLOW_S)

    answers, promotion, rollback = asyncio.run(_promote_and_roll_back(lifecycle))

    assert len(answers) > 100
    failed = [(a.status, a.error) for a in answers if a.status != 201]
    assert failed == [], f"{len(failed)} failed; server log:\n{lifecycle.server.log_tail(60)}"
    assert all(a.version is not None and a.meta_version is not None for a in answers)
    served_by = _served_by(lifecycle.server)
    # A change holds from its commit, between its request and its answer: each period runs
    # from a change's answer plus FOLLOW_S to the moment the next change was asked for.
    periods = {
        _version(newer): [
            a for a in answers if promotion.done + FOLLOW_S <= a.started < rollback.sent
        ],
        _version(older): [a for a in answers if a.started >= rollback.done + FOLLOW_S],
    }
    for version, period in periods.items():
        stray = [
            (round(a.started - promotion.done, 2), a.version, served_by.get(a.request_id))
            for a in period
            if a.version != version
        ]
        assert period, f"no request in the {version} period"
        assert stray == [], f"{version} period (s after the promotion, version, worker pid)"
        assert len({served_by[a.request_id] for a in period}) == 2, "both workers must serve"


def test_shadow_outputs_are_stored_and_never_returned(lifecycle: Lifecycle) -> None:
    older, newer = lifecycle.cancer
    a, b = _version(older), _version(newer)
    _deploy(lifecycle.server, "cancer-rf", production=a, shadow=[b])
    time.sleep(FOLLOW_S)
    since = _iso(datetime.now(UTC))

    answers = asyncio.run(_send_all(lifecycle.server, "cancer-rf", lifecycle.rows, 200))

    assert {(answer.status, answer.version) for answer in answers} == {(201, a)}
    filters = {"filter[model]": "cancer-rf", "filter[created_after]": since, "limit": "200"}
    deadline = time.monotonic() + 30
    while True:
        shadows = _api(
            lifecycle.server,
            "GET",
            "/api/v1/predictions",
            params={**filters, "filter[shadow]": "true"},
        ).json()
        if shadows["meta"]["total"] >= 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    primaries = _api(lifecycle.server, "GET", "/api/v1/predictions", params=filters).json()
    comparison = _api(
        lifecycle.server,
        "GET",
        f"{CANCER}/shadow",
        params={"window": f"{since}/{_iso(datetime.now(UTC))}"},
    ).json()["data"]["comparisons"]

    assert shadows["meta"]["total"] == 200
    assert primaries["meta"]["total"] == 200  # the list API shows the callers' predictions only
    assert {p["model"]["version"] for p in primaries["data"]} == {a}
    assert {(s["role"], s["model"]["version"]) for s in shadows["data"]} == {("shadow", b)}
    primary_ids = {p["id"] for p in primaries["data"]}
    assert {s["shadow_of"] for s in shadows["data"]} == primary_ids
    assert [(c["shadow_version"], c["production_version"], c["count"]) for c in comparison] == [
        (b, a, 200)
    ]


def test_drift_quality_and_the_psi_gauge(lifecycle: Lifecycle) -> None:
    older, newer = lifecycle.cancer
    a, b = _version(older), _version(newer)
    _deploy(lifecycle.server, "cancer-rf", production=a)
    time.sleep(FOLLOW_S)
    _, (holdout, labels) = split_rows("cancer-rf", 42)
    kept = accepted_by_all(holdout, list(lifecycle.cancer))
    rows = lifecycle.rows + [holdout[i] for i in kept]
    truth = [labels[i] for i in kept]
    radius = float(np.quantile([row["mean_radius"] for row in rows], 0.7))
    shifted = [row for row in rows if row["mean_radius"] > radius]

    with httpx.Client(base_url=lifecycle.server.base_url, timeout=60) as client:
        start = _iso(datetime.now(UTC))
        created = [
            client.post(PREDICTIONS, json={"model": "cancer-rf", "inputs": rows[i : i + 20]})
            for i in range(0, len(rows), 20)
        ]
        middle = _iso(datetime.now(UTC))
        for i in range(0, len(shifted), 50):
            client.post(PREDICTIONS, json={"model": "cancer-rf", "inputs": shifted[i : i + 50]})
        end = _iso(datetime.now(UTC))
        ids = [p["id"] for r in created for p in r.json()["data"]["predictions"]][-len(truth) :]
        outputs = []
        for prediction_id, label in zip(ids, truth, strict=True):
            labelled = client.patch(f"/api/v1/predictions/{prediction_id}", json={"label": label})
            assert labelled.status_code == 200, labelled.text
            outputs.append(labelled.json()["data"]["outputs"]["probabilities"])
        training_like = client.get(f"{CANCER}/drift", params={"window": f"{start}/{middle}"}).json()
        moved = client.get(f"{CANCER}/drift", params={"window": f"{middle}/{end}"}).json()
        quality = client.get(f"{CANCER}/quality", params={"window": f"{start}/{end}"}).json()
    time.sleep(5)  # two refreshes of the gauge (MONITORING_DRIFT_REFRESH_S=2)
    gauge = _counter(
        lifecycle.server, "model_feature_psi", model="cancer-rf", version=a, feature="mean_radius"
    )
    last_hour = _api(lifecycle.server, "GET", f"{CANCER}/drift", params={"window": "1h"}).json()

    assert all(r.status_code == 201 for r in created)
    (ok,) = training_like["data"]["versions"]
    assert ok["version"] == a
    assert training_like["data"]["rows"] == len(rows)
    assert ok["drift"]["status"] == "ok"
    assert max(f["psi"] for f in ok["drift"]["features"]) < 0.05  # near 0
    (alert,) = moved["data"]["versions"]
    assert alert["drift"]["status"] == "alert"
    assert {f["name"]: f["status"] for f in alert["drift"]["features"]}["mean_radius"] == "alert"
    # Refreshed in the background by the worker holding the lease, over the last hour.
    (hour,) = last_hour["data"]["versions"]
    assert gauge == pytest.approx(
        {f["name"]: f["psi"] for f in hour["drift"]["features"]}["mean_radius"]
    )

    probabilities = np.array([[p["malignant"], p["benign"]] for p in outputs])
    truth_index = np.array([["malignant", "benign"].index(label) for label in truth])
    (live,) = [v for v in quality["data"]["versions"] if v["version"] == a]
    assert live["live"]["labelled"] == len(truth)
    assert live["live"]["accuracy"] == pytest.approx(
        metrics.accuracy_score(truth_index, probabilities.argmax(axis=1))
    )
    assert live["live"]["log_loss"] == pytest.approx(
        metrics.log_loss(truth_index, probabilities, labels=[0, 1])
    )
    assert live["live"]["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(truth_index, probabilities[:, 1])
    )
    assert live["holdout"]["accuracy"] > 0.9
    assert {v["version"]: v["stage"] for v in quality["data"]["versions"]}[b] == "archived"


def test_two_digits_versions_serve_side_by_side(lifecycle: Lifecycle) -> None:
    older, newer = lifecycle.digits
    versions = _api(lifecycle.server, "GET", "/api/v1/models/digits-mlp/versions").json()["data"]
    _deploy(
        lifecycle.server,
        "digits-mlp",
        production=_version(older),
        canary={"version": _version(newer), "weight": 0.5},
    )
    time.sleep(FOLLOW_S)
    golden = {tag: golden_examples(tag) for tag in lifecycle.digits}

    pinned = {
        tag: _api(
            lifecycle.server,
            "POST",
            PREDICTIONS,
            json={"model": tag, "inputs": golden[tag]["inputs"]},
            headers={"Cache-Control": "no-cache"},
        ).json()
        for tag in lifecycle.digits
    }
    inputs = golden[older]["inputs"]
    row = inputs[accepted_by_all(inputs, list(lifecycle.digits))[0]]  # both versions accept it
    answers = asyncio.run(_send_all(lifecycle.server, "digits-mlp", [row], 200))

    assert {v["version"] for v in versions} == {_version(older), _version(newer)}
    for tag, document in pinned.items():
        probabilities = [
            list(p["outputs"]["probabilities"].values()) for p in document["data"]["predictions"]
        ]
        assert probabilities == golden[tag]["outputs"]
        assert document["meta"]["model_version"] == tag
    share = [answer.version for answer in answers].count(_version(newer)) / len(answers)
    assert {answer.status for answer in answers} == {201}
    assert 0.35 < share < 0.65
