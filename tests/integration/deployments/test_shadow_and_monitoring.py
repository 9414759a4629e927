"""Shadow traffic, drift, live quality and the PSI gauge through the real gateway app."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY
from sklearn import metrics

from services.catalog import ModelCatalog
from services.monitoring.live import drift_over_window
from services.monitoring.windows import Window
from tests.utils.gateway import gateway_client, model_refs
from tests.utils.lifecycle import accepted_by_all, split_rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
MODEL = "/api/v1/models/cancer-rf"


def _version(tag: str) -> str:
    return tag.split(":")[1]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _predict(
    client: httpx.AsyncClient, rows: list[dict[str, Any]], request_id: str | None = None
) -> Any:
    headers = {"X-Request-ID": request_id} if request_id else {}
    response = await client.post(
        "/api/v1/predictions", json={"model": "cancer-rf", "inputs": rows}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _all(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/predictions", params={"limit": "200", **params})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_shadow_outputs_are_stored_linked_and_never_returned(
    db_url: str, cancer_versions: tuple[str, str]
) -> None:
    older, newer = cancer_versions
    a, b = _version(older), _version(newer)
    (train, _), _ = split_rows("cancer-rf", 42)
    rows = [train[i] for i in accepted_by_all(train, [older, newer])[:40]]
    shadow_requests = _count(
        "deployment_requests_total", model="cancer-rf", version=b, role="shadow"
    )
    async with gateway_client([older, newer], db_url=db_url) as (client, runtime):
        changed = await client.put(f"{MODEL}/deployment", json={"production": a, "shadow": [b]})
        responses = [await _predict(client, rows[i : i + 2]) for i in range(0, 40, 2)]
        assert runtime.lifecycle is not None
        await asyncio.wait_for(runtime.lifecycle.shadows.idle(), timeout=30)
        primaries = await _all(client)
        shadows = await _all(client, **{"filter[shadow]": "true"})
        exported = await client.get("/api/v1/predictions/export", params={"filter[shadow]": "true"})
        comparison = (await client.get(f"{MODEL}/shadow", params={"window": "1h"})).json()
        labelled_shadow = await client.patch(
            f"/api/v1/predictions/{shadows[0]['id']}", json={"label": "benign"}
        )
        deleted = await client.delete(f"/api/v1/predictions/{shadows[0]['shadow_of']}")
        gone = await client.get(f"/api/v1/predictions/{shadows[0]['id']}")

    assert changed.status_code == 200, changed.text
    returned_ids = {p["id"] for r in responses for p in r["data"]["predictions"]}
    assert {r["data"]["model"]["version"] for r in responses} == {a}
    assert b not in json.dumps(responses)  # nothing of the shadow reaches the caller
    assert {p["id"] for p in primaries} == returned_ids
    assert {p["role"] for p in primaries} == {"production"}
    assert len(shadows) == 40
    assert {(s["role"], s["model"]["version"]) for s in shadows} == {("shadow", b)}
    assert {s["shadow_of"] for s in shadows} == returned_ids
    by_id = {p["id"]: p for p in primaries}
    assert all(s["inputs"] == by_id[s["shadow_of"]]["inputs"] for s in shadows)
    assert {json.loads(line)["id"] for line in exported.text.splitlines()} == {
        s["id"] for s in shadows
    }
    assert _count(
        "deployment_requests_total", model="cancer-rf", version=b, role="shadow"
    ) - shadow_requests == len(responses)

    (report,) = comparison["data"]["comparisons"]
    agree = [s["outputs"]["label"] == by_id[s["shadow_of"]]["outputs"]["label"] for s in shadows]
    differences = [
        abs(s["outputs"]["probabilities"][c] - by_id[s["shadow_of"]]["outputs"]["probabilities"][c])
        for s in shadows
        for c in ("malignant", "benign")
    ]
    assert (report["shadow_version"], report["production_version"]) == (b, a)
    assert report["count"] == 40
    assert report["agreement_rate"] == pytest.approx(sum(agree) / 40)
    assert report["mean_absolute_difference"] == pytest.approx(float(np.mean(differences)))
    assert report["max_absolute_difference"] == pytest.approx(max(differences))
    assert labelled_shadow.status_code == 422
    assert deleted.status_code == 204
    assert gone.status_code == 404  # a shadow row goes with its primary prediction


async def test_drift_quality_and_the_psi_gauge_over_windows(
    pg_url: str, cancer_versions: tuple[str, str]
) -> None:
    older, newer = cancer_versions
    a, b = _version(older), _version(newer)
    (train, _), (holdout, labels) = split_rows("cancer-rf", 42)
    rows = [train[i] for i in accepted_by_all(train, [older, newer])]
    kept = accepted_by_all(holdout, [older, newer])
    rows += [holdout[i] for i in kept]  # the holdout rows (last) get their true labels
    truth = [labels[i] for i in kept]
    radius = float(np.quantile([row["mean_radius"] for row in rows], 0.7))
    shifted = [row for row in rows if row["mean_radius"] > radius]
    async with gateway_client([older, newer], db_url=pg_url) as (client, runtime):
        await client.put(
            f"{MODEL}/deployment",
            json={"production": a, "canary": {"version": b, "weight": 0.5}},
        )
        start = datetime.now(UTC)
        # Fixed request ids: the canary's half of the requests is the same on every run.
        served = [
            await _predict(client, rows[i : i + 10], request_id=f"quality-test-{i:05d}")
            for i in range(0, len(rows), 10)
        ]
        middle = datetime.now(UTC)
        for i in range(0, len(shifted), 50):
            await _predict(client, shifted[i : i + 50])
        end = datetime.now(UTC)
        ids = [p["id"] for r in served for p in r["data"]["predictions"]][-len(truth) :]
        labelled = range(len(truth))
        for i in labelled:
            response = await client.patch(f"/api/v1/predictions/{ids[i]}", json={"label": truth[i]})
            assert response.status_code == 200, response.text
        first = f"{_iso(start)}/{_iso(middle)}"
        like_training = (await client.get(f"{MODEL}/drift", params={"window": first})).json()
        moved = (
            await client.get(f"{MODEL}/drift", params={"window": f"{_iso(middle)}/{_iso(end)}"})
        ).json()
        only_b = (await client.get(f"{MODEL}/drift", params={"window": "1h", "version": b})).json()
        last_hour = (await client.get(f"{MODEL}/drift", params={"window": "1h"})).json()
        quality = (await client.get(f"{MODEL}/quality", params={"window": first})).json()
        stored = {p["id"]: p for p in await _all(client, **{"filter[labelled]": "true"})}
        bad_window = await client.get(f"{MODEL}/drift", params={"window": "yesterday"})
        reversed_window = await client.get(
            f"{MODEL}/quality", params={"window": f"{_iso(end)}/{_iso(start)}"}
        )
        unknown_version = await client.get(f"{MODEL}/drift", params={"version": "v404"})
        assert runtime.lifecycle is not None
        refreshed = await runtime.lifecycle.drift_gauge.refresh()
        catalog = ModelCatalog.from_store(model_refs([older]))

    assert "data" in like_training, like_training
    versions = {v["version"]: v for v in like_training["data"]["versions"]}
    assert like_training["data"]["rows"] == len(rows)
    assert set(versions) == {a, b}
    assert versions[a]["stage"] == "production"
    assert versions[a]["drift"]["status"] == "ok"  # a's own training rows
    assert max(f["psi"] for f in versions[a]["drift"]["features"]) < 0.05
    assert versions[b]["drift"]["status"] == "ok"
    moved_a = next(v for v in moved["data"]["versions"] if v["version"] == a)["drift"]
    assert moved["data"]["rows"] == len(shifted)
    assert moved_a["status"] == "alert"
    assert {f["name"]: f["status"] for f in moved_a["features"]}["mean_radius"] == "alert"
    assert [v["version"] for v in only_b["data"]["versions"]] == [b]
    assert like_training["data"]["thresholds"] == {"warn": 0.1, "alert": 0.25}

    for version in (a, b):
        pairs = [
            (p["outputs"]["probabilities"], p["label"])
            for p in stored.values()
            if p["model"]["version"] == version
        ]
        got = next(v for v in quality["data"]["versions"] if v["version"] == version)
        probabilities = np.array([[p["malignant"], p["benign"]] for p, _ in pairs])
        truth_index = np.array([["malignant", "benign"].index(label) for _, label in pairs])
        assert got["live"]["labelled"] == len(pairs) > 0
        assert got["live"]["accuracy"] == pytest.approx(
            metrics.accuracy_score(truth_index, probabilities.argmax(axis=1))
        )
        assert got["live"]["log_loss"] == pytest.approx(
            metrics.log_loss(truth_index, probabilities, labels=[0, 1])
        )
        assert got["live"]["roc_auc"] == pytest.approx(
            metrics.roc_auc_score(truth_index, probabilities[:, 1])
        )
    assert sum(v["live"]["labelled"] for v in quality["data"]["versions"]) == len(labelled)
    holdout = next(v for v in quality["data"]["versions"] if v["version"] == a)["holdout"]
    assert holdout == catalog.get("cancer-rf", a).metadata.metrics  # type: ignore[union-attr]

    for response in (bad_window, reversed_window):
        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"parameter": "window"}
    assert unknown_version.status_code == 404
    assert refreshed is True
    hour_a = next(v for v in last_hour["data"]["versions"] if v["version"] == a)["drift"]
    for feature in hour_a["features"]:  # the gauge covers the last hour, like that report
        gauge = _count("model_feature_psi", model="cancer-rf", version=a, feature=feature["name"])
        assert gauge == pytest.approx(feature["psi"])
    assert hour_a["rows"] == len(rows) + len(shifted)


async def test_a_version_without_a_reference_says_so(
    sqlite_db: str, cancer_versions: tuple[str, str]
) -> None:
    from db.settings import DatabaseSettings
    from services.persistence import PredictionStore

    store = PredictionStore.connect(DatabaseSettings(url=sqlite_db))
    now = datetime.now(UTC)
    try:
        drift = await drift_over_window(
            store.sessions,
            model_name="cancer-rf",
            references={"old": None},
            window=Window(start=now.replace(year=2025), end=now),
            max_rows=10,
        )
    finally:
        await store.close()

    assert drift.versions["old"].status == "no_reference"
    assert "re-export" in (drift.versions["old"].message or "")
