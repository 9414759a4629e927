"""Deployments through the real gateway app: set, read, list, roll back, validate, propagate."""

import asyncio
import time
from typing import Any

import bentoml
import httpx
import pytest

from services.auth.settings import AuthSettings
from services.runners.protocol import PredictItem, PredictOutput, RunnerStatus
from tests.utils.accounts import new_account
from tests.utils.gateway import gateway_client
from tests.utils.lifecycle import accepted_by_all, split_rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
DEPLOYMENT = "/api/v1/models/cancer-rf/deployment"
SECRET = "deployment-tests-secret-" + "x" * 32


def _version(tag: str) -> str:
    return tag.split(":")[1]


def _rows(tags: list[str], count: int) -> list[dict[str, Any]]:
    (rows, _), _ = split_rows("cancer-rf", 42)
    return [rows[i] for i in accepted_by_all(rows, tags)[:count]]


async def _predict(client: httpx.AsyncClient, model: str, rows: list[dict[str, Any]]) -> Any:
    response = await client.post("/api/v1/predictions", json={"model": model, "inputs": rows})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_deployment_is_set_read_listed_and_rolled_back(
    db_url: str, cancer_versions: tuple[str, str]
) -> None:
    older, newer = cancer_versions
    a, b = _version(older), _version(newer)
    async with gateway_client([older, newer], db_url=db_url) as (client, _):
        default = (await client.get(DEPLOYMENT)).json()["data"]
        canary = await client.put(
            DEPLOYMENT, json={"production": a, "canary": {"version": b, "weight": 0.25}}
        )
        same_again = await client.put(
            DEPLOYMENT, json={"production": a, "canary": {"version": b, "weight": 0.25}}
        )
        versions = (await client.get("/api/v1/models/cancer-rf/versions")).json()["data"]
        promoted = await client.put(DEPLOYMENT, json={"production": b})
        after_promotion = (await client.get("/api/v1/models/cancer-rf/versions")).json()["data"]
        rolled_back = await client.post(f"{DEPLOYMENT}/rollback")
        to_first = await client.post(f"{DEPLOYMENT}/rollback", json={"to_revision": 1})
        history = (await client.get(f"{DEPLOYMENT}/history", params={"limit": 3})).json()
        model = (await client.get("/api/v1/models/cancer-rf")).json()["data"]
        pinned = await _predict(client, older, _rows([older], 1))
        unpinned = await _predict(client, "cancer-rf", _rows([newer], 1))
        record = await client.get(f"/api/v1/predictions/{pinned['data']['predictions'][0]['id']}")

    assert default["source"] == "default"
    assert default["revision"] is None
    assert default["production"] == b  # the newest served version until a deployment is set
    assert canary.status_code == 200, canary.text
    assert canary.json()["data"]["revision"] == 2  # 1 records the default it replaced
    assert canary.json()["data"]["canary"] == {"version": b, "weight": 0.25, "sticky": "request"}
    assert "trained on other value ranges" in canary.json()["data"]["warnings"][0]
    assert same_again.json()["data"]["revision"] == 2
    assert [(v["version"], v["stage"], v["traffic_weight"]) for v in versions] == [
        (b, "canary", 0.25),
        (a, "production", 0.75),
    ]
    assert {v["store_stage"] for v in versions} == {"candidate"}
    assert versions[0]["schema_digest"] == versions[1]["schema_digest"]
    assert promoted.json()["data"]["revision"] == 3
    assert [(v["version"], v["stage"]) for v in after_promotion] == [
        (b, "production"),
        (a, "archived"),
    ]
    assert rolled_back.status_code == 201, rolled_back.text
    assert rolled_back.json()["data"]["revision"] == 4
    assert rolled_back.json()["data"]["production"] == a
    assert rolled_back.json()["data"]["canary"]["version"] == b
    assert to_first.json()["data"]["revision"] == 5
    assert to_first.json()["data"]["production"] == b
    assert to_first.json()["data"]["canary"] is None
    assert history["meta"]["total"] == 5
    assert [(r["revision"], r["action"], r["restored_revision"]) for r in history["data"]] == [
        (5, "rollback", 1),
        (4, "rollback", 2),
        (3, "set", None),
    ]
    assert model["version"] == b
    assert pinned["data"]["model"]["version"] == a
    assert pinned["meta"]["model_version"] == older
    assert record.json()["data"]["role"] == "pinned"
    assert unpinned["data"]["model"]["version"] == b
    assert unpinned["meta"]["model_version"] == newer


async def test_invalid_deployments_are_refused_with_the_reason(
    sqlite_db: str, cancer_versions: tuple[str, str], incompatible_version: str
) -> None:
    older, newer = cancer_versions
    a, b = _version(older), _version(newer)
    async with gateway_client([older, newer, incompatible_version], db_url=sqlite_db) as (
        client,
        _,
    ):
        no_history = await client.post(f"{DEPLOYMENT}/rollback")
        not_loaded = await client.put(
            DEPLOYMENT, json={"production": a, "canary": {"version": "v404", "weight": 0.1}}
        )
        incompatible = await client.put(
            DEPLOYMENT, json={"production": a, "shadow": ["tiny-schema"]}
        )
        heavy = await client.put(
            DEPLOYMENT, json={"production": a, "canary": {"version": b, "weight": 1.5}}
        )
        twice = await client.put(
            DEPLOYMENT, json={"production": a, "canary": {"version": a, "weight": 0.1}}
        )
        unknown = await client.put(
            "/api/v1/models/no-such-model/deployment", json={"production": a}
        )
        not_json = await client.put(
            DEPLOYMENT, content=b"{production", headers={"content-type": "application/json"}
        )
        await client.put(DEPLOYMENT, json={"production": a})
        beyond = await client.post(f"{DEPLOYMENT}/rollback", json={"to_revision": 9})
        history = (await client.get(f"{DEPLOYMENT}/history")).json()

    assert no_history.status_code == 409
    assert "no deployment history" in no_history.json()["error"]["message"]
    assert not_loaded.status_code == 409
    error = not_loaded.json()["error"]
    assert error["code"] == "version_not_loaded"
    assert "cancer-rf:v404" in error["message"]
    assert "SERVING_MODELS" in error["details"]["how_to_load"]
    assert error["details"]["not_loaded"] == ["cancer-rf:v404"]
    assert incompatible.status_code == 409
    error = incompatible.json()["error"]
    assert error["code"] == "incompatible_version"
    problems = {(d.get("feature"), d["problem"]) for d in error["details"]["differences"]}
    assert ("mean_radius", "missing") in problems
    assert ("size", "extra") in problems
    assert (None, "classes") in problems
    for response, field in ((heavy, "body.canary.weight"), (twice, "body.canary")):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert response.json()["error"]["details"]["errors"][0]["field"] == field
    assert unknown.status_code == 404
    assert not_json.status_code == 400
    assert beyond.status_code == 409
    assert history["meta"]["total"] == 2  # the refused changes left no trace


class GatedRunner:
    """A real runner whose calls wait until `release` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def predict(self, items: list[PredictItem]) -> list[PredictOutput]:
        self.entered.set()
        await self.release.wait()
        outputs: list[PredictOutput] = await self.inner.predict(items)
        return outputs

    async def status(self) -> RunnerStatus:
        status: RunnerStatus = await self.inner.status()
        return status


async def test_a_change_reaches_another_worker_within_two_seconds_and_spares_requests_in_flight(
    pg_url: str, cancer_versions: tuple[str, str]
) -> None:
    older, newer = cancer_versions
    a, b = _version(older), _version(newer)
    rows = _rows([older, newer], 1)
    async with (
        gateway_client([older, newer], db_url=pg_url) as (first, _),
        gateway_client([older, newer], db_url=pg_url, batching=False) as (second, runtime),
    ):
        before = (await _predict(second, "cancer-rf", rows))["data"]["model"]["version"]
        changed = await first.put(DEPLOYMENT, json={"production": a})
        started = time.monotonic()
        while (await _predict(second, "cancer-rf", rows))["data"]["model"]["version"] != a:
            assert time.monotonic() - started < 2.0, "the second worker did not follow in 2 s"
            await asyncio.sleep(0.05)
        followed_after = time.monotonic() - started

        gated = GatedRunner(runtime.inference.runners["sklearn"])
        runtime.inference.runners["sklearn"] = gated
        in_flight = asyncio.create_task(_predict(second, "cancer-rf", rows))
        await gated.entered.wait()
        await first.put(DEPLOYMENT, json={"production": b})
        assert runtime.lifecycle is not None
        await runtime.lifecycle.deployments.refresh()
        next_request = asyncio.create_task(_predict(second, "cancer-rf", rows))
        await asyncio.sleep(0.1)
        gated.release.set()
        finished, following = await in_flight, await next_request
        stored = await second.get(f"/api/v1/predictions/{finished['data']['predictions'][0]['id']}")

    assert before == b
    assert changed.status_code == 200
    assert followed_after < 2.0
    assert finished["data"]["model"]["version"] == a  # the version it started with
    assert finished["meta"]["model_version"] == older
    assert stored.json()["data"]["model"]["version"] == a
    assert following["data"]["model"]["version"] == b


async def test_changes_need_admin_and_reads_need_models_read(
    sqlite_db: str, cancer_versions: tuple[str, str]
) -> None:
    older, newer = cancer_versions
    a = _version(older)
    auth = AuthSettings(enabled=True, jwt_secret=SECRET)
    reader = (await new_account(sqlite_db, auth, "release-engineer", ["models:read"])).headers
    admin = (await new_account(sqlite_db, auth, "alice", ["admin"])).headers
    writer = (await new_account(sqlite_db, auth, "client", ["predictions:write"])).headers
    async with gateway_client([older, newer], db_url=sqlite_db, auth=auth) as (client, _):
        anonymous = await client.get(DEPLOYMENT)
        refused_read = await client.get(DEPLOYMENT, headers=writer)
        refused_change = await client.put(DEPLOYMENT, json={"production": a}, headers=reader)
        refused_rollback = await client.post(f"{DEPLOYMENT}/rollback", headers=reader)
        changed = await client.put(DEPLOYMENT, json={"production": a}, headers=admin)
        reads = [
            await client.get(path, headers=reader)
            for path in (
                DEPLOYMENT,
                f"{DEPLOYMENT}/history",
                "/api/v1/models/cancer-rf/versions",
                "/api/v1/models/cancer-rf/drift",
                "/api/v1/models/cancer-rf/quality",
                "/api/v1/models/cancer-rf/shadow",
            )
        ]

    assert anonymous.status_code == 401
    assert refused_read.status_code == 403
    assert refused_change.status_code == 403
    assert refused_change.json()["error"]["details"] == {"required_scope": "admin"}
    assert refused_rollback.status_code == 403
    assert changed.status_code == 200
    assert changed.json()["data"]["updated_by"] == "alice"
    assert [r.status_code for r in reads] == [200] * len(reads)
    assert reads[1].json()["data"][0]["actor"] == "alice"


async def test_two_versions_of_one_model_are_in_the_store(cancer_versions: tuple[str, str]) -> None:
    older, newer = (bentoml.models.get(tag) for tag in cancer_versions)

    assert older.info.metadata["seed"] != newer.info.metadata["seed"]
    assert older.info.creation_time < newer.info.creation_time
